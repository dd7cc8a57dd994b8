// Dates, sizes and addresses as people read them.

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const yearFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** "now", "5 min. ago", "3 hr. ago", "yesterday", then "12 Mar" or "12 Mar 2024". */
export function relative(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'now';
  if (s < 3600) return rtf.format(-Math.round(s / 60), 'minute');
  if (s < 86400) return rtf.format(-Math.round(s / 3600), 'hour');
  if (s < 7 * 86400) return rtf.format(-Math.round(s / 86400), 'day');
  const d = new Date(t);
  return d.getFullYear() === new Date(now).getFullYear() ? dayFmt.format(d) : yearFmt.format(d);
}

/** The date and time in full, in the reader's time zone. */
export function full(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : fullFmt.format(new Date(t));
}

/** 1536 -> "1.5 KB". */
export function size(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n;
  let u = -1;
  do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** "Alice <alice@example.test>" or "alice@example.test". */
export function address(a) {
  if (!a) return '';
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

/** The name, else the address. */
export function who(a) {
  return a ? (a.name || a.address || '(unknown sender)') : '(unknown sender)';
}

export function addresses(list) {
  return (list || []).map(address).join(', ');
}

/** Whole seconds as "3 d 4 h", "5 min", "12 s". */
export function duration(secs) {
  const d = Math.floor(secs / 86400);
  const hr = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${m} min`;
  if (m) return `${m} min`;
  return `${secs} s`;
}

/** A number with thousands separators. */
export function count(n) {
  return new Intl.NumberFormat().format(n);
}

/** "1 message", "1,234 messages". */
export function messages(n) {
  return `${count(n)} message${n === 1 ? '' : 's'}`;
}

/** "Inbox" for the system mailboxes, the name as spelled for the user's own. */
export function mailboxLabel(name) {
  const system = { inbox: 'Inbox', sent: 'Sent', archive: 'Archive', trash: 'Trash' };
  return system[name] || name;
}
