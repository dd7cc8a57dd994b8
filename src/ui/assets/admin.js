// The operator's view at `/admin`: every captured message, filters, stats, fault injection and
// purging. The admin token is exchanged once for a cookie session and never kept.

import { h, icon, button, fill, field, say, sayError, ready, keysDialog, confirmAction } from './dom.js';
import { get, post, del, withQuery, seg, follow, ApiError } from './api.js';
import { MessageList } from './list.js';
import { Viewer } from './viewer.js';
import { bindKeys, HELP } from './keys.js';
import { size, count, duration, who, messages } from './format.js';
import { topbar, liveBadge, setLive, smtpHint, smtpAddress, notifyButton, notify } from './shell.js';

export async function start(root) {
  // A token pasted into the address bar of an open page arrives as a new fragment.
  window.addEventListener('hashchange', () => {
    if (!(app && !app.gone)) fromFragment(root);
  });
  if (await fromFragment(root)) return;
  try {
    await get('/api/v1/admin/stats');
    app = new AdminApp(root);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) sayError(e);
    loginScreen(root);
  }
}

/** The view once signed in. */
let app = null;

/**
 * `/admin#token=...`: takes the token and drops it from the address bar and the history at
 * once, then trades it for a session. Whether the fragment held a token.
 */
async function fromFragment(root) {
  const token = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (token === null) return false;
  history.replaceState(null, '', location.pathname + location.search);
  try {
    await exchange(token);
    app = new AdminApp(root);
  } catch (e) {
    loginScreen(root);
    sayError(e, 'The token in the address was not accepted');
  }
  return true;
}

/** Trades the admin token for the operator's cookie session. */
function exchange(token) {
  return post('/api/v1/admin/session', undefined, { Authorization: `Bearer ${token}` });
}

function loginScreen(root) {
  ready(false);
  const input = h('input', { id: 'admin-token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'admin-token-hint' });
  const form = h('form', { id: 'admin-login', class: 'stack', 'aria-labelledby': 'admin-title' },
    h('h1', { id: 'admin-title' }, 'Operator view'),
    h('p', null, 'Every message the server captured, for every address, with its stats and fault injection.'),
    field('Admin token', input, 'In <data-dir>/admin-token, or the value of --admin-token. Opening /admin#token=… signs in too.'),
    h('button', { type: 'submit', id: 'admin-token-submit', class: 'primary wide' }, 'Open'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const b = form.querySelector('[type=submit]');
    b.disabled = true;
    const token = input.value.trim();
    // The token leaves the page's memory with the form.
    input.value = '';
    try {
      await exchange(token);
      app = new AdminApp(root);
    } catch (err) {
      if (err.status === 401) say('That is not this server’s admin token.', 'error');
      else sayError(err, 'Not accepted');
      input.focus();
    } finally {
      b.disabled = false;
    }
  });
  fill(root, h('div', { class: 'auth' },
    h('header', { class: 'auth-brand' }, h('img', { src: '/ui/icon.svg', alt: '', width: 40, height: 40 }), h('span', null, 'fakemail')),
    h('main', { id: 'main', class: 'card' }, form),
    h('footer', { class: 'auth-foot' }, h('a', { href: '/' }, 'A user’s mail'))));
  input.focus();
  ready();
}

class AdminApp {
  constructor(root) {
    ready(false);
    this.root = root;
    this.filters = { to: '', from: '', subject: '', q: '' };
    // Ends the document-wide listeners of this view when it goes (sign-out, session ended).
    this.life = new AbortController();
    this.viewer = new Viewer({
      base: '/api/v1/admin/messages',
      admin: true,
      actions: { remove: () => this.remove(), back: () => this.close() },
    });
    this.list = new MessageList({
      admin: true,
      fetch: (cursor) => get(withQuery('/api/v1/admin/messages', { ...this.filters, cursor, limit: 50 })),
      open: (id) => this.open(id),
      empty: () => this.emptyState(),
      invalid: (bad) => (bad ? this.search.setAttribute('aria-invalid', 'true') : this.search.removeAttribute('aria-invalid')),
    });
    this.build();
    this.bindKeys();
    this.listen();
    this.list.reload().then(() => ready());
    this.loadStats();
    this.loadChaos();
  }

  build() {
    this.search = h('input', { id: 'search', type: 'search', placeholder: 'Search all mail', 'aria-label': 'Search all mail', autocomplete: 'off' });
    let timer;
    this.search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => this.applyFilters(), 300); });
    const searchForm = h('form', { role: 'search', class: 'search', onsubmit: (e) => { e.preventDefault(); clearTimeout(timer); this.applyFilters(); } },
      icon('search'), this.search);
    this.live = liveBadge();
    const header = topbar({
      brandHref: '/admin',
      badge: 'operator',
      controls: 'tools',
      search: searchForm,
      actions: [
        this.live,
        notifyButton(),
        button('Keyboard shortcuts', 'keys', { class: 'ghost', onclick: () => this.keys.showModal() }, true),
        button('Sign out', 'out', { id: 'admin-signout', class: 'ghost', onclick: () => this.signOut() }, true),
      ],
    });

    // Filters
    const input = (id, label, type = 'text', placeholder = '') => field(label, h('input', { id, type, autocomplete: 'off', placeholder }));
    const filterForm = h('form', { id: 'filters', class: 'stack tight' },
      input('filter-to', 'To', 'text', 'bob@example.test'),
      input('filter-from', 'From', 'text', 'app@example.test'),
      input('filter-subject', 'Subject contains'),
      h('div', { class: 'row-actions' },
        h('button', { type: 'submit', class: 'small primary' }, 'Apply'),
        h('button', { type: 'reset', class: 'small ghost' }, 'Clear')));
    filterForm.addEventListener('submit', (e) => { e.preventDefault(); this.applyFilters(); });
    filterForm.addEventListener('reset', () => setTimeout(() => { this.search.value = ''; this.applyFilters(); }));
    for (const el of filterForm.querySelectorAll('input')) {
      el.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => this.applyFilters(), 400); });
    }

    // Stats
    this.stats = h('dl', { id: 'stats', class: 'stats' });

    // Fault injection
    this.chaosNotice = h('p', { id: 'chaos-disabled', class: 'notice warn', hidden: true }, icon('shield'),
      h('span', null, 'Fault injection is off: this server runs without ', h('code', null, '--chaos'), '. Restart it with ', h('code', null, '--chaos'), ' to add rules.'));
    this.chaosRules = h('ul', { id: 'chaos-rules', class: 'rules', 'aria-label': 'Fault-injection rules' });
    this.chaosInput = h('input', { id: 'chaos-rule', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'rcpt:451:4.3.0:50%', 'aria-describedby': 'chaos-rule-hint' });
    const chaosForm = h('form', { class: 'stack tight' },
      field('New rule', this.chaosInput, 'STAGE:PART…, e.g. data:delay=2s or connect:disconnect:next=3'),
      h('div', { class: 'row-actions' },
        h('button', { type: 'submit', id: 'chaos-add', class: 'small primary' }, 'Add rule'),
        h('button', { type: 'button', id: 'chaos-clear', class: 'small ghost', onclick: () => this.clearChaos() }, 'Remove all')));
    chaosForm.addEventListener('submit', (e) => { e.preventDefault(); this.addRule(); });
    this.chaosForm = chaosForm;

    // Purge
    const purgeInput = h('input', { id: 'purge-older', type: 'text', autocomplete: 'off', placeholder: '7d', required: true, 'aria-describedby': 'purge-older-hint' });
    const purgeForm = h('form', { class: 'stack tight' },
      field('Delete messages older than', purgeInput, 'A duration such as 30m, 12h or 7d; 0 deletes everything.'),
      h('div', { class: 'row-actions' }, h('button', { type: 'submit', id: 'purge-submit', class: 'small danger' }, 'Purge')));
    purgeForm.addEventListener('submit', (e) => { e.preventDefault(); this.purge(purgeInput); });

    const section = (id, title, iconName, ...body) => h('section', { id, class: 'tool', 'aria-labelledby': `${id}-title` },
      h('h2', { id: `${id}-title` }, icon(iconName), title), ...body);
    const side = h('aside', { id: 'tools', class: 'sidebar tools', 'aria-label': 'Filters and server' },
      section('filter-section', 'Filter', 'search', filterForm),
      section('stats-section', 'Server', 'bolt', this.stats),
      section('chaos', 'Fault injection', 'shield', this.chaosNotice, this.chaosRules, chaosForm),
      section('purge', 'Purge', 'broom', purgeForm));

    this.total = h('span', { class: 'muted total' });
    const listPane = h('section', { class: 'list-pane', 'aria-labelledby': 'list-title' },
      h('div', { class: 'list-head' }, h('h1', { id: 'list-title' }, 'All mail'), this.total,
        button('Delete all', 'trash', { id: 'delete-all', class: 'small danger-quiet', onclick: () => this.deleteAll() })),
      this.list.el);

    this.keys = keysDialog([HELP.j, HELP.k, HELP.Enter, HELP['#'], HELP['/'], HELP.Escape, HELP['?']]);
    fill(this.root, h('div', { class: 'app admin' },
      header,
      side,
      h('button', { type: 'button', class: 'scrim', tabindex: '-1', 'aria-hidden': 'true', onclick: () => document.body.classList.remove('nav-open') }),
      h('main', { id: 'main', class: 'panes' }, listPane, this.viewer.el),
      this.keys));
    this.filterForm = filterForm;
  }

  applyFilters() {
    const v = (id) => this.filterForm.querySelector('#' + id).value.trim();
    const next = { to: v('filter-to'), from: v('filter-from'), subject: v('filter-subject'), q: this.search.value.trim() };
    if (JSON.stringify(next) === JSON.stringify(this.filters)) return;
    this.filters = next;
    this.close();
    this.list.reload();
  }

  filtering() {
    return Object.values(this.filters).some(Boolean);
  }

  /** Whether a live message passes the filters, as far as its summary tells. */
  matches(m) {
    const f = this.filters;
    const lc = (s) => (s || '').toLowerCase();
    const people = [m.from, ...(m.to || []), ...(m.cc || [])];
    if (f.to && ![...(m.to || []), ...(m.cc || [])].some((a) => lc(a.address) === lc(f.to)) && !(m.recipients || []).some((r) => lc(r) === lc(f.to))) return false;
    if (f.from && lc(m.from && m.from.address) !== lc(f.from)) return false;
    if (f.subject && !lc(m.subject).includes(lc(f.subject))) return false;
    if (f.q) {
      const hay = [m.subject, m.snippet, ...(m.recipients || []), ...people.flatMap((p) => (p ? [p.name, p.address] : []))];
      if (!hay.some((s) => lc(s).includes(lc(f.q)))) return false;
    }
    return true;
  }

  emptyState() {
    if (this.filtering()) {
      return h('div', { class: 'empty' }, icon('search', 'big'), h('p', { class: 'lead' }, 'No messages match these filters'),
        h('p', null, 'New ones that do appear here as they arrive.'));
    }
    return h('div', { class: 'empty' }, icon('inbox', 'big'),
      h('p', { class: 'lead' }, 'No mail captured yet'),
      h('p', null, 'Point your application’s SMTP at ', h('code', null, smtpAddress()), ', or try:'),
      smtpHint('bob@example.test'),
      h('p', null, 'Messages show up here the moment they arrive, for every address, with or without an account.'));
  }

  // ----- messages -----

  async open(id) {
    this.list.select(id);
    try {
      const m = await get(`/api/v1/admin/messages/${seg(id)}`);
      if (this.list.selected === id || !this.list.get(id)) this.viewer.show(m);
    } catch (e) {
      if (e.status === 401) return this.ended();
      if (e.status === 404) this.list.remove(id);
      sayError(e, 'Could not open the message');
    }
  }

  close() {
    const id = this.viewer.msg && this.viewer.msg.id;
    this.viewer.clear();
    this.list.select(null);
    if (id) this.list.setCursor(id);
  }

  async remove() {
    const id = this.viewer.msg ? this.viewer.msg.id : this.list.current();
    if (!id) return;
    try {
      await del(`/api/v1/admin/messages/${seg(id)}`);
      const next = this.list.remove(id);
      if (this.viewer.msg && this.viewer.msg.id === id) this.viewer.clear();
      if (next) this.list.setCursor(next);
      say('Message deleted, with every copy');
      this.loadStats();
    } catch (e) {
      if (e.status === 401) return this.ended();
      sayError(e, 'Could not delete');
    }
  }

  async deleteAll() {
    try {
      const s = await get('/api/v1/admin/stats');
      if (!await confirmAction('Delete all', `Delete all ${messages(s.messages)}?`, 'Delete all')) return;
      await del('/api/v1/admin/messages');
      this.viewer.clear();
      await this.list.reload();
      say('Every message deleted');
      this.loadStats();
    } catch (e) {
      if (e.status === 401) return this.ended();
      sayError(e, 'Could not delete');
    }
  }

  // ----- stats -----

  async loadStats() {
    clearTimeout(this.statsTimer);
    if (this.gone) return;
    try {
      const s = await get('/api/v1/admin/stats');
      const item = (label, value, title) => h('div', { class: 'stat', title }, h('dt', null, label), h('dd', null, value));
      fill(this.stats,
        item('Messages', count(s.messages)),
        item('Stored', size(s.bytes)),
        item('Users', count(s.users)),
        item('Uptime', duration(s.uptime_seconds)),
        item('SMTP connections', count(s.smtp.connections), 'Since start-up'),
        item('Accepted', count(s.smtp.accepted), 'SMTP messages stored, since start-up'),
        item('Rejected', count(s.smtp.rejected), 'SMTP 4xx and 5xx answers to MAIL, RCPT and DATA, since start-up'),
        item('Faults', count(s.chaos.faults), 'Faults injected since start-up'));
      this.total.textContent = `${count(s.messages)} in all`;
    } catch (e) {
      if (e.status === 401) return this.ended();
    }
    // Uptime and the SMTP counters move without events.
    if (!this.gone) this.statsTimer = setTimeout(() => this.loadStats(), 15000);
  }

  statsSoon() {
    clearTimeout(this.statsSoonTimer);
    this.statsSoonTimer = setTimeout(() => this.loadStats(), 300);
  }

  // ----- fault injection -----

  async loadChaos() {
    try {
      this.showChaos(await get('/api/v1/admin/chaos'));
    } catch (e) {
      if (e.code === 'chaos_disabled') return this.showChaos({ enabled: false, rules: [] });
      if (e.status === 401) return this.ended();
      sayError(e, 'Could not load the fault-injection rules');
    }
  }

  showChaos(view) {
    this.chaosNotice.hidden = view.enabled;
    for (const el of this.chaosForm.querySelectorAll('input, button')) el.disabled = !view.enabled;
    fill(this.chaosRules, view.rules.map((r) => h('li', { dataset: { id: String(r.id) } },
      h('code', { class: 'rule' }, r.rule),
      h('span', { class: 'muted fired', title: 'Times it fired' }, `fired ${count(r.fired)}×`),
      button(`Remove rule ${r.rule}`, 'x', { class: 'remove ghost small', onclick: () => this.removeRule(r.id) }, true))));
    if (view.enabled && !view.rules.length) {
      this.chaosRules.append(h('li', { class: 'none muted' }, 'No rules: every SMTP command and API send succeeds.'));
    }
  }

  async addRule() {
    const rule = this.chaosInput.value.trim();
    if (!rule) return;
    try {
      await post('/api/v1/admin/chaos/rules', { rule });
      this.chaosInput.value = '';
      say('Rule added');
      this.loadChaos();
    } catch (e) {
      if (e.code === 'chaos_disabled') this.showChaos({ enabled: false, rules: [] });
      sayError(e, 'Rule not added');
      this.chaosInput.focus();
    }
  }

  async removeRule(id) {
    try {
      await del(`/api/v1/admin/chaos/rules/${seg(String(id))}`);
      say('Rule removed');
    } catch (e) {
      sayError(e, 'Rule not removed');
    }
    this.loadChaos();
  }

  async clearChaos() {
    try {
      await del('/api/v1/admin/chaos');
      say('Every rule removed');
    } catch (e) {
      sayError(e, 'Rules not removed');
    }
    this.loadChaos();
  }

  // ----- purge -----

  async purge(input) {
    const older = input.value.trim();
    if (!older) return;
    const everything = /^0+(\.0*)?\s*[a-z]*$/i.test(older);
    try {
      // A dry run first, to say what would go (and to check the duration); nothing to
      // delete needs no question.
      const dry = await post('/api/v1/admin/purge', { older_than: older, dry_run: true });
      const question = everything
        ? `Delete all ${messages(dry.deleted)} (${size(dry.bytes)})?`
        : `Delete ${messages(dry.deleted)} (${size(dry.bytes)}) older than ${older}?`;
      if (dry.deleted && !await confirmAction('Purge', question, 'Purge')) return;
      const r = await post('/api/v1/admin/purge', { older_than: older });
      const what = `${messages(r.deleted)} (${size(r.bytes)})`;
      say(everything ? `Purged every message: ${what}` : `Purged ${what} older than ${older}`);
      if (r.deleted) { this.viewer.clear(); this.list.reload(); }
      this.loadStats();
    } catch (e) {
      if (e.status === 401) return this.ended();
      sayError(e, 'Not purged');
    }
  }

  // ----- session and live updates -----

  async signOut() {
    try { await del('/api/v1/admin/session'); } catch { /* gone already */ }
    this.teardown();
    loginScreen(this.root);
    say('Signed out of the operator view');
  }

  ended() {
    if (this.gone) return;
    this.teardown();
    loginScreen(this.root);
    say('The operator session ended (the server may have restarted); enter the token again.', 'error');
  }

  teardown() {
    this.gone = true;
    this.life.abort();
    if (this.stream) this.stream.close();
    clearInterval(this.list.clock);
    clearTimeout(this.statsTimer);
    document.body.classList.remove('reading', 'nav-open');
  }

  listen() {
    this.stream = follow('/api/v1/admin/events', {
      state: (s) => {
        setLive(this.live, s);
        if (s === 'closed' && !this.gone) get('/api/v1/admin/stats').catch((e) => { if (e.status === 401) this.ended(); });
      },
      received: (m) => {
        if (this.matches(m)) this.list.add(m);
        this.statsSoon();
        notify(`${who(m.from)}: ${m.subject || '(no subject)'}`, `To ${(m.recipients || []).join(', ')}`, () => this.open(m.id));
      },
      deleted: (m) => {
        this.list.remove(m.id);
        if (this.viewer.msg && this.viewer.msg.id === m.id) this.viewer.clear();
        this.statsSoon();
      },
    });
  }

  bindKeys() {
    bindKeys({
      j: () => this.list.move(1),
      k: () => this.list.move(-1),
      Enter: () => {
        const a = document.activeElement;
        if (a && a.matches('button, a, summary, input, select, textarea') && !a.closest('#message-list')) return false;
        const id = this.list.current();
        if (id) this.open(id);
      },
      '#': () => this.remove(),
      '/': () => { this.search.focus(); this.search.select(); },
      '?': () => this.keys.showModal(),
      Escape: () => { if (this.viewer.msg) this.close(); else return false; },
    }, this.life.signal);
  }
}
