// The user's view at `/`: sign up and sign in, mailboxes, the list, the viewer, compose,
// profile, live updates and notifications.

import { h, icon, button, fill, field, say, sayError, ready, dialog, keysDialog, addressList, confirmAction } from './dom.js';
import { get, post, patch, del, withQuery, seg, follow, ApiError } from './api.js';
import { MessageList } from './list.js';
import { Viewer } from './viewer.js';
import { bindKeys, HELP } from './keys.js';
import { mailboxLabel, who, messages } from './format.js';
import { topbar, liveBadge, setLive, smtpHint, notifyButton, notify } from './shell.js';

const SYSTEM = ['inbox', 'sent', 'archive', 'trash'];
const SYSTEM_ICONS = { inbox: 'inbox', sent: 'sent', archive: 'archive', trash: 'trash' };

export async function start(root) {
  try {
    const me = await get('/api/v1/me');
    new MailApp(root, me);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) sayError(e);
    authScreen(root);
  }
}

// ----- signing in --------------------------------------------------------------------------

function authScreen(root, signup = false) {
  ready(false);
  const signinEmail = h('input', { id: 'signin-email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const signinPassword = h('input', { id: 'signin-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const signin = h('form', { id: 'signin', class: 'stack', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    field('Email', signinEmail),
    field('Password', signinPassword),
    h('button', { type: 'submit', id: 'signin-submit', class: 'primary wide' }, 'Sign in'),
    h('p', { class: 'switch' }, 'No account yet? ',
      h('button', { type: 'button', id: 'show-signup', class: 'linklike', onclick: () => toggle(true) }, 'Create one')));

  const signupEmail = h('input', { id: 'signup-email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const signupPassword = h('input', { id: 'signup-password', type: 'password', name: 'new-password', autocomplete: 'new-password', required: true, minlength: 8, 'aria-describedby': 'signup-password-hint' });
  const signupName = h('input', { id: 'signup-name', type: 'text', name: 'name', autocomplete: 'name', maxlength: 100 });
  const signupForm = h('form', { id: 'signup', class: 'stack', 'aria-labelledby': 'signup-title', hidden: true },
    h('h1', { id: 'signup-title' }, 'Create an account'),
    field('Email', signupEmail),
    field('Password', signupPassword, 'At least 8 characters, not a common password.'),
    field('Display name (optional)', signupName),
    h('button', { type: 'submit', id: 'signup-submit', class: 'primary wide' }, 'Create account'),
    h('p', { class: 'switch' }, 'Have an account? ',
      h('button', { type: 'button', id: 'show-signin', class: 'linklike', onclick: () => toggle(false) }, 'Sign in')));

  function toggle(up) {
    signin.hidden = up;
    signupForm.hidden = !up;
    (up ? signupEmail : signinEmail).focus();
  }

  async function enter(email, password) {
    const me = await post('/api/v1/auth/session', { email, password });
    new MailApp(root, me);
  }

  signin.addEventListener('submit', async (e) => {
    e.preventDefault();
    const b = e.submitter || signin.querySelector('[type=submit]');
    b.disabled = true;
    try {
      await enter(signinEmail.value.trim(), signinPassword.value);
    } catch (err) {
      sayError(err, 'Sign-in failed');
      signinPassword.select();
    } finally {
      b.disabled = false;
    }
  });
  signupForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const b = e.submitter || signupForm.querySelector('[type=submit]');
    b.disabled = true;
    try {
      const body = { email: signupEmail.value.trim(), password: signupPassword.value };
      if (signupName.value.trim()) body.display_name = signupName.value.trim();
      await post('/api/v1/auth/register', body);
      await enter(body.email, body.password);
      say('Welcome! Your account is ready.');
    } catch (err) {
      sayError(err, 'Sign-up failed');
      const at = { email: signupEmail, password: signupPassword, display_name: signupName }[err.field];
      if (at) at.focus();
    } finally {
      b.disabled = false;
    }
  });

  fill(root, h('div', { class: 'auth' },
    h('header', { class: 'auth-brand' }, h('img', { src: '/ui/icon.svg', alt: '', width: 40, height: 40 }), h('span', null, 'fakemail')),
    h('main', { id: 'main', class: 'card' }, signin, signupForm),
    h('footer', { class: 'auth-foot' }, 'A fake mail server: nothing sent here leaves it. ',
      h('a', { href: '/admin' }, 'Operator view'))));
  toggle(signup);
  ready();
}

// ----- the signed-in view -----------------------------------------------------------------

class MailApp {
  constructor(root, me) {
    ready(false);
    this.root = root;
    this.me = me;
    this.mailboxes = [];
    this.mailbox = 'inbox';
    this.query = '';
    this.stream = null;
    // Ends the document-wide listeners of this view when it goes (sign-out, session ended).
    this.life = new AbortController();

    this.viewer = new Viewer({
      base: '/api/v1/messages',
      admin: false,
      mailboxes: () => this.mailboxes.map((m) => m.name),
      actions: {
        read: () => this.toggleRead(),
        star: () => this.toggleStar(),
        archive: () => this.moveTo('archive'),
        move: (name) => this.moveTo(name),
        remove: () => this.remove(false),
        removeForever: () => this.remove(true),
        back: () => this.closeMessage(),
      },
    });
    this.list = new MessageList({
      admin: false,
      fetch: (cursor) => get(withQuery(`/api/v1/mailboxes/${seg(this.mailbox)}/messages`, { cursor, q: this.query, limit: 50 })),
      open: (id) => this.go(this.mailbox, id),
      empty: () => this.emptyState(),
      invalid: (bad) => (bad ? this.search.setAttribute('aria-invalid', 'true') : this.search.removeAttribute('aria-invalid')),
    });
    this.build();
    this.listen();
    this.bindKeys();
    window.addEventListener('hashchange', () => this.route(), { signal: this.life.signal });
    this.route(true);
  }

  build() {
    this.search = h('input', { id: 'search', type: 'search', placeholder: 'Search mail', 'aria-label': 'Search mail', autocomplete: 'off', enterkeyhint: 'search' });
    let timer;
    this.search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.setQuery(this.search.value.trim()), 300);
    });
    const searchForm = h('form', { role: 'search', class: 'search', onsubmit: (e) => { e.preventDefault(); clearTimeout(timer); this.setQuery(this.search.value.trim()); } },
      icon('search'), this.search);

    this.whoami = h('span', { id: 'whoami', class: 'whoami', title: this.me.email }, this.me.email);
    this.live = liveBadge();
    const header = topbar({
      brandHref: '#/inbox',
      search: searchForm,
      actions: [
        button('Compose', 'pencil', { id: 'compose-open', class: 'primary', onclick: () => this.openCompose() }),
        this.live,
        notifyButton(),
        button('Keyboard shortcuts', 'keys', { class: 'ghost', onclick: () => this.keys.showModal() }, true),
        h('div', { class: 'account' },
          this.whoami,
          button('Profile', 'user', { id: 'profile-open', class: 'ghost', onclick: () => this.openProfile() }, true),
          button('Sign out', 'out', { id: 'signout', class: 'ghost', onclick: () => this.signOut() }, true)),
      ],
    });

    this.nav = h('ul', { class: 'boxes' });
    this.newName = h('input', { id: 'new-mailbox-name', type: 'text', maxlength: 64, placeholder: 'Name', 'aria-label': 'New mailbox name', required: true });
    this.newForm = h('form', { class: 'new-box', hidden: true },
      this.newName,
      h('button', { type: 'submit', class: 'small primary' }, 'Add'),
      button('Cancel', 'x', { class: 'ghost small', onclick: () => { this.newForm.hidden = true; } }, true));
    this.newForm.addEventListener('submit', (e) => { e.preventDefault(); this.createMailbox(); });
    this.deleteBox = button('Delete mailbox', 'minus', { id: 'delete-mailbox', class: 'ghost small', onclick: () => this.deleteMailbox() });
    const nav = h('nav', { id: 'mailboxes', class: 'sidebar', 'aria-label': 'Mailboxes' },
      this.nav,
      this.newForm,
      h('div', { class: 'box-tools' },
        button('New mailbox', 'plus', { id: 'new-mailbox', class: 'ghost small', onclick: () => { this.newForm.hidden = false; this.newName.focus(); } }),
        this.deleteBox));
    nav.addEventListener('click', (e) => {
      if (e.target.closest('a[data-mailbox]')) document.body.classList.remove('nav-open');
    });

    this.title = h('h1', { id: 'list-title' }, 'Inbox');
    this.emptyTrash = button('Empty trash', 'trash', { id: 'empty-trash', class: 'small danger-quiet', hidden: true, onclick: () => this.emptyTrashNow() });
    const listPane = h('section', { class: 'list-pane', 'aria-labelledby': 'list-title' },
      h('div', { class: 'list-head' }, this.title, this.emptyTrash),
      this.list.el);

    this.keys = keysDialog([HELP.j, HELP.k, HELP.Enter, HELP.e, HELP['#'], HELP.s, HELP.u, HELP.c, HELP['/'], HELP.Escape, HELP['?']]);
    this.compose = this.composeDialog();
    this.profile = this.profileDialog();

    fill(this.root, h('div', { class: 'app' },
      header,
      nav,
      h('button', { type: 'button', class: 'scrim', tabindex: '-1', 'aria-hidden': 'true', onclick: () => document.body.classList.remove('nav-open') }),
      h('main', { id: 'main', class: 'panes' }, listPane, this.viewer.el),
      this.keys, this.compose, this.profile));
  }

  // ----- navigation: #/<mailbox>[/<id>] -----

  go(mailbox, id) {
    const hash = `#/${encodeURIComponent(mailbox)}${id ? '/' + encodeURIComponent(id) : ''}`;
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  async route(first = false) {
    const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
    const mailbox = parts[0] || 'inbox';
    const id = parts[1] || null;
    const switched = first || mailbox.toLowerCase() !== this.mailbox.toLowerCase();
    if (switched) {
      this.mailbox = mailbox;
      await this.loadMailboxes();
      this.markMailbox();
      this.viewer.clear();
      const ok = await this.list.reload();
      if (!ok && first) {
        // An unknown mailbox in the address: the inbox instead.
        if (mailbox !== 'inbox') return this.go('inbox');
      }
      ready();
    }
    if (id) await this.open(id);
    else if (this.viewer.msg) this.closeMessage(false);
  }

  async loadMailboxes() {
    try {
      this.mailboxes = await get('/api/v1/mailboxes');
    } catch (e) {
      if (e.status === 401) return this.ended();
      sayError(e, 'Could not load mailboxes');
    }
    const found = this.mailboxes.find((m) => m.name.toLowerCase() === this.mailbox.toLowerCase());
    if (found) this.mailbox = found.name;
    this.drawMailboxes();
  }

  drawMailboxes() {
    fill(this.nav, this.mailboxes.map((m) => {
      const system = SYSTEM.includes(m.name);
      return h('li', null,
        h('a', { href: `#/${encodeURIComponent(m.name)}`, dataset: { mailbox: m.name }, class: m.unread ? 'has-unread' : '' },
          icon(system ? SYSTEM_ICONS[m.name] : 'folder'),
          h('span', { class: 'name' }, mailboxLabel(m.name)),
          h('span', { class: 'count', 'aria-label': m.unread ? `${m.unread} unread` : null }, m.unread ? String(m.unread) : '')));
    }));
    this.markMailbox();
    const inbox = this.mailboxes.find((m) => m.name === 'inbox');
    document.title = inbox && inbox.unread ? `(${inbox.unread}) fakemail` : 'fakemail';
  }

  markMailbox() {
    for (const a of this.nav.querySelectorAll('a[data-mailbox]')) {
      if (a.dataset.mailbox === this.mailbox) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const trash = this.mailbox === 'trash';
    this.emptyTrash.hidden = !trash;
    this.deleteBox.disabled = SYSTEM.includes(this.mailbox);
    this.deleteBox.title = this.deleteBox.disabled ? 'Only your own mailboxes can be deleted' : `Delete “${this.mailbox}” (it must be empty)`;
    this.title.textContent = this.query ? `Search in ${mailboxLabel(this.mailbox)}` : mailboxLabel(this.mailbox);
  }

  refreshCounts() {
    clearTimeout(this.countTimer);
    this.countTimer = setTimeout(() => { if (!this.gone) this.loadMailboxes(); }, 150);
  }

  setQuery(q) {
    if (q === this.query) return;
    this.query = q;
    this.markMailbox();
    this.viewer.clear();
    this.list.reload();
  }

  emptyState() {
    if (this.query) {
      return h('div', { class: 'empty' }, icon('search', 'big'),
        h('p', { class: 'lead' }, `No messages match “${this.query}”`),
        h('p', null, 'Search looks at subjects, addresses, names and text.'));
    }
    switch (this.mailbox) {
      case 'inbox':
        return h('div', { class: 'empty' }, icon('inbox', 'big'),
          h('p', { class: 'lead' }, 'No messages yet'),
          h('p', null, 'Send one over SMTP and it shows up here at once:'),
          smtpHint(this.me.email),
          h('p', null, 'or ', h('button', { type: 'button', class: 'linklike', onclick: () => this.openCompose(this.me.email) }, 'write one to yourself'), '.'));
      case 'sent':
        return h('div', { class: 'empty' }, icon('sent', 'big'), h('p', { class: 'lead' }, 'Nothing sent yet'),
          h('p', null, 'Messages you send with Compose are kept here.'));
      case 'trash':
        return h('div', { class: 'empty' }, icon('trash', 'big'), h('p', { class: 'lead' }, 'Trash is empty'));
      case 'archive':
        return h('div', { class: 'empty' }, icon('archive', 'big'), h('p', { class: 'lead' }, 'Nothing archived'),
          h('p', null, 'Press ', h('kbd', null, 'e'), ' on a message to archive it.'));
      default:
        return h('div', { class: 'empty' }, icon('folder', 'big'), h('p', { class: 'lead' }, `“${this.mailbox}” is empty`),
          h('p', null, 'Move messages here with “Move”.'));
    }
  }

  // ----- messages -----

  async open(id) {
    this.list.select(id);
    try {
      const m = await get(`/api/v1/messages/${seg(id)}`);
      if (this.list.selected !== id && this.list.get(id)) return;
      this.viewer.show(m);
      if (!m.read) {
        const s = await patch(`/api/v1/messages/${seg(id)}`, { read: true });
        this.afterChange(s, false);
      }
    } catch (e) {
      if (e.status === 401) return this.ended();
      if (e.status === 404) {
        this.list.remove(id);
        this.go(this.mailbox);
      }
      sayError(e, 'Could not open the message');
    }
  }

  closeMessage(navigate = true) {
    const id = this.viewer.msg && this.viewer.msg.id;
    this.viewer.clear();
    this.list.select(null);
    if (navigate) this.go(this.mailbox);
    if (id) this.list.setCursor(id);
  }

  /** After a PATCH: the row, the viewer and the counts follow the copy's new state. */
  afterChange(s, announce = true, what) {
    const gone = s.mailbox.toLowerCase() !== this.mailbox.toLowerCase();
    if (gone) {
      const next = this.list.remove(s.id);
      if (this.viewer.msg && this.viewer.msg.id === s.id) {
        this.viewer.clear();
        this.go(this.mailbox);
        if (next) this.list.setCursor(next);
      }
    } else {
      this.list.update(s);
      if (this.viewer.msg && this.viewer.msg.id === s.id) {
        Object.assign(this.viewer.msg, s);
        this.viewer.flags(this.viewer.msg);
      }
    }
    this.refreshCounts();
    if (announce && what) say(what);
  }

  /** The copy actions act on: the open one, else the one under the cursor. */
  target() {
    if (this.viewer.msg) return this.viewer.msg;
    const id = this.list.current();
    return id ? this.list.get(id) : null;
  }

  async change(body, what) {
    const m = this.target();
    if (!m) return;
    try {
      const s = await patch(`/api/v1/messages/${seg(m.id)}`, body);
      this.afterChange(s, true, what);
    } catch (e) {
      if (e.status === 401) return this.ended();
      sayError(e);
    }
  }

  toggleRead() {
    const m = this.target();
    if (m) this.change({ read: !m.read }, m.read ? 'Marked unread' : 'Marked read');
  }

  toggleStar() {
    const m = this.target();
    if (m) this.change({ starred: !m.starred }, m.starred ? 'Star removed' : 'Starred');
  }

  moveTo(name) {
    const m = this.target();
    if (!m || m.mailbox.toLowerCase() === name.toLowerCase()) return;
    this.change({ mailbox: name }, `Moved to ${mailboxLabel(name)}`);
  }

  async remove(forever) {
    const m = this.target();
    if (!m) return;
    const permanent = forever || m.mailbox === 'trash';
    if (permanent && !await confirmAction('Delete forever',
      `Delete “${m.subject || '(no subject)'}” forever?`, 'Delete forever')) return;
    try {
      await del(withQuery(`/api/v1/messages/${seg(m.id)}`, { permanent: permanent ? 'true' : '' }));
      const next = this.list.remove(m.id);
      if (this.viewer.msg && this.viewer.msg.id === m.id) {
        this.viewer.clear();
        this.go(this.mailbox);
      }
      if (next) this.list.setCursor(next);
      this.refreshCounts();
      say(permanent ? 'Deleted forever' : 'Moved to Trash');
    } catch (e) {
      if (e.status === 401) return this.ended();
      sayError(e, 'Could not delete');
    }
  }

  async emptyTrashNow() {
    const trash = this.mailboxes.find((b) => b.name === 'trash');
    const n = trash ? trash.total : 0;
    const question = n ? `Delete the ${messages(n)} in the Trash forever?` : 'Empty the Trash?';
    if (!await confirmAction('Empty the Trash', question, 'Empty the Trash')) return;
    try {
      await del('/api/v1/mailboxes/trash/messages');
      this.viewer.clear();
      await this.list.reload();
      this.refreshCounts();
      say('Trash emptied');
    } catch (e) {
      sayError(e, 'Could not empty the trash');
    }
  }

  // ----- mailboxes -----

  async createMailbox() {
    const name = this.newName.value.trim();
    if (!name) return;
    try {
      const box = await post('/api/v1/mailboxes', { name });
      this.newName.value = '';
      this.newForm.hidden = true;
      await this.loadMailboxes();
      say(`Mailbox “${box.name}” created`);
      if (this.viewer.msg) this.viewer.flags(this.viewer.msg);
    } catch (e) {
      sayError(e, 'Could not create the mailbox');
      this.newName.focus();
    }
  }

  async deleteMailbox() {
    const name = this.mailbox;
    if (SYSTEM.includes(name)) return;
    if (!await confirmAction('Delete mailbox', `Delete the mailbox “${name}”?`, 'Delete mailbox')) return;
    try {
      await del(`/api/v1/mailboxes/${seg(name)}`);
      say(`Mailbox “${name}” deleted`);
      this.go('inbox');
    } catch (e) {
      sayError(e, 'Could not delete the mailbox');
    }
  }

  // ----- compose -----

  composeDialog() {
    const input = (id, label, attrs = {}) => field(label, h('input', { id, type: 'text', autocomplete: 'off', ...attrs }));
    this.composeError = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'stack compose' },
      input('compose-to', 'To', { placeholder: 'bob@example.test, carol@example.test', autocomplete: 'email', inputmode: 'email' }),
      h('div', { class: 'two' },
        input('compose-cc', 'Cc', { inputmode: 'email' }),
        input('compose-bcc', 'Bcc', { inputmode: 'email' })),
      input('compose-subject', 'Subject'),
      field('Message', h('textarea', { id: 'compose-text', rows: 10 })),
      this.composeError,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'ghost', onclick: () => this.compose.close() }, 'Cancel'),
        h('button', { type: 'submit', id: 'compose-send', class: 'primary' }, icon('sent'), h('span', { class: 'label' }, 'Send'))));
    form.addEventListener('submit', (e) => { e.preventDefault(); this.send(form); });
    return dialog('compose', 'New message', form);
  }

  openCompose(to = '') {
    const d = this.compose;
    d.querySelector('form').reset();
    this.composeError.textContent = '';
    d.querySelector('#compose-to').value = to;
    d.showModal();
    d.querySelector(to ? '#compose-subject' : '#compose-to').focus();
  }

  async send(form) {
    const v = (id) => form.querySelector('#' + id).value;
    const body = {
      to: addressList(v('compose-to')),
      cc: addressList(v('compose-cc')),
      bcc: addressList(v('compose-bcc')),
      subject: v('compose-subject'),
      text: v('compose-text'),
    };
    const b = form.querySelector('#compose-send');
    b.disabled = true;
    this.composeError.textContent = '';
    try {
      await post('/api/v1/messages', body);
      this.compose.close();
      say('Message sent');
      if (this.mailbox === 'sent') this.list.reload();
      this.refreshCounts();
    } catch (e) {
      if (e.status === 401) { this.compose.close(); return this.ended(); }
      this.composeError.textContent = e.message;
      sayError(e, 'Not sent');
      const name = (e.field || '').replace(/\[.*$/, '');
      const target = { to: 'compose-to', cc: 'compose-cc', bcc: 'compose-bcc', subject: 'compose-subject', text: 'compose-text' }[name];
      if (target) form.querySelector('#' + target).focus();
    } finally {
      b.disabled = false;
    }
  }

  // ----- profile -----

  profileDialog() {
    const name = h('input', { id: 'profile-name', type: 'text', autocomplete: 'name', maxlength: 100 });
    const current = h('input', { id: 'password-current', type: 'password', autocomplete: 'current-password' });
    const next = h('input', { id: 'password-new', type: 'password', autocomplete: 'new-password', minlength: 8 });
    this.profileError = h('p', { class: 'form-error', role: 'alert' });
    const nameForm = h('form', { class: 'stack' },
      h('h3', null, 'Display name'),
      h('p', { class: 'hint' }, 'Shown as the sender of the mail you write.'),
      field('Name', name),
      h('div', { class: 'dialog-actions' }, h('button', { type: 'submit', id: 'profile-save', class: 'primary' }, 'Save name')));
    nameForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        this.me = await patch('/api/v1/me', { display_name: name.value.trim() });
        say('Name saved');
      } catch (err) {
        this.profileError.textContent = err.message;
        sayError(err, 'Not saved');
      }
    });
    const pwForm = h('form', { class: 'stack' },
      h('h3', null, 'Password'),
      // For password managers: which account the new password belongs to.
      h('input', { type: 'email', autocomplete: 'username', value: this.me.email, readonly: true, hidden: true, 'aria-hidden': 'true', tabindex: '-1' }),
      field('Current password', current),
      field('New password', next, 'At least 8 characters. Your other sessions are signed out.'),
      h('div', { class: 'dialog-actions' }, h('button', { type: 'submit', id: 'password-save', class: 'primary' }, 'Change password')));
    pwForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await post('/api/v1/me/password', { current_password: current.value, new_password: next.value });
        current.value = '';
        next.value = '';
        this.profileError.textContent = '';
        say('Password changed');
      } catch (err) {
        this.profileError.textContent = err.message;
        sayError(err, 'Password not changed');
      }
    });
    const danger = h('div', { class: 'stack danger-zone' },
      h('h3', null, 'Delete account'),
      h('p', { class: 'hint' }, 'Deletes the account, its mailboxes and its copies of every message, for good. Enter your current password above first.'),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', id: 'delete-account', class: 'danger', onclick: () => this.deleteAccount(current) }, 'Delete account')));
    return dialog('profile', 'Profile', nameForm, pwForm, this.profileError, danger);
  }

  openProfile() {
    this.profile.querySelector('#profile-name').value = this.me.display_name || '';
    this.profileError.textContent = '';
    this.profile.showModal();
  }

  async deleteAccount(current) {
    if (!current.value) {
      this.profileError.textContent = 'Enter your current password to delete the account.';
      say('Enter your current password to delete the account.', 'error');
      current.focus();
      return;
    }
    const n = this.mailboxes.reduce((sum, b) => sum + b.total, 0);
    if (!await confirmAction('Delete account',
      `Delete the account ${this.me.email}, its mailboxes and its ${messages(n)}?`, 'Delete account')) return;
    try {
      await del('/api/v1/me', { password: current.value });
      this.profile.close();
      this.teardown();
      authScreen(this.root);
      say('Your account was deleted');
    } catch (err) {
      this.profileError.textContent = err.message;
      sayError(err, 'Account not deleted');
    }
  }

  // ----- session -----

  async signOut() {
    try {
      await del('/api/v1/auth/session');
    } catch (e) {
      if (e.status !== 401) return sayError(e, 'Could not sign out');
    }
    this.teardown();
    history.replaceState(null, '', location.pathname);
    authScreen(this.root);
    say('Signed out');
  }

  /** The session ended elsewhere (expired, password changed, signed out in another tab). */
  ended() {
    if (this.gone) return;
    this.teardown();
    authScreen(this.root);
    say('Your session ended; sign in again.', 'error');
  }

  teardown() {
    this.gone = true;
    this.life.abort();
    if (this.stream) this.stream.close();
    clearInterval(this.list.clock);
    document.body.classList.remove('reading', 'nav-open');
    document.title = 'fakemail';
  }

  // ----- live -----

  listen() {
    this.stream = follow('/api/v1/events', {
      state: (s) => {
        setLive(this.live, s);
        if (s === 'closed' && !this.gone) {
          // Refused: find out whether the session ended.
          get('/api/v1/me').catch((e) => { if (e.status === 401) this.ended(); });
        }
      },
      received: (m) => {
        if (m.mailbox.toLowerCase() === this.mailbox.toLowerCase() && !this.query) this.list.add(m);
        this.refreshCounts();
        if (m.mailbox === 'inbox' && !m.read) {
          notify(`${who(m.from)}: ${m.subject || '(no subject)'}`, m.snippet, () => this.go('inbox', m.id));
        }
      },
      deleted: (m) => {
        this.list.remove(m.id);
        if (this.viewer.msg && this.viewer.msg.id === m.id) {
          this.viewer.clear();
          this.go(this.mailbox);
        }
        this.refreshCounts();
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
        if (id) this.go(this.mailbox, id);
      },
      e: () => this.moveTo('archive'),
      '#': () => this.remove(false),
      s: () => this.toggleStar(),
      u: () => this.toggleRead(),
      c: () => this.openCompose(),
      '/': () => { this.search.focus(); this.search.select(); },
      '?': () => this.keys.showModal(),
      Escape: () => { if (this.viewer.msg) this.closeMessage(); else return false; },
    }, this.life.signal);
  }
}
