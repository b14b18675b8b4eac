/**
 * Ferry's side of the PostgreSQL group: one or two brokers on one store (`--store
 * postgres://… --store-schema <s> --node-id <id>`, or the embedded SQLite of `npm run bench`
 * as the baseline), all with `--sync always` (on PostgreSQL: synchronous_commit on). Jobs as a
 * PgJobsTarget (SDK `submit`, workers with concurrency); a W1-like queue run with the producer
 * on broker A and the consumer on the last broker; sequential calls from A to workers on the
 * last broker. Every run reports the brokers' own counts per job / message / call (summed over
 * the brokers: bench/op-counts.ts).
 */
import type { FerryClient } from 'ferrymq';
import type { BrokerChild } from '../broker.js';
import type { BenchConfig } from '../config.js';
import { consume, newCounters, produce } from '../ferry-load.js';
import { perOp, snapshotCounters, type CounterSnapshot } from '../op-counts.js';
import { summarizeLatency } from '../stats.js';
import { benchClient, startBenchBroker, type RunOutput, type Scope } from '../workloads.js';
import { W3_CALL_TIMEOUT_MS } from './config.js';
import { sequentialCalls, w3Result } from './peer.js';
import type { JobPayload, PgJobsMode, PgJobsTarget } from './pg-load.js';

/** Where Ferry stores: the embedded SQLite (a temp data dir) or a PostgreSQL schema. */
export type FerryStore = { kind: 'sqlite' } | { kind: 'pg'; url: string; schema: string };

/** Every Ferry row of the group runs with this policy (PostgreSQL: synchronous_commit on). */
const PG_GROUP_SYNC = 'always';
const SERVICE = 'bench-pg-jobs';
/** Jobs: worker connections × concurrency (200 in flight, graphile-worker's localQueue.size). */
export const FERRY_JOB_WORKERS = 2;
export const FERRY_JOB_CONCURRENCY = 100;
/** Latency: one worker with concurrency 10 (graphile-worker's and pg-boss' 10). */
export const FERRY_LATENCY_CONCURRENCY = 10;
/** Calls: workers with concurrency 1 each (as W3). */
const CALL_WORKERS = 4;
const PAYLOAD_BYTES = 100;
/** Two brokers: wait this long for each to list the other in its cluster stats, ms. */
const CLUSTER_WAIT_MS = 20_000;
const CLUSTER_POLL_MS = 100;
const EMPTY = Buffer.alloc(0);

/** The brokers of one run, A first; each with one client for counters. */
export interface FerryBrokers {
  brokers: BrokerChild[];
  /** One client per broker (for stats), A's first. */
  clients: FerryClient[];
}

/** `ferry start` flags for the store; broker `index` gets its own node id. */
export function storeFlags(store: FerryStore, index: number): string[] {
  if (store.kind === 'sqlite') return [];
  return [
    '--store',
    store.url,
    '--store-schema',
    store.schema,
    '--node-id',
    `bench-${String.fromCharCode(97 + index)}`,
  ];
}

/** Starts `count` brokers on `store`; with several, waits until each sees all in the cluster. */
export async function startFerryBrokers(
  base: BenchConfig,
  scope: Scope,
  store: FerryStore,
  count: number,
): Promise<FerryBrokers> {
  if (store.kind === 'sqlite' && count > 1) throw new Error('SQLite is one broker’s store');
  const brokers: BrokerChild[] = [];
  const clients: FerryClient[] = [];
  for (let i = 0; i < count; i++) {
    const b = await startBenchBroker(
      { ...base, sync: PG_GROUP_SYNC },
      scope,
      `pg${i}`,
      storeFlags(store, i),
    );
    brokers.push(b);
    clients.push(await benchClient(b, scope));
  }
  if (count > 1) {
    const deadline = Date.now() + CLUSTER_WAIT_MS;
    for (const c of clients) {
      for (;;) {
        const nodes = (await c.stats()).cluster?.nodes.length ?? 0;
        if (nodes >= count) break;
        if (Date.now() > deadline)
          throw new Error(`a broker sees ${nodes} of ${count} in the cluster`);
        await new Promise((r) => setTimeout(r, CLUSTER_POLL_MS));
      }
    }
  }
  return { brokers, clients };
}

/** The brokers' counters, summed. */
async function sumCounters(clients: FerryClient[]): Promise<CounterSnapshot> {
  const all = await Promise.all(clients.map((c) => snapshotCounters(c)));
  const sum: CounterSnapshot = {
    commits: 0,
    fsyncs: 0,
    sqlStatements: 0,
    sqlControlStatements: 0,
    zmqIn: 0,
    zmqOut: 0,
  };
  for (const s of all)
    for (const k of Object.keys(sum) as (keyof CounterSnapshot)[]) sum[k] += s[k];
  return sum;
}

/** Ferry as a PgJobsTarget: `submit` on broker A, workers on the last broker. */
export async function ferryJobsTarget(
  scope: Scope,
  f: FerryBrokers,
  mode: PgJobsMode,
): Promise<PgJobsTarget> {
  const producer = f.clients[0]!;
  const last = f.brokers[f.brokers.length - 1]!;
  const submit = async (p: JobPayload): Promise<void> => {
    await producer.submit(SERVICE, JSON.stringify(p));
  };
  return {
    async addBatch(payloads) {
      await Promise.all(payloads.map(submit));
    },
    addOne: submit,
    async startWorkers(onJob) {
      const workers = mode === 'jobs' ? FERRY_JOB_WORKERS : 1;
      const concurrency = mode === 'jobs' ? FERRY_JOB_CONCURRENCY : FERRY_LATENCY_CONCURRENCY;
      for (let i = 0; i < workers; i++) {
        const wc = await benchClient(last, scope);
        const w = wc.worker(
          SERVICE,
          (job) => {
            onJob(JSON.parse(job.params.toString('utf8')) as JobPayload);
            return EMPTY;
          },
          { concurrency },
        );
        await w.ready;
        scope.add(() => w.close());
      }
    },
    async pending() {
      const s = (await producer.services()).find((x) => x.name === SERVICE);
      return s ? s.queued + s.running : 0;
    },
  };
}

/**
 * W1-like: a producer on A (at most `window` unconfirmed sends) and a consumer on the last
 * broker (prefetch, one ack per message), `count` 100-byte messages: msgs/s and latency.
 */
export async function ferryQueueRun(
  base: BenchConfig,
  scope: Scope,
  f: FerryBrokers,
  count: number,
  onProgress: (acked: number) => void,
): Promise<RunOutput> {
  const producer = await benchClient(f.brokers[0]!, scope);
  const consumer = await benchClient(f.brokers[f.brokers.length - 1]!, scope);
  const queue = 'bench-pg-w1';
  const counters = newCounters();
  const timer = setInterval(() => onProgress(counters.acked), 500);
  scope.add(() => clearInterval(timer));
  const before = await sumCounters(f.clients);
  const [p, r] = await Promise.all([
    produce(producer, { queue, count, size: PAYLOAD_BYTES, window: base.window, counters }),
    consume(consumer, { queue, count, prefetch: base.prefetch, recordLatency: true, counters }),
  ]);
  const elapsedMs = r.lastAckAt - p.firstSendAt;
  const counts = perOp(before, await sumCounters(f.clients), count);
  const lat = summarizeLatency(r.latencyMs);
  return {
    metrics: { msgsPerSec: (count * 1000) / elapsedMs, p50Ms: lat.p50, p99Ms: lat.p99, ...counts },
    details: { messages: count, elapsedMs, latencyMs: lat, duplicates: r.duplicates },
  };
}

/**
 * Sequential calls from A to CALL_WORKERS workers on the last broker (concurrency 1 each).
 * `durable`: `call(…, { durable: true })`. A call whose worker is on another broker is stored
 * whatever `durable` says, so that a worker elsewhere can take it (docs/postgres.md).
 */
export async function ferryCallRun(
  scope: Scope,
  f: FerryBrokers,
  o: { calls: number; durable: boolean; onProgress: (done: number) => void },
): Promise<RunOutput> {
  const service = 'bench-pg-call';
  const last = f.brokers[f.brokers.length - 1]!;
  for (let i = 0; i < CALL_WORKERS; i++) {
    const wc = await benchClient(last, scope);
    const w = wc.worker(service, (job) => w3Result(job.params.length), { concurrency: 1 });
    await w.ready;
    scope.add(() => w.close());
  }
  const caller = await benchClient(f.brokers[0]!, scope);
  const options = { timeoutMs: W3_CALL_TIMEOUT_MS, durable: o.durable };
  const snap: { before?: CounterSnapshot; after?: CounterSnapshot } = {};
  const r = await sequentialCalls((params) => caller.call(service, params, options), {
    calls: o.calls,
    size: PAYLOAD_BYTES,
    onProgress: o.onProgress,
    measured: {
      start: async () => void (snap.before = await sumCounters(f.clients)),
      end: async () => void (snap.after = await sumCounters(f.clients)),
    },
  });
  if (snap.before && snap.after) Object.assign(r.metrics, perOp(snap.before, snap.after, o.calls));
  return r;
}
