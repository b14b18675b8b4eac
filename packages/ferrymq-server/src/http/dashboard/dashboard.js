// Ferry dashboard: live stats from /v1/events/stats, the rest from the gateway's REST routes.
// Plain browser JavaScript (no build step, no CDN); every number comes from /v1/stats.

const HISTORY_POINTS = 120; // 2 minutes at one snapshot per second
const JOBS_REFRESH_MS = 2000;
const DEAD_LIMIT = 20;
const MIN_WINDOW_POINTS = 30; // the chart's x axis spans at least 30 s

const history = new Map(); // queue → [{ depth, leased, dead }]
let selected = null;
let lastStats = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function fmtAge(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function fmtTime(t) {
  return t ? new Date(t).toLocaleTimeString() : '–';
}

function quantile(h, q) {
  if (!h || h.count === 0) return null;
  const rank = q * h.count;
  for (let i = 0; i < h.bounds.length; i++) if (h.counts[i] >= rank) return h.bounds[i];
  return Infinity;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(data ? `${data.code}: ${data.message}` : `HTTP ${res.status}`);
  return data;
}

// ------------------------------------------------------------------ charts

function drawLines(canvas, series, colors) {
  const ctx = canvas.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  let max = 1;
  for (const s of series) for (const v of s) max = Math.max(max, v);
  const pad = 4;
  // The window grows with the history up to HISTORY_POINTS, so a young chart is readable.
  const points = Math.max(MIN_WINDOW_POINTS, ...series.map((x) => x.length));
  const x = (i) => pad + (i / (points - 1)) * (w - 2 * pad);
  const y = (v) => h - pad - (v / max) * (h - 2 * pad);
  ctx.strokeStyle = getComputedStyle(document.body).getPropertyValue('--grid');
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(pad, h - pad + 0.5);
  ctx.lineTo(w - pad, h - pad + 0.5);
  ctx.stroke();
  series.forEach((s, k) => {
    if (s.length === 0) return;
    const offset = points - s.length;
    ctx.strokeStyle = colors[k];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.forEach((v, i) =>
      i === 0 ? ctx.moveTo(x(i + offset), y(v)) : ctx.lineTo(x(i + offset), y(v)),
    );
    ctx.stroke();
  });
  if (canvas.id === 'd-chart') {
    ctx.fillStyle = getComputedStyle(document.body).getPropertyValue('--muted');
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(`max ${max}`, pad + 2, 12);
  }
}

const css = (name) => getComputedStyle(document.body).getPropertyValue(name).trim();

// ------------------------------------------------------------------ rendering

function renderHealth(s) {
  const st = s.broker.storage;
  $('uptime').textContent = `up ${fmtAge(s.broker.uptimeMs)} · ${s.broker.queues} queues`;
  $('h-size').textContent = fmtBytes(st.sizeBytes);
  $('h-sync').textContent =
    `${st.backend}, sync ${st.sync}${s.broker.storageLow ? ' · DISK LOW' : ''}`;
  $('h-commit').textContent = `${st.avgCommitMs.toFixed(2)} ms`;
  const p99 = quantile(st.commitMs, 0.99);
  $('h-commit-p99').textContent =
    `avg · p99 ≤ ${p99 === null ? '–' : p99} ms · ${st.commits} commits`;
  $('h-batch').textContent = st.avgBatchOps.toFixed(1);
  $('h-fsyncs').textContent = String(st.fsyncs);
  const fp99 = quantile(st.fsyncMs, 0.99);
  $('h-fsync-ms').textContent = fp99 === null ? 'in commits' : `separate, p99 ≤ ${fp99} ms`;
  $('h-conn').textContent = String(s.broker.connections);
  $('h-conn-by').textContent = Object.entries(s.connections)
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');
  $('h-leases').textContent = String(s.broker.leases);
  $('h-consumers').textContent = `${s.broker.consumers} consumers · ${s.broker.sessions} sessions`;
}

function renderQueues(s) {
  const tbody = $('queues').querySelector('tbody');
  const names = new Set(s.queues.map((q) => q.name));
  for (const q of s.queues) {
    let h = history.get(q.name);
    if (!h) history.set(q.name, (h = []));
    h.push({ depth: q.depth, leased: q.leased, dead: q.dead });
    if (h.length > HISTORY_POINTS) h.shift();
  }
  for (const k of [...history.keys()]) if (!names.has(k)) history.delete(k);
  $('queue-count').textContent = s.queues.length ? `(${s.queues.length})` : '';
  $('no-queues').hidden = s.queues.length > 0;
  const rows = new Map([...tbody.rows].map((r) => [r.dataset.queue, r]));
  for (const q of s.queues) {
    let row = rows.get(q.name);
    if (!row) {
      row = el(
        'tr',
        { 'data-queue': q.name, tabIndex: 0 },
        el('td', { class: 'name' }, q.name),
        ...[
          'depth',
          'ready',
          'leased',
          'scheduled',
          'dead',
          'in',
          'ack',
          'oldest',
          'consumers',
        ].map((c) => el('td', { class: `n ${c}` })),
        el('td', { class: 'spark' }, el('canvas', { width: 160, height: 28 })),
      );
      row.addEventListener('click', () => select(q.name));
      row.addEventListener('keydown', (e) => e.key === 'Enter' && select(q.name));
      tbody.append(row);
    }
    rows.delete(q.name);
    const set = (c, v) => (row.querySelector(`td.${c}`).textContent = v);
    set('depth', q.depth);
    set('ready', q.ready);
    set('leased', q.leased);
    set('scheduled', q.scheduled);
    set('dead', q.dead);
    set('in', q.enqueueRate.toFixed(1));
    set('ack', q.ackRate.toFixed(1));
    set('oldest', fmtAge(q.oldestAgeMs));
    set('consumers', q.consumers);
    row.querySelector('td.dead').classList.toggle('warn', q.dead > 0);
    row.classList.toggle('selected', q.name === selected);
    const h = history.get(q.name);
    drawLines(row.querySelector('canvas'), [h.map((p) => p.depth)], [css('--accent')]);
  }
  for (const r of rows.values()) r.remove();
  // Keep rows sorted by name.
  [...tbody.rows]
    .sort((a, b) => a.dataset.queue.localeCompare(b.dataset.queue))
    .forEach((r) => tbody.append(r));
  if (selected) {
    const q = s.queues.find((x) => x.name === selected);
    $('d-dead-count').textContent = q ? `(${q.dead})` : '';
    renderDetailChart();
  }
}

function renderDetailChart() {
  const h = history.get(selected) ?? [];
  drawLines(
    $('d-chart'),
    [h.map((p) => p.depth), h.map((p) => p.leased), h.map((p) => p.dead)],
    [css('--accent'), css('--ok'), css('--bad')],
  );
}

function renderJobsTables(s) {
  const sb = $('services').querySelector('tbody');
  sb.replaceChildren(
    ...s.services.map((x) =>
      el(
        'tr',
        {},
        el('td', {}, x.name),
        ...[x.workers, x.queued, x.running, x.done, x.failed].map((v) =>
          el('td', { class: 'n' }, v),
        ),
      ),
    ),
  );
  if (s.services.length === 0)
    sb.append(el('tr', {}, el('td', { colSpan: 6, class: 'muted' }, 'no services')));
}

async function refreshWorkersAndJobs() {
  try {
    const [{ workers }, { jobs }] = await Promise.all([
      api('GET', '/v1/workers'),
      api('GET', '/v1/jobs?limit=15'),
    ]);
    const wb = $('workers').querySelector('tbody');
    wb.replaceChildren(
      ...workers.map((w) =>
        el(
          'tr',
          {},
          el('td', {}, w.name),
          el('td', {}, w.protocol),
          el('td', {}, w.services.join(', ')),
          el('td', { class: 'n' }, w.running),
          el('td', { class: 'n' }, w.completed),
        ),
      ),
    );
    if (workers.length === 0)
      wb.append(el('tr', {}, el('td', { colSpan: 5, class: 'muted' }, 'no workers')));
    const jb = $('jobs').querySelector('tbody');
    jb.replaceChildren(
      ...jobs.map((j) => {
        const result =
          j.status === 'done'
            ? JSON.stringify(j.result)
            : j.error
              ? `${j.error.code}: ${j.error.message}`
              : '';
        return el(
          'tr',
          { 'data-job': j.id },
          el('td', { class: 'mono' }, j.id.slice(0, 12)),
          el('td', {}, j.service),
          el('td', {}, el('span', { class: `status ${j.status}` }, j.status)),
          el('td', {}, fmtTime(j.createdAt)),
          el('td', { class: 'mono clip', title: result }, result),
        );
      }),
    );
    if (jobs.length === 0)
      jb.append(el('tr', {}, el('td', { colSpan: 5, class: 'muted' }, 'no jobs yet')));
  } catch (err) {
    console.warn('refresh failed', err);
  }
}

// ------------------------------------------------------------------ one queue

async function select(name) {
  selected = name;
  $('detail').hidden = false;
  $('d-name').textContent = name;
  $('d-msg').textContent = '';
  for (const r of $('queues').querySelector('tbody').rows)
    r.classList.toggle('selected', r.dataset.queue === name);
  renderDetailChart();
  await refreshDead();
}

async function refreshDead() {
  if (!selected) return;
  const tbody = $('dead').querySelector('tbody');
  try {
    const { messages } = await api(
      'GET',
      `/v1/queues/${encodeURIComponent(selected)}/dead?limit=${DEAD_LIMIT}`,
    );
    const q = lastStats?.queues.find((x) => x.name === selected);
    $('d-dead-count').textContent = q ? `(${q.dead})` : '';
    tbody.replaceChildren(
      ...messages.map((m) =>
        el(
          'tr',
          { 'data-id': m.id },
          el('td', { class: 'mono' }, m.id),
          el('td', {}, m.deadReason ?? ''),
          el('td', { class: 'n' }, m.attempts),
          el('td', {}, fmtTime(m.enqueuedAt)),
          el(
            'td',
            { class: 'mono clip', title: m.body },
            m.encoding === 'base64' ? `(base64) ${m.body}` : m.body,
          ),
        ),
      ),
    );
    if (messages.length === 0)
      tbody.append(el('tr', {}, el('td', { colSpan: 5, class: 'muted' }, 'no dead letters')));
  } catch (err) {
    $('d-msg').textContent = String(err.message ?? err);
  }
}

async function act(action) {
  if (!selected) return;
  const q = encodeURIComponent(selected);
  const msg = $('d-msg');
  try {
    if (action === 'redrive') {
      const r = await api('POST', `/v1/queues/${q}/dead/redrive`, {});
      msg.textContent = `${r.redriven} dead letters moved back to ready`;
    } else if (action === 'purge-dead') {
      if (!confirm(`Delete every dead letter of ${selected}?`)) return;
      const r = await api('DELETE', `/v1/queues/${q}/dead`);
      msg.textContent = `${r.purged} dead letters deleted`;
    } else if (action === 'purge') {
      if (!confirm(`Delete every ready and scheduled message of ${selected}?`)) return;
      const r = await api('DELETE', `/v1/queues/${q}/messages`);
      msg.textContent = `${r.purged} messages deleted`;
    }
  } catch (err) {
    msg.textContent = String(err.message ?? err);
  }
  await refreshDead();
}

for (const b of document.querySelectorAll('button[data-action]')) {
  b.addEventListener('click', () => act(b.dataset.action));
}

// ------------------------------------------------------------------ live stream

function onStats(s) {
  lastStats = s;
  renderHealth(s);
  renderQueues(s);
  renderJobsTables(s);
}

function connect() {
  const live = $('live');
  const es = new EventSource('/v1/events/stats?intervalMs=1000');
  es.addEventListener('stats', (e) => {
    live.textContent = 'live';
    live.className = 'live on';
    onStats(JSON.parse(e.data));
  });
  es.onerror = () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  };
}

connect();
refreshWorkersAndJobs();
setInterval(refreshWorkersAndJobs, JOBS_REFRESH_MS);
setInterval(refreshDead, JOBS_REFRESH_MS);
