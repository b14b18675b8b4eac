// Connections: open connections per dialect, the broker sessions with their consumers
// (queue, prefetch, deliveries in flight) and the registered workers.
import { api, el, fmtTime, href, statusLine, table } from './util.js';

const REFRESH_MS = 2000;

export async function renderConnections(root) {
  const status = statusLine('connections-status');
  const holder = el('div');
  root.append(el('h2', {}, 'Connections'), status.node, holder);
  let alive = true;
  const load = async () => {
    let c;
    try {
      c = await api('GET', '/v1/connections');
    } catch (err) {
      if (alive) status.fail(err);
      return;
    }
    if (!alive) return;
    status.clear();
    const consumers = c.sessions.flatMap((s) => s.consumers.map((x) => ({ session: s.id, ...x })));
    holder.replaceChildren(
      el(
        'section',
        { class: 'cards', id: 'by-dialect' },
        el('div', { class: 'card' }, el('h3', {}, 'total'), el('b', {}, c.total)),
        Object.entries(c.byDialect).map(([k, v]) =>
          el('div', { class: 'card', 'data-dialect': k }, el('h3', {}, k), el('b', {}, v)),
        ),
      ),
      el('h2', {}, 'Consumers'),
      table(
        'consumers',
        ['session', 'tag', 'queue', ['prefetch', 'n'], ['leased', 'n'], ['ack timeout', 'n']],
        consumers.map((x) =>
          el(
            'tr',
            { 'data-consumer': `${x.session}/${x.tag}` },
            el('td', { class: 'mono' }, x.session),
            el('td', { class: 'mono' }, x.tag),
            el('td', {}, el('a', { href: href(['queues', x.queue]) }, x.queue)),
            el('td', { class: 'n prefetch' }, x.prefetch),
            el('td', { class: 'n inflight' }, x.inflight),
            el('td', { class: 'n' }, `${x.ackTimeoutMs} ms`),
          ),
        ),
        'no consumers',
      ),
      el('h2', {}, 'Sessions'),
      table(
        'sessions',
        ['session', ['consumers', 'n'], ['leases', 'n']],
        c.sessions.map((s) =>
          el(
            'tr',
            { 'data-session': s.id },
            el('td', { class: 'mono' }, s.id),
            el('td', { class: 'n' }, s.consumers.length),
            el('td', { class: 'n' }, s.leases),
          ),
        ),
        'no sessions',
      ),
      el('h2', {}, 'Workers'),
      table(
        'workers',
        [
          'worker',
          'dialect',
          'services',
          ['concurrency', 'n'],
          ['running', 'n'],
          ['done', 'n'],
          ['failed', 'n'],
          'since',
        ],
        c.workers.map((w) =>
          el(
            'tr',
            { 'data-worker': w.id },
            el('td', {}, w.name),
            el('td', {}, w.protocol),
            el('td', {}, w.services.join(', ')),
            el('td', { class: 'n' }, w.concurrency),
            el('td', { class: 'n' }, w.running),
            el('td', { class: 'n' }, w.completed),
            el('td', { class: 'n' }, w.failed),
            el('td', {}, fmtTime(w.connectedAt)),
          ),
        ),
        'no workers',
      ),
    );
  };
  await load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
