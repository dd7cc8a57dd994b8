// Building DOM without markup strings: every text goes in as a text node, so nothing from a
// message or the server can ever become HTML here. Also icons, the status line and copying.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * h('button', {class: 'x', id: 'y', onclick: f, dataset: {id: 1}, hidden: true}, 'text', node)
 * Strings and numbers become text nodes; null, undefined and false are skipped; arrays flatten.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Icons: stroked 24×24 paths drawn for fakemail. */
const ICONS = {
  inbox: ['M3 13h5l2 3h4l2-3h5', 'M5.5 5h13l2.5 8v6H3v-6z'],
  sent: ['M21 3 3 10.5l7 2.5 2.5 7z', 'M10 13l4.5-4.5'],
  archive: ['M3 4h18v4H3z', 'M5 8v12h14V8', 'M10 12h4'],
  trash: ['M4 7h16', 'M9 7V4h6v3', 'M6 7l1 13h10l1-13', 'M10 11v5M14 11v5'],
  folder: ['M3 6h6l2 2h10v11H3z'],
  star: ['M12 3.5l2.6 5.4 5.9.8-4.3 4.1 1 5.9L12 16.9l-5.2 2.8 1-5.9-4.3-4.1 5.9-.8z'],
  clip: ['M20 11.5l-8.2 8.2a5 5 0 0 1-7.1-7.1l8.5-8.5a3.4 3.4 0 0 1 4.8 4.8l-8.4 8.4a1.8 1.8 0 0 1-2.5-2.5l7.7-7.7'],
  search: ['M10.5 4a6.5 6.5 0 1 1 0 13 6.5 6.5 0 0 1 0-13z', 'M15.5 15.5 20 20'],
  pencil: ['M4 20h4L19 9l-4-4L4 16z', 'M13.5 6.5l4 4'],
  bell: ['M6 16v-5a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20.5a2 2 0 0 0 4 0'],
  user: ['M12 4a4 4 0 1 1 0 8 4 4 0 0 1 0-8z', 'M4 21a8 8 0 0 1 16 0'],
  out: ['M10 4H5v16h5', 'M15 8l4 4-4 4', 'M19 12H9'],
  menu: ['M4 6h16M4 12h16M4 18h16'],
  back: ['M15 5l-7 7 7 7'],
  copy: ['M9 9h11v11H9z', 'M5 15H4V4h11v1'],
  download: ['M12 4v11', 'M7 10l5 5 5-5', 'M5 20h14'],
  plus: ['M12 5v14M5 12h14'],
  minus: ['M5 12h14'],
  x: ['M6 6l12 12M18 6 6 18'],
  keys: ['M3 6h18v12H3z', 'M7 10h1M11 10h1M15 10h1M8 14h8'],
  mail: ['M3 5h18v14H3z', 'M3 7l9 6 9-6'],
  open: ['M3 10l9-6 9 6v10H3z', 'M3 10l9 6 9-6'],
  move: ['M3 6h6l2 2h10v11H3z', 'M10 13.5h6M13.5 11l2.5 2.5-2.5 2.5'],
  image: ['M4 5h16v14H4z', 'M4 16l5-5 4 4 2.5-2.5L20 17', 'M15 8.5h.01'],
  link: ['M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1', 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1'],
  code: ['M8 8l-4 4 4 4M16 8l4 4-4 4', 'M13.5 5l-3 14'],
  shield: ['M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z'],
  bolt: ['M13 3 5 14h6l-1 7 8-11h-6z'],
  broom: ['M14 4l6 6', 'M4 20l8.5-8.5', 'M9 12.5l2.5 2.5-4 4.5H4v-3.5z'],
  refresh: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 4v7h-7'],
};

/** An icon, hidden from assistive technology (the control around it carries the name). */
export function icon(name, cls) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
  for (const d of ICONS[name] || ICONS.folder) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

/** A button with an icon and a label; `label` may be visually hidden with `iconOnly`. */
export function button(label, iconName, attrs = {}, iconOnly = false) {
  const a = { type: 'button', ...attrs };
  if (iconOnly) {
    a['aria-label'] = a['aria-label'] || label;
    a.title = a.title || label;
  }
  return h('button', a, iconName ? icon(iconName) : null, iconOnly ? null : h('span', { class: 'label' }, label));
}

let statusTimer;

/** Says `text` in the status line (`#status`, a polite live region); errors stay longer. */
export function say(text, kind = 'info') {
  const el = document.getElementById('status');
  if (!el) return;
  clearTimeout(statusTimer);
  el.className = 'status ' + kind;
  el.textContent = text;
  statusTimer = setTimeout(() => { el.textContent = ''; }, kind === 'error' ? 10000 : 5000);
}

/** Says what went wrong with a request. */
export function sayError(err, what) {
  const msg = err && err.message ? err.message : String(err);
  say(what ? `${what}: ${msg}` : msg, 'error');
}

/** Copies `text` to the clipboard, with a fallback for pages that are not a secure context. */
export async function copy(text, what = 'Copied') {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
    } else {
      const t = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
      t.value = text;
      document.body.append(t);
      t.select();
      document.execCommand('copy');
      t.remove();
    }
    say(`${what}: ${text.length > 60 ? text.slice(0, 57) + '…' : text}`);
  } catch (e) {
    sayError(e, 'Could not copy');
  }
}

/** A copy button (`button.copy`) for `text`. */
export function copyButton(text, label) {
  return button(label, 'copy', {
    class: 'copy',
    onclick: (e) => {
      e.stopPropagation();
      copy(text);
      const b = e.currentTarget;
      b.classList.add('done');
      setTimeout(() => b.classList.remove('done'), 1200);
    },
  }, true);
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { class: 'hint', id: id + '-hint' }, hint) : null);
}

/** Marks the page as rendered (tests wait for it); `false` while a new screen loads. */
export function ready(on = true) {
  if (on) document.body.dataset.ready = '1';
  else delete document.body.dataset.ready;
}

/** A modal dialog with a title, a body and a close button; `showModal()` to open. */
export function dialog(id, title, ...body) {
  const d = h('dialog', { id, class: 'dialog', 'aria-labelledby': id + '-title' },
    h('div', { class: 'dialog-head' },
      h('h2', { id: id + '-title' }, title),
      button('Close', 'x', { class: 'ghost close', onclick: () => d.close() }, true)),
    ...body);
  // A click on the backdrop (the dialog element itself, outside its box) closes it.
  d.addEventListener('click', (e) => {
    if (e.target !== d) return;
    const r = d.getBoundingClientRect();
    const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
    if (!inside) d.close();
  });
  return d;
}

/**
 * Asks before something that cannot be undone: a modal `#confirm` dialog titled `title` that
 * says `question` (and that it cannot be undone), with the focus on `#confirm-cancel`, the safe
 * choice; Escape cancels too. Resolves to `true` only when `#confirm-ok` (labelled `action`) is
 * pressed. The focus goes back where it was.
 */
export function confirmAction(title, question, action) {
  document.getElementById('confirm')?.remove();
  return new Promise((resolve) => {
    let ok = false;
    const d = h('dialog', {
      id: 'confirm', class: 'dialog confirm', role: 'alertdialog',
      'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text',
    });
    const cancel = h('button', { type: 'button', id: 'confirm-cancel', onclick: () => d.close() }, 'Cancel');
    const yes = h('button', {
      type: 'button', id: 'confirm-ok', class: 'danger', onclick: () => { ok = true; d.close(); },
    }, action);
    d.append(
      h('div', { class: 'dialog-head' }, h('h2', { id: 'confirm-title' }, title)),
      h('div', { class: 'stack' },
        h('p', { id: 'confirm-text' }, question, ' This cannot be undone.'),
        h('div', { class: 'dialog-actions' }, cancel, yes)));
    const back = document.activeElement;
    d.addEventListener('close', () => {
      d.remove();
      if (back instanceof HTMLElement && back.isConnected) back.focus();
      resolve(ok);
    });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}

/** The keyboard help (`#keys`), shared by both views. */
export function keysDialog(rows) {
  return dialog('keys', 'Keyboard shortcuts',
    h('dl', { class: 'keys' }, rows.map(([k, what]) => [
      h('dt', null, k.split(' ').map((x) => h('kbd', null, x))),
      h('dd', null, what),
    ])));
}

/** Turns a value of a comma, semicolon or line separated address field into a list. */
export function addressList(value) {
  return value.split(/[,;\n]+/).map((s) => s.trim()).filter(Boolean);
}
