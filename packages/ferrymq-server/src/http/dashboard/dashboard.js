// Ferry dashboard: a hash-routed single page of plain browser JavaScript (no build step, no
// CDN). Live numbers come from /v1/events/stats; each view reads the gateway's REST routes.
// Every piece of data is put in the page as text, never parsed as HTML.
import { StatsHistory } from './charts.js';
import { $, fmtAge } from './util.js';
import { askForToken, setupLogout, streamEvents } from './auth.js';
import { forgetToken, token } from './token.js';
import { renderOverview } from './view-overview.js';
import { renderQueues } from './view-queues.js';
import { renderJobs } from './view-jobs.js';
import { renderSend } from './view-send.js';
import { renderTopics } from './view-topics.js';
import { renderConnections } from './view-connections.js';

const STATS_INTERVAL_MS = 1000;
const THEMES = ['auto', 'dark', 'light'];
const THEME_KEY = 'ferry.theme';

const VIEWS = {
  overview: renderOverview,
  queues: renderQueues,
  jobs: renderJobs,
  send: renderSend,
  topics: renderTopics,
  connections: renderConnections,
};

// ------------------------------------------------------------------ live stats

const history = new StatsHistory();
const listeners = new Set();
let lastStats = null;

const live = {
  history,
  get stats() {
    return lastStats;
  },
  /** Calls fn with each snapshot (and the latest at once); returns the unsubscribe. */
  subscribe(fn) {
    listeners.add(fn);
    if (lastStats) fn(lastStats);
    return () => listeners.delete(fn);
  },
};

function connect() {
  const badge = $('#live');
  const onStats = (data) => {
    badge.textContent = 'live';
    badge.className = 'live on';
    const s = JSON.parse(data);
    lastStats = s;
    history.add(s);
    $('#uptime').textContent = `up ${fmtAge(s.broker.uptimeMs)} · ${s.broker.queues} queues`;
    for (const fn of listeners) {
      try {
        fn(s);
      } catch (err) {
        console.warn('view update failed', err);
      }
    }
  };
  streamEvents(
    `/v1/events/stats?intervalMs=${STATS_INTERVAL_MS}`,
    (event, data) => event === 'stats' && onStats(data),
    (state) => {
      if (state === 'unauthorized') return void login('Log in to see this broker.');
      badge.textContent = 'reconnecting…';
      badge.className = 'live off';
    },
  );
}

// ------------------------------------------------------------------ routing

/** The route of the location hash: `#/queues/orders?state=dead` → path and params. */
function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [p, q = ''] = raw.split('?', 2);
  const path = p
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path: path.length ? path : ['overview'], params: new URLSearchParams(q) };
}

let dispose = null;
/** Set while the login form is shown: no view renders meanwhile. */
let loggingIn = null;
/** Counts renders: a render that finishes after a newer one started cleans up at once. */
let renders = 0;

async function show() {
  if (loggingIn) return;
  const mine = ++renders;
  const route = parseRoute();
  const name = route.path[0];
  const render = VIEWS[name] ?? VIEWS.overview;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const root = $('#view');
  if (typeof dispose === 'function') dispose();
  dispose = null;
  root.replaceChildren();
  root.dataset.view = VIEWS[name] ? name : 'overview';
  document.title = `Ferry dashboard · ${root.dataset.view}`;
  try {
    const cleanup = await render(root, route, live);
    if (mine === renders) dispose = cleanup;
    else if (typeof cleanup === 'function') cleanup();
  } catch (err) {
    if (mine === renders && !loggingIn) root.append(String(err?.message ?? err));
  }
}

// ------------------------------------------------------------------ colour scheme

function applyTheme(theme) {
  if (theme === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.dataset.theme = theme;
  const b = $('#theme');
  b.textContent = theme;
  b.setAttribute('aria-label', `colour scheme: ${theme}`);
}

function setupTheme() {
  let theme = localStorage.getItem(THEME_KEY);
  if (!THEMES.includes(theme)) theme = 'auto';
  applyTheme(theme);
  $('#theme').addEventListener('click', () => {
    theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    localStorage.setItem(THEME_KEY, theme);
    applyTheme(theme);
    // Charts read the colours when drawn: redraw with the new ones.
    if (lastStats) for (const fn of listeners) fn(lastStats);
  });
}

// ------------------------------------------------------------------ token

/** Shows the login form (once, however many requests were refused), then the page again. */
function login(reason) {
  loggingIn ??= (async () => {
    if (typeof dispose === 'function') dispose();
    dispose = null;
    renders++;
    if (token()) {
      forgetToken();
      reason = 'The token was refused (revoked?): log in again.';
    }
    await askForToken($('#view'), reason);
    location.reload();
  })();
  return loggingIn;
}

setupTheme();
setupLogout();
window.addEventListener('ferry:unauthorized', () => void login('Log in to see this broker.'));
window.addEventListener('hashchange', () => void show());
connect();
void show();
