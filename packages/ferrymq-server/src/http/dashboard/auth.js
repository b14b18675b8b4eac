// The dashboard's bearer token: asked for when the gateway answers 401 (an auth file is on),
// kept in sessionStorage (this tab only, gone when it closes) and never put in a URL. Every
// request of the page carries it in an Authorization header, the live stream included (read
// with fetch, since EventSource cannot send headers).
import { $, el } from './util.js';
import { authHeaders, forgetToken, token, TOKEN_KEY } from './token.js';

/** Wait before reading the live stream again after it broke. */
const RECONNECT_MS = 2000;

/**
 * Shows the login form in place of the views; resolves once the gateway takes the token typed
 * (checked with a request, so a wrong one is said at once).
 */
export function askForToken(root, reason) {
  return new Promise((resolve) => {
    const input = el('input', {
      id: 'token',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
      'aria-label': 'token',
    });
    const status = el('p', { id: 'login-status', class: 'status-line', role: 'status' }, reason);
    const form = el(
      'form',
      {
        id: 'login',
        class: 'panel',
        onsubmit: async (e) => {
          e.preventDefault();
          const t = input.value.trim();
          if (!t) return;
          const res = await fetch('/v1/stats', { headers: { authorization: `Bearer ${t}` } });
          if (res.status === 401) {
            status.textContent = 'This token is not accepted.';
            status.className = 'status-line bad';
            return;
          }
          sessionStorage.setItem(TOKEN_KEY, t);
          resolve();
        },
      },
      el('h2', {}, 'Log in'),
      el('p', { class: 'muted' }, 'This broker asks for a token (an HTTP token of its auth file).'),
      el('label', { for: 'token' }, 'Token'),
      input,
      el('button', { type: 'submit' }, 'Log in'),
      status,
    );
    root.replaceChildren(form);
    document.body.dataset.auth = 'login';
    input.focus();
  });
}

/** One server-sent event block (`event:`, `data:` lines) → {event, data}. */
function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i === -1 ? line : line.slice(0, i);
    const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}

/**
 * Reads a server-sent event stream with the token, calling onEvent(name, data) per event, and
 * reconnects when it breaks. onState('live' | 'reconnecting' | 'unauthorized'); on a 401 it
 * stops. Returns a function that stops it.
 */
export function streamEvents(path, onEvent, onState) {
  const abort = new AbortController();
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await fetch(path, { headers: authHeaders(), signal: abort.signal });
        if (res.status === 401) {
          onState('unauthorized');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buf.indexOf('\n\n')) !== -1) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const e = parseEvent(block);
            if (e.data !== '') onEvent(e.event, e.data);
          }
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
  };
  void run();
  return () => abort.abort();
}

/** The header's log out button, shown while a token is kept. */
export function setupLogout() {
  const b = $('#logout');
  b.hidden = !token();
  b.addEventListener('click', () => {
    forgetToken();
    location.reload();
  });
}
