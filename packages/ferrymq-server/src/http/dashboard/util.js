// Shared helpers of the dashboard: DOM building (text only: data never goes through HTML
// parsing), formatting, the JSON API client and hash links.
import { authHeaders } from './token.js';

/** Builds an element. attrs: class, data-*, aria-*, on<event> functions, other properties. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'for')
      e.setAttribute(k, String(v));
    else if (k.startsWith('on') && typeof v === 'function')
      e.addEventListener(k.slice(2).toLowerCase(), v);
    else e[k] = v;
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtAge(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function fmtTime(t) {
  if (!t) return '–';
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export const fmtRate = (r) => (r ?? 0).toFixed(1);

/** A body preview {size, encoding, preview, truncated} as one line of text. */
export function previewText(p) {
  if (!p) return '';
  const text = p.encoding === 'base64' ? `(base64) ${p.preview}` : p.preview;
  return p.truncated ? `${text}…` : text;
}

/** An error of the gateway: `code` from docs/errors.md and its message. */
class ApiError extends Error {
  constructor(code, message, status) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status;
  }
}

export async function api(method, path, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent('ferry:unauthorized'));
  if (!res.ok) {
    throw new ApiError(data?.code ?? 'HTTP', data?.message ?? `HTTP ${res.status}`, res.status);
  }
  return data;
}

export const enc = encodeURIComponent;

/** `#/a/b?k=v`: the link of a view; empty params are left out. */
export function href(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const qs = q.toString();
  return `#/${path.map(enc).join('/')}${qs ? `?${qs}` : ''}`;
}

/** A table in a wrapper that scrolls sideways on narrow screens (the page itself never does). */
export function table(id, headers, rows, empty) {
  const head = el(
    'tr',
    {},
    headers.map((h) => {
      const [label, cls] = Array.isArray(h) ? h : [h, ''];
      return el('th', { class: cls, scope: 'col' }, label);
    }),
  );
  const body = el('tbody', {}, rows);
  if (rows.length === 0 && empty) {
    body.append(el('tr', {}, el('td', { colSpan: headers.length, class: 'muted' }, empty)));
  }
  return el('div', { class: 'table-wrap' }, el('table', { id }, el('thead', {}, head), body));
}

/** A status line for the outcome of an action (role=status: read out when it changes). */
export function statusLine(id) {
  const p = el('p', { id, class: 'status-line', role: 'status' });
  return {
    node: p,
    ok(msg) {
      p.textContent = msg;
      p.className = 'status-line ok';
    },
    fail(err) {
      p.textContent = String(err?.message ?? err);
      p.className = 'status-line bad';
    },
    clear() {
      p.textContent = '';
      p.className = 'status-line';
    },
  };
}

/** A labelled key/value list for detail panels. */
export function facts(pairs) {
  return el(
    'dl',
    { class: 'facts' },
    pairs
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [el('dt', {}, k), el('dd', {}, v === null ? '–' : v)]),
  );
}

/** Pretty JSON when the text is JSON, else the text. */
export function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
