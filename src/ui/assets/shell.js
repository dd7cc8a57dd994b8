// What both views share around the list and the viewer: the top bar, the live badge, the SMTP
// hint of the empty states, and new-mail notifications.

import { h, icon, button, copyButton } from './dom.js';

/** The top bar: menu button (narrow screens), brand, search, actions. */
export function topbar({ brandHref, badge, search, actions, controls = 'mailboxes' }) {
  const menu = button('Menu', 'menu', {
    class: 'ghost menu',
    'aria-controls': controls,
    'aria-expanded': 'false',
    onclick: (e) => {
      const open = document.body.classList.toggle('nav-open');
      e.currentTarget.setAttribute('aria-expanded', open ? 'true' : 'false');
      if (open) {
        const first = document.querySelector('.sidebar a, .sidebar input, .sidebar button');
        if (first) first.focus();
      }
    },
  }, true);
  return h('header', { class: 'topbar' },
    menu,
    h('a', { class: 'brand', href: brandHref },
      h('img', { src: '/ui/icon.svg', alt: '', width: 28, height: 28 }),
      h('span', null, 'fakemail'),
      badge ? h('span', { class: 'badge' }, badge) : null),
    search,
    h('div', { class: 'top-actions' }, actions));
}

/** A dot that says whether the event stream is connected (`data-state`). */
export function liveBadge() {
  return h('span', { id: 'live', class: 'live', dataset: { state: 'connecting' }, role: 'img', 'aria-label': 'Live updates', title: 'Live updates: new mail appears by itself' },
    h('span', { class: 'dot' }));
}

/** The SMTP listener as this page can reach it: this host, the port the server wrote into the page. */
export function smtpAddress() {
  const meta = document.querySelector('meta[name="smtp-port"]');
  const port = (meta && meta.content) || '1025';
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  return `${host}:${port}`;
}

/** A copyable command that sends a test message to `to`. */
export function smtpHint(to) {
  const cmd = `swaks --to ${to} --server ${smtpAddress()}`;
  return h('div', { class: 'command' }, h('code', null, cmd), copyButton(cmd, 'Copy the command'));
}

// ----- notifications ----------------------------------------------------------------------

const PREF = 'fakemail.notifications';

function enabled() {
  return 'Notification' in window && Notification.permission === 'granted' && localStorage.getItem(PREF) === 'on';
}

/** The button that turns new-mail notifications on and off (`#notify`). */
export function notifyButton() {
  if (!('Notification' in window)) return null;
  const b = button('Notifications', 'bell', { id: 'notify', class: 'ghost', 'aria-pressed': 'false' }, true);
  const draw = () => {
    const on = enabled();
    const denied = Notification.permission === 'denied';
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
    b.classList.toggle('on', on);
    b.disabled = denied;
    const label = denied ? 'Notifications are blocked in the browser settings'
      : on ? 'Notifications on: click to turn off' : 'Notify me of new mail';
    b.title = label;
    b.setAttribute('aria-label', label);
  };
  b.addEventListener('click', async () => {
    if (enabled()) {
      localStorage.setItem(PREF, 'off');
    } else {
      const p = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
      localStorage.setItem(PREF, p === 'granted' ? 'on' : 'off');
    }
    draw();
  });
  draw();
  return b;
}

/** Shows a notification of new mail when they are on and the page is not in front. */
export function notify(title, body, onclick) {
  if (!enabled() || (document.visibilityState === 'visible' && document.hasFocus())) return;
  try {
    const n = new Notification(title, { body: body || '', icon: '/ui/icon.svg', tag: 'fakemail' });
    n.addEventListener('click', () => { window.focus(); n.close(); if (onclick) onclick(); });
  } catch { /* some browsers allow notifications only from a service worker */ }
}
