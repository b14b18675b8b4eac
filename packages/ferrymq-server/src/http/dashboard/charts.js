// Time-series history of the stats snapshots and line charts with a time axis, on a canvas.

/** Longest range a chart shows; the history keeps this much (one point per snapshot). */
const MAX_RANGE_MS = 60 * 60_000;
export const RANGES = [
  { key: '1m', ms: 60_000, label: '1 min' },
  { key: '5m', ms: 5 * 60_000, label: '5 min' },
  { key: '15m', ms: 15 * 60_000, label: '15 min' },
  { key: '1h', ms: MAX_RANGE_MS, label: '1 h' },
];
const DEFAULT_RANGE = '5m';
/** Most queues whose own history is kept (the busiest by name order beyond that are skipped). */
const MAX_QUEUE_HISTORIES = 200;
/** Tick spacings of the time axis, ms: the first that gives at most MAX_TICKS ticks is used. */
const TICK_STEPS_MS = [5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3];
const MAX_TICKS = 6;

export function rangeOf(key) {
  return RANGES.find((r) => r.key === key) ?? RANGES.find((r) => r.key === DEFAULT_RANGE);
}

/** Points {t, ...values} in time order, older than MAX_RANGE_MS dropped. */
class Series {
  points = [];
  push(t, values) {
    this.points.push({ t, ...values });
    const cutoff = t - MAX_RANGE_MS;
    let drop = 0;
    while (drop < this.points.length && this.points[drop].t < cutoff) drop++;
    if (drop > 0) this.points.splice(0, drop);
  }
}

/** The broker totals and each queue's numbers, one point per stats snapshot. */
export class StatsHistory {
  total = new Series();
  queues = new Map();

  add(stats, t = Date.now()) {
    const sum = { in: 0, ack: 0, ready: 0, leased: 0, scheduled: 0, dead: 0 };
    const names = new Set();
    for (const q of stats.queues) {
      sum.in += q.enqueueRate;
      sum.ack += q.ackRate;
      sum.ready += q.ready;
      sum.leased += q.leased;
      sum.scheduled += q.scheduled;
      sum.dead += q.dead;
      names.add(q.name);
      let s = this.queues.get(q.name);
      if (!s && this.queues.size < MAX_QUEUE_HISTORIES) this.queues.set(q.name, (s = new Series()));
      s?.push(t, {
        in: q.enqueueRate,
        ack: q.ackRate,
        ready: q.ready,
        leased: q.leased,
        scheduled: q.scheduled,
        dead: q.dead,
      });
    }
    for (const k of [...this.queues.keys()]) if (!names.has(k)) this.queues.delete(k);
    this.total.push(t, sum);
  }

  of(queue) {
    return queue === undefined ? this.total.points : (this.queues.get(queue)?.points ?? []);
  }
}

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function niceMax(v) {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtTick(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

/**
 * Draws lines of `points` (StatsHistory points) for the `lines` [{key, label, color}] over the
 * last `rangeMs` before `now`, with a time axis and a value axis.
 */
export function drawTimeChart(canvas, points, lines, rangeMs, now = Date.now()) {
  const ctx = canvas.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const from = now - rangeMs;
  const shown = points.filter((p) => p.t >= from);
  let max = 0;
  for (const p of shown) for (const l of lines) max = Math.max(max, p[l.key] ?? 0);
  max = niceMax(max);
  const left = 44;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const x = (t) => left + ((t - from) / rangeMs) * (w - left - right);
  const y = (v) => h - bottom - (v / max) * (h - top - bottom);
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  // Value axis: 0, half, max.
  ctx.strokeStyle = css('--grid');
  ctx.fillStyle = css('--muted');
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of [0, max / 2, max]) {
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y(v)) + 0.5);
    ctx.lineTo(w - right, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.fillText(Number.isInteger(v) ? String(v) : v.toFixed(1), left - 6, y(v));
  }
  // Time axis: ticks at round times.
  const step = TICK_STEPS_MS.find((s) => rangeMs / s <= MAX_TICKS) ?? TICK_STEPS_MS.at(-1);
  const ticks = [];
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let t = Math.ceil(from / step) * step; t <= now; t += step) {
    const tx = x(t);
    ctx.beginPath();
    ctx.moveTo(Math.round(tx) + 0.5, h - bottom);
    ctx.lineTo(Math.round(tx) + 0.5, h - bottom + 4);
    ctx.stroke();
    const label = fmtTick(t);
    ticks.push(label);
    ctx.fillText(label, Math.min(Math.max(tx, left + 24), w - right - 24), h - bottom + 5);
  }
  for (const l of lines) {
    ctx.strokeStyle = css(l.color);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    shown.forEach((p, i) => {
      const px = x(p.t);
      const py = y(p[l.key] ?? 0);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
  }
  // What the chart shows, for assistive technology and tests (a canvas has no text).
  canvas.dataset.range = String(rangeMs);
  canvas.dataset.points = String(shown.length);
  canvas.dataset.ticks = ticks.join(' ');
  canvas.setAttribute(
    'aria-label',
    `${lines.map((l) => l.label).join(', ')}: ${shown.length} points over the last ` +
      `${Math.round(rangeMs / 60_000)} min, max ${max}`,
  );
}
