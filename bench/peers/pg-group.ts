/**
 * `bench:peers`' PostgreSQL group (BENCH_ONLY=pg): on the local PostgreSQL, each run in a
 * schema of its own that it creates and drops —
 *   - jobs, enqueue then process: Ferry on `--store postgres://…` (one broker) against
 *     graphile-worker and pg-boss, with Ferry on SQLite as the baseline;
 *   - paced single adds: add → handler-start latency, the same four;
 *   - a W1-like queue and sequential calls with one broker and with two brokers on one store
 *     (producer / caller on A, consumer / workers on B), SQLite one broker as the baseline.
 * PostgreSQL is checked first (a pool of this bench's own, from the root `pg`); if it does
 * not answer, the group is skipped with a line saying so. graphile-worker and pg-boss are
 * adapters (adapters/<id>.ts, bench/peers' own install), loaded by a computed path like the
 * other peers'. Ratio lines: every row ÷ the group's baseline, and Ferry on PostgreSQL ÷ each
 * other system.
 */
import pg from 'pg';
import type { BenchConfig } from '../config.js';
import { perOp, snapshotCounters, type CounterSnapshot } from '../op-counts.js';
import { startProgress, type MetricDef, type RunOutput, type Scope } from '../workloads.js';
import { packageVersion } from './clients.js';
import type { PeersConfig, PgSystemId } from './config.js';
import {
  ferryCallRun,
  ferryJobsTarget,
  ferryQueueRun,
  FERRY_JOB_CONCURRENCY,
  FERRY_JOB_WORKERS,
  FERRY_LATENCY_CONCURRENCY,
  startFerryBrokers,
  type FerryStore,
} from './pg-ferry.js';
import {
  enqueueThenProcess,
  pacedLatency,
  type PgJobsMode,
  type PgJobsTarget,
  type PgPeer,
} from './pg-load.js';
import { w3TotalCalls } from './peer.js';
import type { Group, Measurement, RatioLine, Result, SystemRow } from './rows.js';

/** The pg group's runs are bounded by this, each, ms. */
const PG_RUN_TIMEOUT_MS = 180_000;
/** Paced adds: timer tick, ms, and warm-up (unmeasured) seconds. */
const PACED_TICK_MS = 5;
const PACED_WARMUP_S = 1;
const CONNECT_TIMEOUT_MS = 3_000;
/** The pool this bench uses for schemas and counts (not the systems' own pools). */
const OWN_POOL_SIZE = 2;

const COLORS: Record<string, string> = {
  'ferry:sqlite': '#9cc3e6',
  'ferry:pg': '#1f4e79',
  'ferry:pg2': '#4a86c5',
  'graphile-worker': '#b07aa1',
  'pg-boss': '#edc948',
};

const JOBS_METRICS: MetricDef[] = [
  { key: 'enqueuePerSec', label: 'enqueue', unit: 'jobs/s' },
  { key: 'processPerSec', label: 'process', unit: 'jobs/s' },
];
const LATENCY_METRICS: MetricDef[] = [
  { key: 'p50Ms', label: 'add→start p50', unit: 'ms' },
  { key: 'p99Ms', label: 'add→start p99', unit: 'ms' },
  { key: 'maxMs', label: 'add→start max', unit: 'ms' },
  { key: 'addP50Ms', label: 'add call p50', unit: 'ms' },
];
const QUEUE_METRICS: MetricDef[] = [
  { key: 'msgsPerSec', label: 'msgs/s', unit: 'msgs/s' },
  { key: 'p50Ms', label: 'p50', unit: 'ms' },
  { key: 'p99Ms', label: 'p99', unit: 'ms' },
];
const CALL_METRICS: MetricDef[] = [
  { key: 'callsPerSec', label: 'calls/s', unit: 'calls/s' },
  { key: 'p50Ms', label: 'p50', unit: 'ms' },
  { key: 'p99Ms', label: 'p99', unit: 'ms' },
];
/** The metrics the ratio lines are taken on. */
export const PG_HEADLINE_METRICS = [
  'enqueuePerSec',
  'processPerSec',
  'p50Ms',
  'p99Ms',
  'msgsPerSec',
  'callsPerSec',
];

/** PostgreSQL answered: its pool, version and durability, and the peers whose adapter loaded. */
export interface PgReady {
  pool: pg.Pool;
  version: string;
  /** synchronous_commit, fsync: what a commit waits for on this server. */
  durability: string;
  peers: { id: Exclude<PgSystemId, 'ferry'>; peer: PgPeer }[];
  /** Peers left out, and why. */
  skipped: { id: PgSystemId; why: string }[];
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Connects to BENCH_PG_URL and loads the adapters; or says why the group cannot run. */
export async function preparePg(cfg: PeersConfig): Promise<PgReady | { why: string }> {
  const pool = new pg.Pool({
    connectionString: cfg.pg.url,
    max: OWN_POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  pool.on('error', () => {});
  let version: string;
  let durability: string;
  try {
    const r = await pool.query<{ v: string; sc: string; fs: string }>(
      `SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fs`,
    );
    const row = r.rows[0]!;
    version = row.v;
    durability = `synchronous_commit ${row.sc}, fsync ${row.fs}`;
  } catch (err) {
    await pool.end().catch(() => {});
    return { why: `PostgreSQL at ${cfg.pg.url} not reachable (${messageOf(err)})` };
  }
  const peers: PgReady['peers'] = [];
  const skipped: PgReady['skipped'] = [];
  for (const id of cfg.pg.systems) {
    if (id === 'ferry') continue;
    try {
      const url = new URL(`./adapters/${id}.js`, import.meta.url).href;
      const mod = (await import(url)) as { createPgPeer(): PgPeer };
      peers.push({ id, peer: mod.createPgPeer() });
    } catch (err) {
      skipped.push({
        id,
        why:
          `its adapter did not load (${messageOf(err)}); \`npm run bench:peers\` installs ` +
          "bench/peers' clients and compiles the adapters",
      });
    }
  }
  return { pool, version, durability, peers, skipped };
}

/** The client package and its version, as printed. */
export function pgPeerVersion(id: Exclude<PgSystemId, 'ferry'>): string {
  return `${id} ${packageVersion(id)}`;
}

let schemaSeq = 0;

/** A fresh schema name for one run; dropped before (a leftover) and when the scope closes. */
async function freshSchema(pool: pg.Pool, scope: Scope, tag: string): Promise<string> {
  const name = `ferry_bench_${tag.replace(/[^a-z0-9]/g, '_')}_${process.pid}_${++schemaSeq}`;
  const drop = (): Promise<unknown> => pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  await drop();
  scope.add(drop);
  return name;
}

async function countOf(pool: pg.Pool, sql: string): Promise<number> {
  const r = await pool.query<{ count: string }>(sql);
  return Number(r.rows[0]?.count ?? 0);
}

interface RowSpec {
  key: string;
  label: string;
  color: string;
  durability: string;
  tag: string;
}

function row(spec: RowSpec, system: PgSystemId): SystemRow {
  return { ...spec, systemId: system, sync: system === 'ferry' ? 'always' : null };
}

/** Ferry's rows: SQLite baseline, PostgreSQL with one broker, and with two. */
function ferryRows(pgDurability: string): Record<'sqlite' | 'pg' | 'pg2', RowSpec> {
  return {
    sqlite: {
      key: 'ferry:sqlite',
      label: 'Ferry SQLite (baseline)',
      color: COLORS['ferry:sqlite']!,
      durability: 'embedded SQLite, sync always: acknowledged after its group commit is fsync’d',
      tag: 'SQLite, fsync’d before ack',
    },
    pg: {
      key: 'ferry:pg',
      label: 'Ferry PG, 1 broker',
      color: COLORS['ferry:pg']!,
      durability: `PostgreSQL store, sync always (session synchronous_commit on); server ${pgDurability}`,
      tag: 'PG commit, WAL flushed before ack',
    },
    pg2: {
      key: 'ferry:pg2',
      label: 'Ferry PG, 2 brokers A→B',
      color: COLORS['ferry:pg2']!,
      durability: `two brokers on one PostgreSQL schema, sync always; server ${pgDurability}`,
      tag: 'PG commit, WAL flushed before ack',
    },
  };
}

function peerRowSpec(id: string, peer: PgPeer, mode: PgJobsMode, pgDurability: string): RowSpec {
  return {
    key: id,
    label: mode === 'latency' && id === 'pg-boss' ? 'pg-boss (notify)' : peer.label,
    color: COLORS[id] ?? '#888',
    durability: `${peer.settings[mode]}; server ${pgDurability}`,
    tag: `PG commit (${pgDurability.split(',')[0]})`,
  };
}

/** Ratio lines: every row ÷ the baseline, and Ferry PG (1 broker) ÷ every other system. */
function pgRatios(results: Result[]): RatioLine[] {
  const out: RatioLine[] = [];
  const g = results[0]?.group;
  if (!g) return out;
  const med = (r: Result, k: string): number => r.spreads[k]?.median ?? NaN;
  const ok = results.filter((r) => r.outputs.length > 0);
  const keys = PG_HEADLINE_METRICS.filter((k) =>
    g.measurements[0]?.metrics.some((m) => m.key === k),
  );
  const pair = (f: Result, p: Result): void => {
    for (const k of keys) {
      out.push({
        group: g.name,
        ferry: f.m.row.label,
        peer: p.m.row.label,
        metric: k,
        ratio: med(f, k) / med(p, k),
      });
    }
  };
  const base = ok.find((r) => r.m.row.key === 'ferry:sqlite');
  if (base) for (const r of ok) if (r !== base && r.m.row.systemId === 'ferry') pair(r, base);
  const ferryPg = ok.find((r) => r.m.row.key === 'ferry:pg');
  if (ferryPg) for (const r of ok) if (r.m.row.systemId !== 'ferry') pair(ferryPg, r);
  return out;
}

interface GroupContext {
  cfg: PeersConfig;
  ready: PgReady;
}

function progress(
  scope: Scope,
  label: string,
  total: number,
): (done: number, text?: string) => void {
  let done = 0;
  let text = '';
  startProgress(
    scope,
    label,
    () => text || `${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`,
    () => done / total,
  );
  return (d, t) => {
    done = d;
    text = t ?? '';
  };
}

/** Runs a jobs workload on one Ferry broker on `store`. */
async function ferryJobsRun(
  base: BenchConfig,
  scope: Scope,
  store: FerryStore,
  mode: PgJobsMode,
  run: (target: PgJobsTarget, hooks: Hooks) => Promise<RunOutput>,
): Promise<RunOutput> {
  const f = await startFerryBrokers(base, scope, store, 1);
  const target = await ferryJobsTarget(scope, f, mode);
  const snaps: CounterSnapshot[] = [];
  const take = async (): Promise<void> => void snaps.push(await snapshotCounters(f.clients[0]!));
  const out = await run(target, { start: take, enqueued: take, end: take });
  const n = Number(out.details['jobs']);
  if (snaps.length === 3) {
    Object.assign(out.metrics, perOp(snaps[0]!, snaps[2]!, n));
    out.details['enqueuePerJob'] = perOp(snaps[0]!, snaps[1]!, n);
    out.details['processPerJob'] = perOp(snaps[1]!, snaps[2]!, n);
  } else if (snaps.length === 2) {
    Object.assign(out.metrics, perOp(snaps[0]!, snaps[1]!, n));
  }
  return out;
}

interface Hooks {
  start(): Promise<void>;
  enqueued(): Promise<void>;
  end(): Promise<void>;
}

function jobsGroup(ctx: GroupContext): Group {
  const { cfg, ready } = ctx;
  const o = cfg.pg;
  const rows = ferryRows(ready.durability);
  const jobsRun =
    (scope: Scope, label: string) =>
    (target: PgJobsTarget, hooks?: Hooks): Promise<RunOutput> => {
      const p = progress(scope, label, 2 * o.jobs);
      return enqueueThenProcess(target, {
        count: o.jobs,
        batch: o.batch,
        timeoutMs: PG_RUN_TIMEOUT_MS,
        onProgress: (added, handled) => p(added + handled),
        ...(hooks ? { hooks } : {}),
      });
    };
  const ms: Measurement[] = [];
  if (o.systems.includes('ferry')) {
    for (const which of ['sqlite', 'pg'] as const) {
      ms.push({
        row: row(rows[which], 'ferry'),
        metrics: JOBS_METRICS,
        timeoutMs: PG_RUN_TIMEOUT_MS,
        run: async (scope, label) => {
          const store: FerryStore =
            which === 'sqlite'
              ? { kind: 'sqlite' }
              : {
                  kind: 'pg',
                  url: o.url,
                  schema: await freshSchema(ready.pool, scope, 'ferry_jobs'),
                };
          return ferryJobsRun(cfg.base, scope, store, 'jobs', jobsRun(scope, label));
        },
      });
    }
  }
  for (const { id, peer } of ready.peers) {
    ms.push({
      row: row(peerRowSpec(id, peer, 'jobs', ready.durability), id),
      metrics: JOBS_METRICS,
      timeoutMs: PG_RUN_TIMEOUT_MS,
      run: async (scope, label) => {
        const schema = await freshSchema(ready.pool, scope, id);
        const target = await peer.open(scope, {
          url: o.url,
          schema,
          mode: 'jobs',
          count: (sql) => countOf(ready.pool, sql),
        });
        return jobsRun(scope, label)(target);
      },
    });
  }
  return {
    workload: 'pg',
    name: 'PG jobs',
    title:
      `PostgreSQL jobs, enqueue then process: ${o.jobs.toLocaleString('en-US')} no-op jobs added in batches of ` +
      `${o.batch.toLocaleString('en-US')} with nothing running, then the workers start (Ferry: ${FERRY_JOB_WORKERS} workers × concurrency ${FERRY_JOB_CONCURRENCY})`,
    size: 0,
    shape: {
      jobs: o.jobs,
      batch: o.batch,
      ferryWorkers: FERRY_JOB_WORKERS,
      ferryConcurrency: FERRY_JOB_CONCURRENCY,
    },
    measurements: ms,
    ratios: pgRatios,
  };
}

function latencyGroup(ctx: GroupContext): Group {
  const { cfg, ready } = ctx;
  const o = cfg.pg;
  const rows = ferryRows(ready.durability);
  const warmup = o.rate * PACED_WARMUP_S;
  const pacedRun = (scope: Scope, label: string, target: PgJobsTarget): Promise<RunOutput> => {
    const p = progress(scope, label, 2 * (warmup + o.pacedCount));
    return pacedLatency(target, {
      rate: o.rate,
      count: o.pacedCount,
      warmup,
      tickMs: PACED_TICK_MS,
      timeoutMs: PG_RUN_TIMEOUT_MS,
      onProgress: (added, handled) => p(added + handled),
    });
  };
  const ms: Measurement[] = [];
  if (o.systems.includes('ferry')) {
    for (const which of ['sqlite', 'pg'] as const) {
      ms.push({
        row: row(rows[which], 'ferry'),
        metrics: LATENCY_METRICS,
        timeoutMs: PG_RUN_TIMEOUT_MS,
        run: async (scope, label) => {
          const store: FerryStore =
            which === 'sqlite'
              ? { kind: 'sqlite' }
              : {
                  kind: 'pg',
                  url: o.url,
                  schema: await freshSchema(ready.pool, scope, 'ferry_lat'),
                };
          const f = await startFerryBrokers(cfg.base, scope, store, 1);
          return pacedRun(scope, label, await ferryJobsTarget(scope, f, 'latency'));
        },
      });
    }
  }
  for (const { id, peer } of ready.peers) {
    ms.push({
      row: row(peerRowSpec(id, peer, 'latency', ready.durability), id),
      metrics: LATENCY_METRICS,
      timeoutMs: PG_RUN_TIMEOUT_MS,
      run: async (scope, label) => {
        const schema = await freshSchema(ready.pool, scope, `${id}_lat`);
        const target = await peer.open(scope, {
          url: o.url,
          schema,
          mode: 'latency',
          count: (sql) => countOf(ready.pool, sql),
        });
        return pacedRun(scope, label, target);
      },
    });
  }
  return {
    workload: 'pg',
    name: 'PG latency',
    title:
      `PostgreSQL jobs, paced: single adds at ${o.rate} jobs/s, ${o.pacedCount.toLocaleString('en-US')} measured after ${warmup} of warm-up, ` +
      `workers running (Ferry: 1 worker × concurrency ${FERRY_LATENCY_CONCURRENCY}); add → handler start`,
    size: 0,
    shape: { rate: o.rate, jobs: o.pacedCount, warmup },
    measurements: ms,
    ratios: pgRatios,
  };
}

type TwoBrokerKind = 'queue' | 'call';

/** One/two-broker rows: store, broker count, and for calls whether the call is durable. */
function twoBrokerGroup(ctx: GroupContext, kind: TwoBrokerKind): Group {
  const { cfg, ready } = ctx;
  const o = cfg.pg;
  const rows = ferryRows(ready.durability);
  const variants: { spec: RowSpec; store: 'sqlite' | 'pg'; brokers: number; durable: boolean }[] =
    kind === 'queue'
      ? [
          { spec: rows.sqlite, store: 'sqlite', brokers: 1, durable: false },
          { spec: rows.pg, store: 'pg', brokers: 1, durable: false },
          { spec: rows.pg2, store: 'pg', brokers: 2, durable: false },
        ]
      : [
          {
            spec: {
              ...rows.sqlite,
              label: 'Ferry SQLite call (baseline)',
              tag: 'not stored (a call)',
            },
            store: 'sqlite',
            brokers: 1,
            durable: false,
          },
          {
            spec: { ...rows.pg, label: 'Ferry PG, 1 broker, call', tag: 'not stored (a call)' },
            store: 'pg',
            brokers: 1,
            durable: false,
          },
          {
            spec: {
              ...rows.pg,
              key: 'ferry:pg-durable',
              label: 'Ferry PG, 1 broker, durable call',
              tag: 'job + result, WAL flushed',
            },
            store: 'pg',
            brokers: 1,
            durable: true,
          },
          {
            spec: {
              ...rows.pg2,
              label: 'Ferry PG, 2 brokers A→B, call',
              tag: 'job + result stored (worker elsewhere)',
            },
            store: 'pg',
            brokers: 2,
            durable: false,
          },
        ];
  const ms: Measurement[] = o.systems.includes('ferry')
    ? variants.map((v) => ({
        row: row(v.spec, 'ferry'),
        metrics: kind === 'queue' ? QUEUE_METRICS : CALL_METRICS,
        timeoutMs: PG_RUN_TIMEOUT_MS,
        run: async (scope, label) => {
          const store: FerryStore =
            v.store === 'sqlite'
              ? { kind: 'sqlite' }
              : {
                  kind: 'pg',
                  url: o.url,
                  schema: await freshSchema(ready.pool, scope, `ferry_${kind}`),
                };
          const f = await startFerryBrokers(cfg.base, scope, store, v.brokers);
          if (kind === 'queue') {
            const p = progress(scope, label, o.w1Count);
            return ferryQueueRun(cfg.base, scope, f, o.w1Count, (n) => p(n));
          }
          const p = progress(scope, label, w3TotalCalls(o.calls));
          return ferryCallRun(scope, f, {
            calls: o.calls,
            durable: v.durable,
            onProgress: (n) => p(n),
          });
        },
      }))
    : [];
  const title =
    kind === 'queue'
      ? `PostgreSQL, one and two Ferry brokers on one store: W1-like queue, 100 B, ${o.w1Count.toLocaleString('en-US')} msgs, ` +
        `producer on A (≤ ${cfg.base.window} unconfirmed), consumer on B (prefetch ${cfg.base.prefetch}, every message acked)`
      : `PostgreSQL, one and two Ferry brokers on one store: ${o.calls.toLocaleString('en-US')} sequential calls (+10 % warm-up) from A ` +
        'to 4 workers on B (concurrency 1), 100 B params and results';
  return {
    workload: 'pg',
    name: kind === 'queue' ? 'PG queue 1/2 brokers' : 'PG calls 1/2 brokers',
    title,
    size: 100,
    shape:
      kind === 'queue'
        ? { messages: o.w1Count, size: 100 }
        : { calls: o.calls, workers: 4, size: 100 },
    measurements: ms,
    ratios: pgRatios,
  };
}

/** The pg group's tables (those with at least one row). */
export function pgGroups(cfg: PeersConfig, ready: PgReady): Group[] {
  const ctx = { cfg, ready };
  return [
    jobsGroup(ctx),
    latencyGroup(ctx),
    twoBrokerGroup(ctx, 'queue'),
    twoBrokerGroup(ctx, 'call'),
  ].filter((g) => g.measurements.length > 0);
}
