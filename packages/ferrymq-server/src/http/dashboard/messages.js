// One queue's messages by state (ready / scheduled / leased / dead) in pages, and one message
// in detail (headers, attempts, body preview capped at 4 KiB) with delete and redrive. The
// state, page cursor and open message live in the URL.
import {
  api,
  el,
  enc,
  facts,
  fmtBytes,
  fmtTime,
  href,
  pretty,
  previewText,
  statusLine,
  table,
} from './util.js';

const STATES = ['ready', 'scheduled', 'leased', 'dead'];
const PAGE_SIZE = 20;
const LIST_PREVIEW_BYTES = 120;
const DETAIL_PREVIEW_BYTES = 4096;

/** Cursors of the pages before the current one, per queue and state (Previous goes back). */
const cursors = new Map();
/** The outcome of an action that navigated away from the detail, shown by the next render. */
let flash = null;

function stateTabs(route, name, state, counts) {
  return el(
    'div',
    { class: 'tabs', role: 'tablist', 'aria-label': 'message state' },
    STATES.map((s) =>
      el(
        'a',
        {
          role: 'tab',
          href: href(['queues', name], { state: s, range: route.params.get('range') }),
          'aria-selected': String(s === state),
          'data-state': s,
        },
        s,
        ' ',
        el('span', { class: 'count' }, counts[s] ?? '–'),
      ),
    ),
  );
}

function messageRow(route, name, m, selected) {
  const link = href(['queues', name], {
    state: m.state,
    after: route.params.get('after'),
    msg: m.id,
    range: route.params.get('range'),
  });
  return el(
    'tr',
    { 'data-id': m.id, class: selected ? 'selected' : '' },
    el('td', { class: 'mono' }, el('a', { href: link, 'aria-label': `message ${m.id}` }, m.id)),
    el('td', { class: 'n' }, m.attempts),
    el('td', {}, fmtTime(m.state === 'scheduled' ? m.notBefore : m.enqueuedAt)),
    el('td', { class: 'n' }, fmtBytes(m.size)),
    el('td', {}, m.deadReason ?? ''),
    el('td', { class: 'mono clip body', title: previewText(m.body) }, previewText(m.body)),
  );
}

async function detailPanel(route, name, id, status) {
  const close = href(['queues', name], {
    state: route.params.get('state'),
    after: route.params.get('after'),
    range: route.params.get('range'),
  });
  let m;
  try {
    m = await api(
      'GET',
      `/v1/queues/${enc(name)}/messages/${enc(id)}?maxBytes=${DETAIL_PREVIEW_BYTES}`,
    );
  } catch (err) {
    return el(
      'aside',
      { id: 'message-detail', class: 'panel' },
      el('p', { class: 'status-line bad' }, String(err.message)),
      el('a', { href: close }, 'Close'),
    );
  }
  const q = `/v1/queues/${enc(name)}/messages/${enc(id)}`;
  const act = async (fn, done) => {
    try {
      await fn();
      flash = done;
      status.ok(done);
      location.hash = close;
    } catch (err) {
      status.fail(err);
    }
  };
  const headers = Object.entries(m.headers ?? {});
  return el(
    'aside',
    { id: 'message-detail', class: 'panel', 'aria-label': `message ${m.id}` },
    el(
      'div',
      { class: 'panel-head' },
      el('h3', {}, `Message ${m.id}`),
      el('a', { href: close }, 'Close'),
    ),
    facts([
      ['state', m.state],
      ['attempts', String(m.attempts)],
      ['priority', String(m.priority)],
      ['enqueued', fmtTime(m.enqueuedAt)],
      ['not before', m.state === 'scheduled' ? fmtTime(m.notBefore) : undefined],
      ['expires', m.expiresAt === null ? undefined : fmtTime(m.expiresAt)],
      ['dedup key', m.dedupKey ?? undefined],
      ['dead reason', m.deadReason ?? undefined],
      ['size', `${fmtBytes(m.size)} in ${m.frameCount} frame${m.frameCount === 1 ? '' : 's'}`],
    ]),
    el('h4', {}, 'Headers'),
    headers.length
      ? table(
          'message-headers',
          ['header', 'value'],
          headers.map(([k, v]) =>
            el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, v)),
          ),
        )
      : el('p', { class: 'muted' }, 'none'),
    m.frames.map((f, i) => [
      el(
        'h4',
        {},
        m.frames.length > 1 ? `Frame ${i + 1}` : 'Body',
        el(
          'small',
          { class: 'muted' },
          ` ${fmtBytes(f.size)}${f.encoding === 'base64' ? ', binary (base64)' : ''}` +
            `${f.truncated ? `, first ${fmtBytes(DETAIL_PREVIEW_BYTES)} shown` : ''}`,
        ),
      ),
      el(
        'pre',
        { class: 'body', 'data-frame': i },
        f.encoding === 'utf8' ? pretty(f.preview) : f.preview,
      ),
    ]),
    el(
      'div',
      { class: 'actions' },
      m.state === 'dead' &&
        el(
          'button',
          {
            type: 'button',
            'data-action': 'redrive-one',
            onclick: () =>
              act(() => api('POST', `${q}/redrive`), `message ${m.id} moved back to ready`),
          },
          'Redrive',
        ),
      m.state !== 'leased' &&
        el(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-action': 'delete-one',
            onclick: () => {
              if (!confirm(`Delete message ${m.id} of ${name}?`)) return;
              void act(() => api('DELETE', q), `message ${m.id} deleted`);
            },
          },
          'Delete',
        ),
      m.state === 'leased' && el('p', { class: 'muted' }, 'Leased: its consumer settles it.'),
    ),
  );
}

/**
 * Renders the messages section of queue `name` into `root`. `onRefresh` receives the function
 * that reloads it (for the queue's bulk actions). Returns the cleanup.
 */
export async function renderMessages(root, route, name, onRefresh) {
  const state = STATES.includes(route.params.get('state')) ? route.params.get('state') : 'ready';
  const after = route.params.get('after') ?? undefined;
  const key = `${name}\u0000${state}`;
  const stack = cursors.get(key) ?? [];
  if (!after) stack.length = 0;
  cursors.set(key, stack);
  const status = statusLine('messages-status');
  if (flash !== null) status.ok(flash);
  flash = null;
  let alive = true;

  const load = async () => {
    const qs = new URLSearchParams({
      state,
      limit: String(PAGE_SIZE),
      previewBytes: String(LIST_PREVIEW_BYTES),
    });
    if (after) qs.set('after', after);
    const counts = {};
    let page;
    try {
      const [p, stats] = await Promise.all([
        api('GET', `/v1/queues/${enc(name)}/browse?${qs}`),
        api('GET', `/v1/queues/${enc(name)}`),
      ]);
      page = p;
      for (const s of STATES) counts[s] = stats[s];
    } catch (err) {
      if (!alive) return;
      root.replaceChildren(el('h3', {}, 'Messages'), status.node);
      status.fail(err);
      return;
    }
    if (!alive) return;
    const selected = route.params.get('msg');
    const pageNav = (label, action, target, disabled) =>
      el(
        'button',
        {
          type: 'button',
          'data-page': action,
          disabled,
          onclick: () => {
            if (action === 'next') stack.push(after ?? '');
            if (action === 'prev') stack.pop();
            if (action === 'first') stack.length = 0;
            location.hash = href(['queues', name], {
              state,
              after: target,
              range: route.params.get('range'),
            });
          },
        },
        label,
      );
    const pager = el(
      'div',
      { class: 'pager' },
      pageNav('First', 'first', undefined, !after),
      pageNav('Previous', 'prev', stack.at(-1) || undefined, !after),
      el(
        'span',
        { class: 'muted', id: 'page-info' },
        `${page.messages.length} of ${page.count} ${state}`,
      ),
      pageNav('Next', 'next', page.next ?? undefined, page.next === null),
      el(
        'button',
        { type: 'button', 'data-action': 'refresh', onclick: () => void load() },
        'Refresh',
      ),
    );
    const rows = page.messages.map((m) => messageRow(route, name, m, m.id === selected));
    const detail = selected ? await detailPanel(route, name, selected, status) : null;
    if (!alive) return;
    root.replaceChildren(
      el('h3', {}, 'Messages'),
      stateTabs(route, name, state, counts),
      status.node,
      el(
        'div',
        { class: detail ? 'split' : '' },
        el(
          'div',
          {},
          table(
            'messages',
            [
              'id',
              ['attempts', 'n'],
              state === 'scheduled' ? 'due' : 'enqueued',
              ['size', 'n'],
              'reason',
              'body',
            ],
            rows,
            `no ${state} messages`,
          ),
          pager,
        ),
        detail,
      ),
    );
  };
  onRefresh(load);
  await load();
  return () => {
    alive = false;
  };
}
