// The message viewer (`#viewer`), shared by both views. The HTML body is shown only in a
// sandboxed iframe loading the server's `/html` endpoint (its own CSP, no scripts, remote
// content blocked until asked for); everything else goes into the page as text.

import { h, icon, button, fill, copyButton, sayError } from './dom.js';
import { full, relative, size, address, addresses, mailboxLabel } from './format.js';
import { getText, seg } from './api.js';

const TABS = [
  ['html', 'HTML'],
  ['text', 'Text'],
  ['raw', 'Source'],
  ['headers', 'Headers'],
];

/** The raw source shown in the page at most; the rest is a download. */
const RAW_SHOWN = 512 * 1024;

export class Viewer {
  /**
   * @param {object} o
   * @param {string} o.base `/api/v1/messages` or `/api/v1/admin/messages`
   * @param {boolean} o.admin
   * @param {object} o.actions handlers: read, star, archive, move(mailbox), remove, removeForever, back
   * @param {() => string[]} [o.mailboxes] the names to offer in "Move to"
   */
  constructor(o) {
    this.o = o;
    this.msg = null;
    this.tab = 'html';
    this.remote = false;

    const a = o.actions;
    this.readBtn = button('Mark unread', 'open', { id: 'action-read', title: 'Mark unread (u)', onclick: () => a.read() });
    this.starBtn = button('Star', 'star', { id: 'action-star', title: 'Star (s)', 'aria-pressed': 'false', onclick: () => a.star() });
    this.archiveBtn = button('Archive', 'archive', { id: 'action-archive', title: 'Archive (e)', onclick: () => a.archive() });
    this.moveSelect = h('select', { id: 'move-to', 'aria-label': 'Move to mailbox' });
    this.moveBtn = button('Move', 'move', { id: 'action-move', title: 'Move to the chosen mailbox', onclick: () => this.moveSelect.value && a.move(this.moveSelect.value) });
    this.deleteBtn = button('Delete', 'trash', { id: 'action-delete', title: o.admin ? 'Delete, with every copy (#)' : 'Move to Trash (#)', class: 'danger-quiet', onclick: () => a.remove() });
    this.foreverBtn = button('Delete forever', 'trash', { id: 'action-delete-forever', title: 'Delete forever (#)', class: 'danger-quiet', onclick: () => a.removeForever() });
    const back = button('Back to the list', 'back', { class: 'ghost back', onclick: () => a.back() }, true);

    const tools = o.admin
      ? [this.deleteBtn]
      : [this.readBtn, this.starBtn, this.archiveBtn,
        h('span', { class: 'move' }, this.moveSelect, this.moveBtn),
        this.deleteBtn, this.foreverBtn];
    this.toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Message actions' }, back, tools);

    this.subject = h('h2', { id: 'msg-subject', class: 'subject' });
    this.from = h('dd', { id: 'msg-from' });
    this.to = h('dd', { id: 'msg-to' });
    this.cc = h('dd', { id: 'msg-cc' });
    this.bcc = h('dd', { id: 'msg-bcc' });
    this.envelope = h('dd', { id: 'msg-envelope' });
    this.date = h('dd', { id: 'msg-date' });
    const row = (label, dd) => h('div', { class: 'meta-row' }, h('dt', null, label), dd);
    this.ccRow = row('Cc', this.cc);
    this.bccRow = row('Bcc', this.bcc);
    this.envRow = row('Envelope', this.envelope);
    this.meta = h('dl', { class: 'meta' },
      row('From', this.from), row('To', this.to), this.ccRow, this.bccRow, this.envRow, row('Date', this.date));

    this.codes = h('ul', { id: 'codes', class: 'codes', 'aria-label': 'One-time codes' });
    this.links = h('ul', { id: 'links', class: 'links', 'aria-label': 'Links' });
    this.attachments = h('ul', { id: 'attachments', class: 'attachments', 'aria-label': 'Attachments' });
    this.codesBox = h('section', { class: 'extract', 'aria-labelledby': 'codes-title' },
      h('h3', { id: 'codes-title' }, icon('code'), 'Codes'), this.codes);
    this.linksTitle = h('span', null, 'Links');
    this.linksBox = h('section', { class: 'extract', 'aria-labelledby': 'links-title' },
      h('h3', { id: 'links-title' }, icon('link'), this.linksTitle), this.links);
    this.attachBox = h('section', { class: 'extract', 'aria-labelledby': 'attachments-title' },
      h('h3', { id: 'attachments-title' }, icon('clip'), 'Attachments'), this.attachments);

    this.loadRemote = button('Load remote content', 'image', { id: 'load-remote', class: 'small', onclick: () => this.showRemote() });
    this.remoteText = h('span', null);
    this.remoteNotice = h('div', { id: 'remote-notice', class: 'notice', hidden: true },
      icon('shield'), this.remoteText, this.loadRemote);

    this.tabs = {};
    this.panels = {};
    const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Message views' });
    for (const [key, label] of TABS) {
      const t = h('button', {
        type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': `panel-${key}`,
        'aria-selected': 'false', tabindex: '-1', onclick: () => this.showTab(key),
      }, label);
      t.addEventListener('keydown', (e) => this.tabKeys(e, key));
      this.tabs[key] = t;
      tablist.append(t);
    }
    this.frame = h('iframe', {
      // Popups only, for the mail's links (the server gives it `<base target="_blank">`); never
      // scripts, same origin, forms or top navigation.
      id: 'html-frame', sandbox: 'allow-popups allow-popups-to-escape-sandbox', referrerpolicy: 'no-referrer', title: 'Message (HTML)',
    });
    this.noHtml = h('p', { class: 'note', hidden: true }, 'This message has no HTML body.');
    this.textBody = h('pre', { id: 'text-body', class: 'body-text' });
    this.noText = h('p', { class: 'note', hidden: true }, 'This message has no text body.');
    this.rawBody = h('pre', { id: 'raw-body', class: 'body-raw' });
    this.rawLink = h('a', { class: 'small-link', download: 'message.eml' }, icon('download'), 'Download source (.eml)');
    this.headersTable = h('table', { id: 'headers-table', class: 'headers' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))),
      h('tbody'));
    const panel = (key, ...kids) => {
      const p = h('div', { role: 'tabpanel', id: `panel-${key}`, class: `panel panel-${key}`, 'aria-labelledby': `tab-${key}`, hidden: true }, ...kids);
      this.panels[key] = p;
      return p;
    };

    this.body = h('div', { class: 'viewer-body', hidden: true },
      this.toolbar,
      h('div', { class: 'viewer-scroll' },
        h('header', { class: 'msg-head' }, this.subject, this.meta),
        this.remoteNotice,
        h('div', { class: 'extracts' }, this.codesBox, this.linksBox, this.attachBox),
        tablist,
        panel('html', this.noHtml, this.frame),
        panel('text', this.noText, this.textBody),
        panel('raw', h('div', { class: 'panel-tools' }, this.rawLink), this.rawBody),
        panel('headers', this.headersTable)));
    this.emptyBox = h('div', { class: 'viewer-empty' },
      icon('mail', 'big'),
      h('p', { class: 'lead' }, 'No message selected'),
      h('p', null, 'Pick one from the list, or press ', h('kbd', null, 'j'), ' and ', h('kbd', null, 'Enter'), '.'),
      h('p', null, h('kbd', null, '?'), ' shows every key.'));
    this.el = h('article', { id: 'viewer', class: 'viewer', 'aria-label': 'Message' }, this.emptyBox, this.body);
  }

  /** Closes the message. */
  clear() {
    this.msg = null;
    this.body.hidden = true;
    this.emptyBox.hidden = false;
    this.frame.removeAttribute('src');
    document.body.classList.remove('reading');
  }

  /** Shows message `m` (a full message as the API gives it). */
  show(m) {
    const same = this.msg && this.msg.id === m.id;
    this.msg = m;
    this.remote = same ? this.remote : false;
    this.emptyBox.hidden = true;
    this.body.hidden = false;
    document.body.classList.add('reading');

    this.subject.textContent = m.subject || '(no subject)';
    this.from.textContent = address(m.from);
    this.to.textContent = addresses(m.to) || '(none)';
    this.cc.textContent = addresses(m.cc);
    this.ccRow.hidden = !(m.cc && m.cc.length);
    this.bcc.textContent = addresses(m.bcc);
    this.bccRow.hidden = !(m.bcc && m.bcc.length);
    this.envelope.textContent = (m.recipients || []).join(', ');
    this.envRow.hidden = !this.o.admin;
    const when = m.date || m.received_at;
    fill(this.date, h('time', { datetime: when }, full(when)), h('span', { class: 'muted' }, ` (${relative(when)})`));

    this.flags(m);
    this.fillExtracts(m);

    this.noHtml.hidden = m.html !== null && m.html !== undefined;
    this.noText.hidden = m.text !== null && m.text !== undefined;
    this.textBody.textContent = m.text || '';
    this.textBody.hidden = !this.noText.hidden;
    this.rawBody.textContent = '';
    this.rawLoaded = false;
    this.rawLink.href = `${this.o.base}/${seg(m.id)}/raw`;
    this.rawLink.download = `message-${m.id}.eml`;
    const tbody = this.headersTable.tBodies[0];
    fill(tbody, (m.headers || []).map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', null, v))));

    const hasRemote = Boolean(m.remote_content) && m.html != null;
    this.remoteNotice.hidden = !hasRemote;
    this.remoteNotice.classList.toggle('loaded', this.remote);
    this.remoteText.textContent = this.remote
      ? 'Remote content loaded: the senders of the images and styles could see that this message was opened.'
      : 'Remote content (images, styles, fonts from other servers) is blocked, so the sender cannot tell this message was opened.';
    this.loadRemote.hidden = this.remote;

    const tab = same ? this.tab : (m.html != null ? 'html' : 'text');
    this.showTab(tab);
  }

  /** Updates the action buttons for the copy's flags and mailbox. */
  flags(m) {
    if (this.o.admin) return;
    this.readBtn.querySelector('.label').textContent = m.read ? 'Mark unread' : 'Mark read';
    this.readBtn.title = m.read ? 'Mark unread (u)' : 'Mark read (u)';
    this.starBtn.setAttribute('aria-pressed', m.starred ? 'true' : 'false');
    this.starBtn.classList.toggle('on', Boolean(m.starred));
    this.starBtn.querySelector('.label').textContent = m.starred ? 'Starred' : 'Star';
    const inTrash = (m.mailbox || '').toLowerCase() === 'trash';
    this.deleteBtn.hidden = inTrash;
    this.foreverBtn.hidden = !inTrash;
    this.archiveBtn.hidden = (m.mailbox || '').toLowerCase() === 'archive';
    const names = (this.o.mailboxes ? this.o.mailboxes() : []).filter((n) => n.toLowerCase() !== (m.mailbox || '').toLowerCase());
    fill(this.moveSelect, names.map((n) => h('option', { value: n }, mailboxLabel(n))));
    this.moveSelect.disabled = names.length === 0;
  }

  fillExtracts(m) {
    const codes = m.codes || [];
    fill(this.codes, codes.map((c) => h('li', null, h('code', { class: 'code' }, c), copyButton(c, `Copy code ${c}`))));
    this.codesBox.hidden = codes.length === 0;

    const links = m.links || [];
    fill(this.links, links.map((url) => h('li', null,
      h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'url', title: url }, url),
      copyButton(url, `Copy link ${url}`))));
    this.linksBox.hidden = links.length === 0;
    this.linksTitle.textContent = `Links (${links.length})`;

    const atts = m.attachments || [];
    const base = `${this.o.base}/${seg(m.id)}/attachments`;
    fill(this.attachments, atts.map((a) => h('li', null,
      h('a', { href: `${base}/${a.index}`, download: a.filename || `attachment-${a.index}` },
        icon('download'),
        h('span', { class: 'name' }, a.filename || `attachment ${a.index + 1}`),
        h('span', { class: 'muted' }, ` ${a.content_type}, ${size(a.size)}${a.inline ? ', inline' : ''}`)))));
    this.attachBox.hidden = atts.length === 0;
  }

  showTab(key) {
    this.tab = key;
    for (const [k, t] of Object.entries(this.tabs)) {
      const on = k === key;
      t.setAttribute('aria-selected', on ? 'true' : 'false');
      t.tabIndex = on ? 0 : -1;
      this.panels[k].hidden = !on;
    }
    const m = this.msg;
    if (!m) return;
    if (key === 'html' && m.html != null) {
      const src = `${this.o.base}/${seg(m.id)}/html${this.remote ? '?remote=true' : ''}`;
      if (this.frame.getAttribute('src') !== src) this.frame.src = src;
      this.frame.hidden = false;
    } else if (key === 'html') {
      this.frame.hidden = true;
      this.frame.removeAttribute('src');
    }
    if (key === 'raw' && !this.rawLoaded) this.loadRaw(m);
  }

  async loadRaw(m) {
    this.rawLoaded = true;
    this.rawBody.textContent = 'Loading…';
    try {
      const text = await getText(`${this.o.base}/${seg(m.id)}/raw`);
      if (this.msg !== m) return;
      this.rawBody.textContent = text.length > RAW_SHOWN
        ? text.slice(0, RAW_SHOWN) + `\n\n… ${size(text.length - RAW_SHOWN)} more: download the source to see it all.`
        : text;
    } catch (e) {
      this.rawLoaded = false;
      this.rawBody.textContent = '';
      sayError(e, 'Could not load the source');
    }
  }

  /** Reloads the HTML with remote content allowed. */
  showRemote() {
    this.remote = true;
    if (this.msg) this.show(this.msg);
    this.showTab('html');
  }

  /** Arrow keys, Home and End move between tabs, as the ARIA tabs pattern has it. */
  tabKeys(e, key) {
    const keys = TABS.map(([k]) => k);
    let i = keys.indexOf(key);
    if (e.key === 'ArrowRight') i = (i + 1) % keys.length;
    else if (e.key === 'ArrowLeft') i = (i - 1 + keys.length) % keys.length;
    else if (e.key === 'Home') i = 0;
    else if (e.key === 'End') i = keys.length - 1;
    else return;
    e.preventDefault();
    this.showTab(keys[i]);
    this.tabs[keys[i]].focus();
  }
}
