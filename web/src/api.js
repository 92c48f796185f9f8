// The REST client: same origin as the page, JSON in and out, the server's
// error text ({error, message}) surfaced as the Error's message.

let token = null;
let onUnauthorized = null;

export function setToken(t) {
  token = t;
}

/* Called with the server's message when a request with a token gets 401
   (the token expired or was revoked): the session ends. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, { method = 'GET', body, query, signal } = {}) {
  let url = `/api${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
    }
    const s = qs.toString();
    if (s) url += `?${s}`;
  }
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;

  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('Cannot reach the server. Check your connection and try again.', 0, null);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    let message = (data && (data.message || data.error)) || `Request failed (HTTP ${res.status})`;
    if (res.status === 429) {
      const retry = res.headers.get('Retry-After');
      if (retry) message += ` (retry in ${retry} s)`;
    }
    if (res.status === 401 && token && onUnauthorized) onUnauthorized(message);
    throw new ApiError(message, res.status, data);
  }
  return data;
}

export const STATUSES = ['To-Do', 'In Progress', 'Completed'];
export const PRIORITIES = ['Low', 'Medium', 'High'];
export const PRESENCE = [
  { value: 'online', label: 'Online' },
  { value: 'dnd', label: 'Do not disturb' },
  { value: 'offline', label: 'Appear offline' },
];
