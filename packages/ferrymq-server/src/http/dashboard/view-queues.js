// Queues: the list of every queue with live counts, and one queue's page: rates and depth,
// bulk actions, pause / resume, delete and policy (view-queue-admin.js), and its messages by
// state (messages.js).
import { renderMessages } from './messages.js';
import { lifecycleControls, policyPanel, takeDeleteFlash } from './view-queue-admin.js';
import { chartPanel } from './view-overview.js';
import { api, el, enc, fmtAge, fmtRate, href, statusLine, table } from './util.js';

const COLUMNS = [
  'queue',
  ['ready', 'n'],
  ['leased', 'n'],
  ['scheduled', 'n'],
  ['dead', 'n'],
  ['in/s', 'n'],
  ['ack/s', 'n'],
  ['oldest', 'n'],
  ['consumers', 'n'],
];

function queueRow(q) {
  const link = href(['queues', q.name]);
  const count = (state) =>
    el(
      'td',
      { class: `n ${state}${state === 'dead' && q.dead > 0 ? ' warn' : ''}` },
      el('a', { href: href(['queues', q.name], { state }) }, q[state]),
    );
  return el(
    'tr',
    { 'data-queue': q.name },
    el(
      'td',
      { class: 'name' },
      el('a', { href: link }, q.name),
      q.paused && [
        ' ',
        el('span', { class: 'status paused', title: 'deliveries paused' }, 'paused'),
      ],
    ),
    ['ready', 'leased', 'scheduled', 'dead'].map(count),
    el('td', { class: 'n in' }, fmtRate(q.enqueueRate)),
    el('td', { class: 'n ack' }, fmtRate(q.ackRate)),
    el('td', { class: 'n oldest' }, fmtAge(q.oldestAgeMs)),
    el('td', { class: 'n consumers' }, q.consumers),
  );
}

function renderList(root, live) {
  const filter = el('input', {
    id: 'queue-filter',
    type: 'search',
    placeholder: 'filter by name',
    'aria-label': 'filter queues by name',
    oninput: () => live.stats && update(live.stats),
  });
  const holder = el('div');
  const status = statusLine('queues-status');
  const deleted = takeDeleteFlash();
  if (deleted !== null) status.ok(deleted);
  root.append(el('div', { class: 'toolbar' }, el('h2', {}, 'Queues'), filter), status.node, holder);
  const update = (s) => {
    const f = filter.value.trim().toLowerCase();
    const qs = s.queues.filter((q) => q.name.toLowerCase().includes(f));
    holder.replaceChildren(
      table(
        'queues',
        COLUMNS,
        qs.map(queueRow),
        s.queues.length ? 'no queue matches' : 'No queues yet. Send a message to create one.',
      ),
    );
  };
  return live.subscribe(update);
}

/** The bulk actions of a queue (whole dead letter list, purge), then its life cycle. */
function bulkActions(name, status, refresh, lifecycle) {
  const q = enc(name);
  const act = async (what, fn) => {
    try {
      status.ok(await fn());
    } catch (err) {
      status.fail(err);
    }
    await refresh();
    return what;
  };
  const button = (action, label, cls, fn) =>
    el(
      'button',
      { type: 'button', class: cls, 'data-action': action, onclick: () => act(action, fn) },
      label,
    );
  return el(
    'div',
    { class: 'actions', id: 'queue-actions' },
    button('redrive-all', 'Redrive all dead', '', async () => {
      const r = await api('POST', `/v1/queues/${q}/dead/redrive`, {});
      return `${r.redriven} dead letters moved back to ready`;
    }),
    button('purge-dead', 'Purge dead', 'danger', async () => {
      if (!confirm(`Delete every dead letter of ${name}?`)) return 'nothing deleted';
      const r = await api('DELETE', `/v1/queues/${q}/dead`);
      return `${r.purged} dead letters deleted`;
    }),
    button('purge', 'Purge ready and scheduled', 'danger', async () => {
      if (!confirm(`Delete every ready and scheduled message of ${name}?`)) {
        return 'nothing deleted';
      }
      const r = await api('DELETE', `/v1/queues/${q}/messages`);
      return `${r.purged} messages deleted`;
    }),
    lifecycle,
  );
}

async function renderQueue(root, route, live, name) {
  const status = statusLine('queue-status');
  const summary = el('p', { class: 'muted', id: 'queue-summary' });
  const charts = chartPanel(route, live, name);
  const messages = el('section', { id: 'messages' });
  const lifecycle = lifecycleControls(name, status);
  const policy = policyPanel(name);
  let refreshMessages = async () => {};
  root.append(
    el('p', { class: 'crumbs' }, el('a', { href: href(['queues']) }, 'Queues'), ' /'),
    el('h2', { id: 'queue-name', class: 'title' }, name),
    summary,
    bulkActions(name, status, () => refreshMessages(), lifecycle.node),
    status.node,
    lifecycle.notEmpty,
    charts.node,
    messages,
    policy.node,
  );
  void policy.load();
  const stopMessages = await renderMessages(messages, route, name, (fn) => {
    refreshMessages = fn;
  });
  const unsubscribe = live.subscribe((s) => {
    const q = s.queues.find((x) => x.name === name);
    summary.textContent = q
      ? `${q.depth} deep · ${fmtRate(q.enqueueRate)} in/s · ${fmtRate(q.ackRate)} ack/s · ` +
        `${q.consumers} consumers · oldest ${fmtAge(q.oldestAgeMs)}`
      : 'no such queue (yet)';
    lifecycle.update(q);
    charts.draw();
  });
  return () => {
    unsubscribe();
    stopMessages();
  };
}

export function renderQueues(root, route, live) {
  const name = route.path[1];
  return name === undefined ? renderList(root, live) : renderQueue(root, route, live, name);
}
