// Overview: broker health, message rates and depth by state over a chosen time range, and
// the services with their job counts.
import { drawTimeChart, RANGES, rangeOf } from './charts.js';
import { el, fmtBytes, fmtRate, href, table } from './util.js';

const RATE_LINES = [
  { key: 'in', label: 'in/s', color: '--accent' },
  { key: 'ack', label: 'ack/s', color: '--ok' },
];
const DEPTH_LINES = [
  { key: 'ready', label: 'ready', color: '--accent' },
  { key: 'leased', label: 'leased', color: '--ok' },
  { key: 'scheduled', label: 'scheduled', color: '--warn' },
  { key: 'dead', label: 'dead', color: '--bad' },
];

function quantile(h, q) {
  if (!h || h.count === 0) return null;
  const rank = q * h.count;
  for (let i = 0; i < h.bounds.length; i++) if (h.counts[i] >= rank) return h.bounds[i];
  return Infinity;
}

function card(id, title) {
  return el(
    'div',
    { class: 'card', id },
    el('h3', {}, title),
    el('b', { class: 'value' }, '–'),
    el('small', { class: 'note' }),
  );
}

function setCard(root, id, value, note) {
  const c = root.querySelector(`#${id}`);
  c.querySelector('.value').textContent = value;
  c.querySelector('.note').textContent = note;
}

/** A range picker whose choice lives in the URL (`range=`), so reload and links keep it. */
function rangePicker(route, onPick) {
  const current = rangeOf(route.params.get('range')).key;
  const select = el(
    'select',
    {
      id: 'range',
      'aria-label': 'time range',
      onchange: () => {
        const params = Object.fromEntries(route.params);
        params.range = select.value;
        history.replaceState(null, '', href(route.path, params));
        route.params.set('range', select.value);
        onPick(rangeOf(select.value).ms);
      },
    },
    RANGES.map((r) =>
      el('option', { value: r.key, selected: r.key === current }, `last ${r.label}`),
    ),
  );
  return el('label', { class: 'range' }, 'Range ', select);
}

/** Two charts (rates, depth by state) of the broker or of one queue, redrawn per snapshot. */
export function chartPanel(route, live, queue) {
  let rangeMs = rangeOf(route.params.get('range')).ms;
  const rates = el('canvas', { id: 'chart-rates', class: 'chart', width: 640, height: 180 });
  const depth = el('canvas', { id: 'chart-depth', class: 'chart', width: 640, height: 180 });
  const legend = (lines) =>
    el(
      'p',
      { class: 'legend' },
      lines.map((l) => [
        el('span', { class: `k`, style: `background: var(${l.color})` }),
        l.label,
        ' ',
      ]),
    );
  const draw = () => {
    const points = live.history.of(queue);
    drawTimeChart(rates, points, RATE_LINES, rangeMs);
    drawTimeChart(depth, points, DEPTH_LINES, rangeMs);
  };
  const node = el(
    'section',
    { class: 'charts' },
    el(
      'div',
      { class: 'chart-head' },
      el('h2', {}, queue === undefined ? 'Message rates and depth' : 'Rates and depth'),
      rangePicker(route, (ms) => {
        rangeMs = ms;
        draw();
      }),
    ),
    el(
      'div',
      { class: 'two' },
      el('figure', {}, rates, el('figcaption', {}, legend(RATE_LINES))),
      el('figure', {}, depth, el('figcaption', {}, legend(DEPTH_LINES))),
    ),
  );
  return { node, draw };
}

/** The brokers sharing the store; queue and job numbers are then the whole cluster's. */
function renderCluster(section, cluster) {
  section.hidden = !cluster;
  if (!cluster) return;
  const now = Date.now();
  section.replaceChildren(
    el('h2', {}, `Cluster: ${cluster.nodes.length} brokers on one store`),
    table(
      'cluster-nodes',
      ['broker', ['heartbeat age', 'n'], 'started'],
      cluster.nodes.map((n) =>
        el(
          'tr',
          { 'data-node': n.id },
          el('td', {}, n.self ? `${n.id} (this broker)` : n.id),
          el('td', { class: 'n' }, `${Math.max(0, now - n.heartbeatAt)} ms`),
          el('td', {}, new Date(n.startedAt).toISOString()),
        ),
      ),
      'no brokers',
    ),
    el(
      'p',
      { class: 'note' },
      'Queue and job counts are the whole cluster’s; connections and workers are this broker’s.',
    ),
  );
}

export function renderOverview(root, route, live) {
  const cards = el(
    'section',
    { class: 'cards', id: 'health', 'aria-label': 'broker health' },
    card('h-store', 'Store'),
    card('h-commit', 'Commit time'),
    card('h-batch', 'Group commit'),
    card('h-conn', 'Connections'),
    card('h-leases', 'Leased'),
    card('h-dead', 'Dead letters'),
  );
  const charts = chartPanel(route, live);
  const services = el('section', {}, el('h2', {}, 'Services'));
  // Shown only with a shared (PostgreSQL) store: the brokers and their heartbeats.
  const cluster = el('section', { id: 'cluster', hidden: true });
  root.append(cards, cluster, charts.node, services);

  const update = (s) => {
    const st = s.broker.storage;
    setCard(
      root,
      'h-store',
      fmtBytes(st.sizeBytes),
      `${st.backend}, sync ${st.sync}${s.broker.storageLow ? ' · DISK LOW' : ''}`,
    );
    const p99 = quantile(st.commitMs, 0.99);
    setCard(
      root,
      'h-commit',
      `${st.avgCommitMs.toFixed(2)} ms`,
      `avg · p99 ≤ ${p99 ?? '–'} ms · ${st.commits} commits`,
    );
    setCard(root, 'h-batch', st.avgBatchOps.toFixed(1), 'calls per commit');
    setCard(
      root,
      'h-conn',
      String(s.broker.connections),
      Object.entries(s.connections)
        .map(([k, v]) => `${k} ${v}`)
        .join(' · '),
    );
    setCard(
      root,
      'h-leases',
      String(s.broker.leases),
      `${s.broker.consumers} consumers · ${s.broker.sessions} sessions`,
    );
    const dead = s.queues.reduce((n, q) => n + q.dead, 0);
    const inRate = s.queues.reduce((n, q) => n + q.enqueueRate, 0);
    setCard(root, 'h-dead', String(dead), `${fmtRate(inRate)} messages in/s`);
    renderCluster(cluster, s.cluster);
    charts.draw();
    const rows = s.services.map((x) =>
      el(
        'tr',
        { 'data-service': x.name },
        el('td', {}, el('a', { href: href(['jobs'], { q: x.name }) }, x.name)),
        [x.workers, x.queued, x.running, x.done, x.failed, x.cancelled, x.expired].map((v) =>
          el('td', { class: 'n' }, v),
        ),
      ),
    );
    services.replaceChildren(
      el('h2', {}, 'Services'),
      table(
        'services',
        [
          'service',
          ['workers', 'n'],
          ['queued', 'n'],
          ['running', 'n'],
          ['done', 'n'],
          ['failed', 'n'],
          ['cancelled', 'n'],
          ['expired', 'n'],
        ],
        rows,
        'no services yet',
      ),
    );
  };
  return live.subscribe(update);
}
