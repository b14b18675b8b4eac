/**
 * Ferry's side of `bench:peers`. W1, W2 and the ceilings are the very measurements of
 * `npm run bench` (bench/workloads.ts), run with this bench's size and sync policy. W3 uses the
 * job server through the SDK (`ferry.worker` / `ferry.call`, transient or `{ durable: true }`),
 * with the broker's counters per call (bench/op-counts.ts) over the measured calls. W4 is the fan-out of
 * bench/pubsub-load.ts (`ferryFanoutTarget`), measured by the same code as the peers' W4.
 */
import type { FerryClient } from 'ferrymq';
import { cpuSeconds } from '../broker.js';
import type { BenchConfig } from '../config.js';
import {
  benchClient,
  startBenchBroker,
  WORKLOADS,
  type RunOutput,
  type Scope,
  type Workload,
} from '../workloads.js';
import { perOp, snapshotCounters, type CounterSnapshot } from '../op-counts.js';
import { ferryFanoutTarget } from '../pubsub-load.js';
import { W3_CALL_TIMEOUT_MS } from './config.js';
import {
  fanoutMeasurement,
  sequentialCalls,
  w3Result,
  type CallKind,
  type FanoutMode,
} from './peer.js';

/** One of `npm run bench`'s workloads by its name (w1, w2, push-pull, …). */
export function ferryWorkload(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`no Ferry workload ${name}`);
  return w;
}

/** Runs one of `npm run bench`'s workloads once with another size / sync / count. */
export function runFerryWorkload(
  name: string,
  base: BenchConfig,
  overrides: Partial<BenchConfig>,
  scope: Scope,
  label: string,
): Promise<RunOutput> {
  const cfg: BenchConfig = { ...base, ...overrides };
  return ferryWorkload(name).run({ cfg, scope, label });
}

export interface FerryW3Options {
  base: BenchConfig;
  sync: string;
  /** durable: `call(…, { durable: true })`, the job and its result stored. */
  kind: CallKind;
  calls: number;
  workers: number;
  size: number;
  scope: Scope;
  onProgress: (done: number) => void;
}

function brokerFor(base: BenchConfig, sync: string, scope: Scope, tag: string) {
  return startBenchBroker({ ...base, sync }, scope, tag);
}

/**
 * W3 on Ferry: 1 caller, `workers` workers (concurrency 1, a connection each); with the broker's
 * fsyncs, commits, SQL statements and ZeroMQ messages per measured call (the warm-up left out).
 */
export async function ferryW3(o: FerryW3Options): Promise<RunOutput> {
  const broker = await brokerFor(o.base, o.sync, o.scope, o.kind === 'durable' ? 'w3d' : 'w3');
  const service = 'bench-w3';
  for (let i = 0; i < o.workers; i++) {
    const wc = await benchClient(broker, o.scope);
    const w = wc.worker(service, (job) => w3Result(job.params.length), { concurrency: 1 });
    await w.ready;
    o.scope.add(() => w.close());
  }
  const caller = await benchClient(broker, o.scope);
  const options = { timeoutMs: W3_CALL_TIMEOUT_MS, durable: o.kind === 'durable' };
  const snap: { before?: CounterSnapshot; after?: CounterSnapshot } = {};
  const r = await sequentialCalls((params) => caller.call(service, params, options), {
    calls: o.calls,
    size: o.size,
    onProgress: o.onProgress,
    measured: {
      start: async () => void (snap.before = await snapshotCounters(caller)),
      end: async () => void (snap.after = await snapshotCounters(caller)),
    },
  });
  broker.mem.sample();
  r.metrics['peakRssMB'] = broker.mem.peakRssKiB / 1024;
  if (snap.before && snap.after) Object.assign(r.metrics, perOp(snap.before, snap.after, o.calls));
  return r;
}

export interface FerryW4Options {
  base: BenchConfig;
  sync: string;
  mode: FanoutMode;
  subscribers: number;
  count: number;
  size: number;
  settleMs: number;
  scope: Scope;
  label: string;
}

/**
 * W4 on Ferry: 1 publisher and `subscribers` subscribers, a connection each; live subscribers
 * (`subscribe(pattern)`) or durable ones (`{ durable, prefetch }`, every message acked).
 */
export async function ferryW4(o: FerryW4Options): Promise<RunOutput> {
  const broker = await brokerFor(o.base, o.sync, o.scope, 'w4');
  const publisher = await benchClient(broker, o.scope);
  const subscribers: FerryClient[] = [];
  for (let i = 0; i < o.subscribers; i++) subscribers.push(await benchClient(broker, o.scope));
  const live = o.mode === 'live' ? o.subscribers : 0;
  const cpu0 = cpuSeconds(broker.pid);
  const t0 = Date.now();
  const r = await fanoutMeasurement({
    scope: o.scope,
    label: o.label,
    target: ferryFanoutTarget(publisher, subscribers, live, o.base.prefetch),
    mem: broker.mem,
    memName: 'broker',
    subscribers: o.subscribers,
    count: o.count,
    size: o.size,
    window: o.base.window,
    settleMs: o.settleMs,
  });
  r.details['brokerCpuPercent'] =
    ((cpuSeconds(broker.pid) - cpu0) * 100_000) / Math.max(1, Date.now() - t0);
  return r;
}
