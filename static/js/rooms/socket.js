// The room WebSocket (protocol 1, docs/protocol.md): JSON messages {type, ...} both ways.
//
// `send()` attaches a `ref` so an `error` answering that message can be matched to it.
// The socket pings every PING_MS and reconnects with backoff after an unexpected close;
// it stops for good on closes that mean "do not come back" (removed, room ended, auth).

import { getToken } from '../api.js';

const PING_MS = 20000;
const MAX_ATTEMPTS = 8; // then give up and let the page offer a manual retry
// Do not come back after: 1000 room ended, 1008 policy, 1009 too big, 4403 removed,
// 4409 replaced by a newer connection of the same user (another tab). Reconnect after
// 1006 (network), 1011, 1012 (server restarting), 1013 (too slow).
const FINAL_CLOSE = (code) => [1000, 1008, 1009].includes(code) || (code >= 4000 && code < 5000);

/** The socket URL: the room socket's path (or an absolute URL) on `base`, with the token. */
export function socketUrl(path, base, token) {
  const url = new URL(path, base);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  url.searchParams.set('token', token || '');
  return url.href;
}

/** A server frame as a message `{type, ...}`, or null for anything else. */
export function parseMessage(text) {
  try {
    const msg = JSON.parse(text);
    return msg && typeof msg === 'object' && typeof msg.type === 'string' ? msg : null;
  } catch {
    return null;
  }
}

export class RoomSocket {
  /**
   * @param {string} url   the room socket's path, /v1/rooms/{id}/ws (the token is added here, never put in share links)
   * @param {(msg: object) => void} onMessage
   * @param {(state: 'connecting'|'open'|'closed', info?: object) => void} onState
   */
  constructor(url, onMessage, onState) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.nextRef = 1;
    this.attempt = 0;
    this.refusals = 0; // handshakes that failed in a row
    this.stopped = false;
    this.pingTimer = null;
    this.retryTimer = null;
    this.connect();
  }

  connect() {
    this.onState('connecting', { attempt: this.attempt });
    const ws = new WebSocket(socketUrl(this.url, location.href, getToken()));
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.refusals = 0;
      this.attempt = 0;
      this.onState('open');
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send('ping'), PING_MS);
    };
    ws.onmessage = (event) => {
      const msg = parseMessage(event.data);
      if (msg) this.onMessage(msg);
    };
    ws.onclose = (event) => {
      clearInterval(this.pingTimer);
      if (this.ws === ws) this.closed(event, opened);
    };
  }

  closed(event, opened) {
    this.ws = null;
    // A join the server refuses is an HTTP answer before the handshake (removed, ended,
    // not live yet...), which browsers only report as 1006: after two, stop retrying.
    if (!opened) this.refusals += 1;
    const refused = this.refusals >= 2;
    const final = this.stopped || FINAL_CLOSE(event.code) || refused || this.attempt >= MAX_ATTEMPTS;
    this.onState('closed', { code: event.code, reason: event.reason, final, refused });
    if (!final) {
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send `{type, ...data, ref}`; returns the ref, or null if the socket is not open. */
  send(type, data = {}) {
    if (!this.open) return null;
    const ref = String(this.nextRef++);
    this.ws.send(JSON.stringify({ type, ...data, ref }));
    return ref;
  }

  close() {
    this.stopped = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, 'leaving');
    this.ws = null;
  }
}
