// The HTTP API client: bearer token from localStorage, one error shape, upload progress.
//
// Every failed call throws ApiError carrying the server's stable `code` and `message`
// ({"error": {"code", "message"}}), so screens can show a clear message and branch on codes.

const TOKEN_KEY = 'ephemera.token';

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** The user id a JWT names (its `sub`), read without verifying: for display only. */
export function tokenSubject(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '==='.slice((part.length + 3) % 4)));
    return { sub: claims.sub ?? null, exp: claims.exp ?? null };
  } catch {
    return { sub: null, exp: null };
  }
}

function errorFrom(status, body, retryAfter) {
  const err = body && body.error;
  if (err && err.code) return new ApiError(status, err.code, err.message || err.code, retryAfter);
  return new ApiError(status, `http_${status}`, `The server answered ${status}.`, retryAfter);
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, v);
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * Call the JSON API. `api('/v1/me')`, `api('/v1/stories', {method: 'POST', body: {...}})`.
 * Resolves to the parsed JSON (or null for 204); rejects with ApiError.
 */
export async function api(path, { method = 'GET', body, query, auth = true, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(withQuery(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON: handled below */
  }
  if (!res.ok) {
    const err = errorFrom(res.status, data, res.headers.get('Retry-After'));
    if (res.status === 401) window.dispatchEvent(new CustomEvent('ephemera:unauthorized'));
    throw err;
  }
  return data;
}

/**
 * POST a multipart form with upload progress (fetch cannot report upload progress;
 * XMLHttpRequest can). `onProgress(fraction)` gets 0..1. Returns {promise, abort}.
 */
export function upload(path, form, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.setRequestHeader('Accept', 'application/json');
    const token = getToken();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    // Small uploads can finish before any progress event: completion says 100% by itself.
    xhr.upload.onload = () => onProgress && onProgress(1);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(errorFrom(xhr.status, data, xhr.getResponseHeader('Retry-After')));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload failed: connection lost.'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Upload cancelled.'));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/** A human sentence for an error, with the retry hint for rate limits. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 429 && err.retryAfter) {
    return `${err.message} Try again in ${err.retryAfter} s.`;
  }
  return err.message;
}
