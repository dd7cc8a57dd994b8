// The message list (`#message-list`), shared by both views: pages fetched by cursor as the
// reader scrolls, rows added and removed live, a keyboard cursor.

import { h, icon, fill, sayError } from './dom.js';
import { relative, full, who, addresses } from './format.js';

/** Ids grow with arrival: compare them as numbers, newest first. */
function newer(a, b) {
  const x = BigInt(a);
  const y = BigInt(b);
  return x > y ? -1 : x < y ? 1 : 0;
}

export class MessageList {
  /**
   * @param {object} o
   * @param {(cursor: string|null) => Promise<{messages: object[], next_cursor: string|null}>} o.fetch
   * @param {(id: string) => void} o.open
   * @param {() => Node} o.empty the empty state
   * @param {(bad: boolean) => void} [o.invalid] told whether the search is malformed
   * @param {boolean} o.admin rows of the operator view (recipients, no read state)
   */
  constructor(o) {
    this.o = o;
    this.ul = h('ul', { id: 'message-list', class: 'messages', 'aria-label': 'Messages' });
    this.more = h('button', { type: 'button', id: 'load-more', class: 'more', hidden: true, onclick: () => this.loadMore() }, 'Load more');
    this.emptyBox = h('div', { class: 'empty-list', hidden: true });
    this.el = h('div', { class: 'list-scroll' }, this.ul, this.emptyBox, this.more);
    this.items = new Map();
    this.cursor = null;
    this.next = null;
    this.loading = false;
    this.generation = 0;
    this.selected = null;
    this.ul.addEventListener('click', (e) => {
      const li = e.target.closest('li[data-id]');
      if (li) this.o.open(li.dataset.id);
    });
    this.ul.addEventListener('focusin', (e) => {
      const li = e.target.closest('li[data-id]');
      if (li) this.setCursor(li.dataset.id, false);
    });
    // Infinite scroll: the next page once "Load more" comes into view.
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, { root: this.el, rootMargin: '200px' });
    this.observer.observe(this.more);
    // Relative times age.
    this.clock = setInterval(() => this.retime(), 30000);
  }

  /** Fetches the first page again, dropping what was shown. */
  async reload() {
    const gen = ++this.generation;
    this.ul.setAttribute('aria-busy', 'true');
    this.loading = true;
    try {
      const page = await this.o.fetch(null);
      if (gen !== this.generation) return false;
      this.items.clear();
      this.ul.replaceChildren();
      this.cursor = null;
      this.o.invalid?.(false);
      this.append(page);
      return true;
    } catch (e) {
      if (gen !== this.generation) return false;
      if (e.code === 'invalid_search') this.unfinished(e);
      else sayError(e, 'Could not load messages');
      return false;
    } finally {
      if (gen === this.generation) {
        this.loading = false;
        this.ul.removeAttribute('aria-busy');
      }
    }
  }

  /** Fetches the page after the last one shown. */
  async loadMore() {
    if (this.loading || !this.next) return;
    const gen = this.generation;
    this.loading = true;
    this.ul.setAttribute('aria-busy', 'true');
    try {
      const page = await this.o.fetch(this.next);
      if (gen === this.generation) this.append(page);
    } catch (e) {
      sayError(e, 'Could not load more messages');
    } finally {
      if (gen === this.generation) {
        this.loading = false;
        this.ul.removeAttribute('aria-busy');
      }
    }
  }

  append(page) {
    for (const m of page.messages) {
      if (this.items.has(m.id)) continue;
      const li = this.row(m);
      this.items.set(m.id, { m, li });
      this.ul.append(li);
    }
    this.next = page.next_cursor;
    this.more.hidden = !this.next;
    this.refreshEmpty();
    // A page that does not fill the pane: the observer fires only on a change, so ask again.
    if (this.next && this.el.scrollHeight <= this.el.clientHeight + 200) {
      queueMicrotask(() => this.loadMore());
    }
  }

  /** A search the server could not read, most often one still being typed (`from:`, an open
   * quote): no error, but what it lacks, in place of the list. */
  unfinished(e) {
    this.items.clear();
    this.ul.replaceChildren();
    this.next = null;
    this.more.hidden = true;
    this.o.invalid?.(true);
    this.emptyBox.hidden = false;
    fill(this.emptyBox, h('div', { class: 'empty', id: 'search-hint' }, icon('search', 'big'),
      h('p', { class: 'lead' }, 'Search not complete'),
      h('p', null, e.message)));
  }

  refreshEmpty() {
    const empty = this.items.size === 0 && !this.next;
    this.emptyBox.hidden = !empty;
    if (empty) fill(this.emptyBox, this.o.empty());
  }

  /** Adds a message that arrived, in its place (newest first); an update when it is shown. */
  add(m) {
    if (this.items.has(m.id)) return this.update(m);
    const li = this.row(m);
    li.classList.add('arrived');
    let before = null;
    for (const [id, it] of this.items) {
      if (newer(m.id, id) < 0) { before = it.li; break; }
    }
    // Older than everything shown while more pages remain: it belongs to a later page.
    if (!before && this.next) return;
    this.items.set(m.id, { m, li });
    this.items = new Map([...this.items].sort((a, b) => newer(a[0], b[0])));
    this.ul.insertBefore(li, before);
    this.refreshEmpty();
  }

  /** Redraws the row of `m` (flags changed). */
  update(m) {
    const it = this.items.get(m.id);
    if (!it) return;
    const merged = { ...it.m, ...m };
    const li = this.row(merged);
    if (this.selected === m.id) li.classList.add('selected');
    if (this.cursor === m.id) li.classList.add('cursor');
    const hadFocus = it.li.contains(document.activeElement);
    it.li.replaceWith(li);
    this.items.set(m.id, { m: merged, li });
    if (hadFocus) li.querySelector('button').focus();
  }

  get(id) {
    const it = this.items.get(id);
    return it ? it.m : null;
  }

  /** Removes a row; returns the id of the row that took its place, if any. */
  remove(id) {
    const it = this.items.get(id);
    if (!it) return null;
    const ids = [...this.items.keys()];
    const i = ids.indexOf(id);
    const after = ids[i + 1] || ids[i - 1] || null;
    it.li.remove();
    this.items.delete(id);
    if (this.cursor === id) this.cursor = null;
    if (this.selected === id) this.selected = null;
    this.refreshEmpty();
    return after;
  }

  /** Marks the open message. */
  select(id) {
    if (this.selected && this.items.has(this.selected)) {
      const old = this.items.get(this.selected).li;
      old.classList.remove('selected');
      old.querySelector('button').removeAttribute('aria-current');
    }
    this.selected = id;
    const it = id && this.items.get(id);
    if (it) {
      it.li.classList.add('selected');
      it.li.querySelector('button').setAttribute('aria-current', 'true');
      this.setCursor(id, false);
    }
  }

  setCursor(id, focus = true) {
    if (this.cursor && this.items.has(this.cursor)) this.items.get(this.cursor).li.classList.remove('cursor');
    this.cursor = id;
    const it = id && this.items.get(id);
    if (!it) return;
    it.li.classList.add('cursor');
    if (focus) {
      it.li.querySelector('button').focus();
      it.li.scrollIntoView({ block: 'nearest' });
    }
  }

  /** Moves the cursor by `step` rows (j: +1, k: -1), loading more at the end. */
  move(step) {
    const ids = [...this.items.keys()];
    if (!ids.length) return;
    const from = this.cursor || this.selected;
    let i = from ? ids.indexOf(from) : -1;
    i = i < 0 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, i + step));
    this.setCursor(ids[i]);
    if (i >= ids.length - 3) this.loadMore();
  }

  /** The id under the cursor, else the open one. */
  current() {
    return this.cursor || this.selected;
  }

  retime() {
    const now = Date.now();
    for (const t of this.ul.querySelectorAll('time.time')) t.textContent = relative(t.dateTime, now);
  }

  row(m) {
    const admin = this.o.admin;
    const unread = !admin && m.read === false;
    const marks = h('span', { class: 'marks' },
      m.starred ? h('span', { class: 'star', title: 'Starred' }, icon('star'), h('span', { class: 'sr' }, 'Starred')) : null,
      m.has_attachments ? h('span', { class: 'attachment', title: 'Has attachments' }, icon('clip'), h('span', { class: 'sr' }, 'Has attachments')) : null);
    const sender = m.mailbox === 'sent' ? `To: ${addresses(m.to) || '(no recipients)'}` : who(m.from);
    const li = h('li', { dataset: { id: m.id }, class: unread ? 'unread' : '' },
      h('button', { type: 'button', class: 'row' },
        unread ? h('span', { class: 'sr' }, 'Unread. ') : null,
        h('span', { class: 'line' },
          h('span', { class: 'from' }, sender),
          h('time', { class: 'time', datetime: m.received_at, title: full(m.received_at) }, relative(m.received_at))),
        admin ? h('span', { class: 'line' }, h('span', { class: 'to' }, 'To: ', (m.recipients || []).join(', ') || addresses(m.to))) : null,
        h('span', { class: 'line' },
          h('span', { class: 'subject' }, m.subject || '(no subject)'),
          marks),
        h('span', { class: 'snippet' }, m.snippet || '')));
    return li;
  }
}
