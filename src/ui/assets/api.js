// The REST API, as the UI calls it: cookie sessions (never a token in JavaScript), the
// `X-Requested-With` header the server wants with a cookie, and errors as exceptions.

/** An error answer of the API: `{"error": {"code", "message", "field"?}}`. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const HEADERS = { 'X-Requested-With': 'fakemail' };

async function request(method, path, { body, headers, as = 'json' } = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { ...HEADERS, ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (!res.ok) {
    let e = {};
    try { e = (await res.json()).error || {}; } catch { /* not the JSON envelope */ }
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText || 'request failed', e.field);
  }
  if (res.status === 204) return null;
  return as === 'text' ? res.text() : res.json();
}

export const get = (path) => request('GET', path);
export const getText = (path) => request('GET', path, { as: 'text' });
export const post = (path, body, headers) => request('POST', path, { body, headers });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path, body) => request('DELETE', path, { body });

/** A path with a query of the non-empty values of `params`. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** A path segment, percent-encoded. */
export const seg = (s) => encodeURIComponent(s);

/**
 * Follows a Server-Sent Events stream. `on.received(summary)` and `on.deleted(summary)` per
 * event; `on.state('live' | 'connecting' | 'closed')` as the connection changes. The browser
 * reconnects by itself (sending `Last-Event-ID`, so nothing stored meanwhile is missed); a stream
 * the server refuses (the session ended) is closed for good.
 */
export function follow(path, on) {
  const es = new EventSource(path);
  const parse = (e) => { try { return JSON.parse(e.data); } catch { return null; } };
  es.addEventListener('open', () => on.state && on.state('live'));
  es.addEventListener('error', () => {
    if (on.state) on.state(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
  });
  es.addEventListener('message.received', (e) => { const m = parse(e); if (m) on.received(m); });
  es.addEventListener('message.deleted', (e) => { const m = parse(e); if (m) on.deleted(m); });
  return es;
}
