/**
 * The workloads. Each `run` is one repetition with a fresh broker child and data dir; it
 * returns the metrics of that run (the keys of its workload's metric list) and details for the
 * JSON lines. Everything a run opens is registered on its Scope, which run.ts closes afterwards
 * (also after a timeout or an error).
 */
import fs from 'node:fs';
import path from 'node:path';
import { connect, type CurveOptions, type FerryClient } from 'ferrymq';
import { cpuSeconds, diskUsage, startBroker, type BrokerChild } from './broker.js';
import { dealerRouterRtt, fdatasyncRate, forwardedCall, pushPull } from './ceilings.js';
import type { BenchConfig, WorkloadId } from './config.js';
import { consume, newCounters, produce, type LoadCounters } from './ferry-load.js';
import { sequentialCalls, startWorkers, submitAndDrain, W3_WARMUP_CALLS } from './jobs-load.js';
import { OP_COUNT_METRICS, perOp, snapshotCounters } from './op-counts.js';
import { fanout, fillRetained, takeSnapshot, type SubscriberResult } from './pubsub-load.js';
import { Progress } from './progress.js';
import { summarizeLatency } from './stats.js';

const CLIENT_OPTIONS = { requestTimeoutMs: 120_000, name: 'ferry-bench' };
const MB = 1024 * 1024;
/** Unmeasured round trips before the DEALER/ROUTER and forwarded-call ceilings. */
const RTT_WARMUP = 1_000;

/** Cleanup actions of one run, undone in reverse order. */
export class Scope {
  private readonly actions: (() => unknown)[] = [];
  add(action: () => unknown): void {
    this.actions.push(action);
  }
  async close(): Promise<void> {
    while (this.actions.length > 0) {
      const a = this.actions.pop()!;
      try {
        await a();
      } catch {
        /* best effort */
      }
    }
  }
}

/** Temp dirs not yet removed: removed synchronously if the bench is interrupted. */
export const liveTempDirs = new Set<string>();

function makeTempDir(cfg: BenchConfig, scope: Scope, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(cfg.dir, prefix));
  liveTempDirs.add(dir);
  scope.add(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    liveTempDirs.delete(dir);
  });
  return dir;
}

export interface RunContext {
  cfg: BenchConfig;
  scope: Scope;
  /** Names the run on its progress line. */
  label: string;
  /** CURVE on: the broker's extra flags and the clients' keys (bench/curve-workloads.ts). */
  curve?: { flags: string[]; client: CurveOptions };
}

export interface RunOutput {
  metrics: Record<string, number>;
  details: Record<string, unknown>;
}

export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  /** The goal from the issue, checked against the median. */
  target?: { op: '>=' | '<='; value: number };
}

export interface Workload {
  id: WorkloadId;
  /** Sub-measurement name within the workload id (ceilings have three). */
  name: string;
  title: string;
  metrics: MetricDef[];
  timeoutMs(cfg: BenchConfig): number;
  /** What the count / size mean for this measurement (for the JSON lines). */
  shape(cfg: BenchConfig): Record<string, unknown>;
  run(ctx: RunContext): Promise<RunOutput>;
}

/** Starts a progress line, stopped when the scope closes. */
export function startProgress(
  scope: Scope,
  label: string,
  status: () => string,
  fraction?: () => number,
): void {
  const p = new Progress(label, status, fraction);
  p.start();
  scope.add(() => p.stop());
}

/** A broker child with `cfg.sync` on a fresh data dir under `cfg.dir`, stopped with the scope. */
export async function startBenchBroker(
  cfg: BenchConfig,
  scope: Scope,
  tag: string,
  flags: string[] = [],
): Promise<BrokerChild> {
  const dataDir = makeTempDir(cfg, scope, `ferry-bench-${tag}-`);
  const broker = await startBroker({
    dataDir,
    sync: cfg.sync,
    nodeArgs: cfg.brokerNodeArgs,
    flags,
  });
  scope.add(() => broker.stop());
  return broker;
}

/** An SDK connection to `broker`, closed with the scope. */
export async function benchClient(
  broker: BrokerChild,
  scope: Scope,
  curve?: CurveOptions,
): Promise<FerryClient> {
  const client = await connect(broker.endpoint, { ...CLIENT_OPTIONS, ...(curve ? { curve } : {}) });
  scope.add(() => client.close({ timeoutMs: 0 }));
  return client;
}

function brokerFor(ctx: RunContext, tag: string): Promise<BrokerChild> {
  return startBenchBroker(ctx.cfg, ctx.scope, tag, ctx.curve?.flags);
}

function clientFor(ctx: RunContext, broker: BrokerChild): Promise<FerryClient> {
  return benchClient(broker, ctx.scope, ctx.curve?.client);
}

/** The broker's largest RSS sample, split into anonymous / file-backed / shared memory, MB. */
function peakSplit(broker: BrokerChild): Record<string, number> | null {
  const p = broker.mem.peakSample;
  if (!p) return null;
  return {
    rssMB: p.rssKiB / 1024,
    anonMB: p.anonKiB / 1024,
    fileMB: p.fileKiB / 1024,
    shmemMB: p.shmemKiB / 1024,
  };
}

function memText(broker: BrokerChild): string {
  return `broker RSS ${(broker.mem.lastRssKiB / 1024).toFixed(0)} MB`;
}

function loadText(c: LoadCounters, total: number): string {
  return (
    `confirmed ${c.confirmed.toLocaleString('en-US')}/${total.toLocaleString('en-US')}, ` +
    `received ${c.received.toLocaleString('en-US')}, acked ${c.acked.toLocaleString('en-US')}`
  );
}

/** The broker's own view: commit count, ops per commit, commit time, fsyncs. */
async function brokerStorageStats(client: FerryClient): Promise<Record<string, unknown>> {
  try {
    const s = await client.stats();
    return { ...s.broker.storage };
  } catch (err) {
    return { error: String(err) };
  }
}

// ------------------------------------------------------------------ W1 and W1-paced

export async function runW1(ctx: RunContext, paced: boolean): Promise<RunOutput> {
  const { cfg } = ctx;
  const broker = await brokerFor(ctx, paced ? 'w1p' : 'w1');
  const producer = await clientFor(ctx, broker);
  const consumer = await clientFor(ctx, broker);
  const queue = paced ? 'bench-w1-paced' : 'bench-w1';
  const warmupCount = paced ? Math.round((cfg.rate * cfg.warmupMs) / 1000) : 0;
  const measured = paced ? cfg.pacedCount : cfg.count;
  const total = measured + warmupCount;
  const counters = newCounters();
  startProgress(
    ctx.scope,
    ctx.label,
    () => `${loadText(counters, total)}, ${memText(broker)}`,
    () => counters.acked / total,
  );
  const counters0 = await snapshotCounters(producer);
  const cpu0 = cpuSeconds(broker.pid);
  const benchCpu0 = process.cpuUsage();
  const consuming = consume(consumer, {
    queue,
    count: total,
    prefetch: cfg.prefetch,
    recordLatency: true,
    counters,
  });
  const producing = produce(producer, {
    queue,
    count: total,
    size: cfg.size,
    window: cfg.window,
    ...(paced ? { ratePerSec: cfg.rate, tickMs: cfg.tickMs, warmupCount } : {}),
    counters,
  });
  const [p, r] = await Promise.all([producing, consuming]);
  const elapsedMs = r.lastAckAt - p.firstSendAt;
  const brokerCpu = cpuSeconds(broker.pid) - cpu0;
  const benchCpu = process.cpuUsage(benchCpu0);
  const counts = perOp(counters0, await snapshotCounters(producer), total);
  const storage = await brokerStorageStats(producer);
  broker.mem.sample();
  const lat = summarizeLatency(r.latencyMs);
  const latSched = summarizeLatency(r.latencyFromScheduleMs);
  const metrics: Record<string, number> = {
    msgsPerSec: (total * 1000) / elapsedMs,
    p50Ms: lat.p50,
    p99Ms: lat.p99,
    maxMs: lat.max,
    peakRssMB: broker.mem.peakRssKiB / 1024,
    ...counts,
  };
  const details: Record<string, unknown> = {
    messages: total,
    measuredLatencySamples: lat.count,
    warmupMessages: warmupCount,
    elapsedMs,
    produceConfirmedPerSec: (total * 1000) / (p.lastConfirmAt - p.firstSendAt),
    latencyMs: lat,
    duplicates: r.duplicates,
    brokerHwmMB: broker.mem.hwmKiB / 1024,
    brokerPeakRssSplit: peakSplit(broker),
    brokerCpuSeconds: brokerCpu,
    brokerCpuPercent: (brokerCpu * 100_000) / elapsedMs,
    benchCpuPercent: ((benchCpu.user + benchCpu.system) / 1000 / elapsedMs) * 100,
    brokerStorage: storage,
  };
  if (paced) {
    details['offeredRate'] = cfg.rate;
    details['windowStalls'] = p.windowStalls;
    details['latencyFromScheduleMs'] = latSched;
  }
  return { metrics, details };
}

// ------------------------------------------------------------------ W2 backlog

async function runW2(ctx: RunContext): Promise<RunOutput> {
  const { cfg } = ctx;
  const broker = await brokerFor(ctx, 'w2');
  const producer = await clientFor(ctx, broker);
  const queue = 'bench-w2';
  const n = cfg.w2Count;
  const counters = newCounters();
  let phase = 'produce';
  startProgress(
    ctx.scope,
    ctx.label,
    () => `${phase}: ${loadText(counters, n)}, ${memText(broker)}`,
    // Produce is the first half of the bar, the drain the second.
    () => (counters.confirmed + counters.acked) / (2 * n),
  );
  broker.mem.takePhasePeak();
  const cpu0 = cpuSeconds(broker.pid);
  const p = await produce(producer, {
    queue,
    count: n,
    size: cfg.size,
    window: cfg.w2Window,
    counters,
  });
  const produceMs = p.lastConfirmAt - p.firstSendAt;
  const cpu1 = cpuSeconds(broker.pid);
  const producePeakKiB = broker.mem.takePhasePeak();
  const disk = diskUsage(broker.dataDir);
  const produceStorage = await brokerStorageStats(producer);

  phase = 'drain';
  const consumer = await clientFor(ctx, broker);
  const r = await consume(consumer, {
    queue,
    count: n,
    prefetch: cfg.prefetch,
    recordLatency: false,
    counters,
  });
  const drainMs = r.lastAckAt - r.startedAt;
  const cpu2 = cpuSeconds(broker.pid);
  const drainPeakKiB = broker.mem.takePhasePeak();
  const storage = await brokerStorageStats(producer);
  return {
    metrics: {
      produceMsgsPerSec: (n * 1000) / produceMs,
      drainMsgsPerSec: (n * 1000) / drainMs,
      peakRssMB: Math.max(producePeakKiB, drainPeakKiB) / 1024,
      diskMB: disk.allocated / MB,
    },
    details: {
      messages: n,
      produceSeconds: produceMs / 1000,
      drainSeconds: drainMs / 1000,
      firstDeliveryAfterMs: r.firstReceiveAt - r.startedAt,
      producePeakRssMB: producePeakKiB / 1024,
      drainPeakRssMB: drainPeakKiB / 1024,
      brokerHwmMB: broker.mem.hwmKiB / 1024,
      brokerPeakRssSplit: peakSplit(broker),
      diskAllocatedBytes: disk.allocated,
      diskApparentBytes: disk.apparent,
      duplicates: r.duplicates,
      produceBrokerCpuPercent: ((cpu1 - cpu0) * 100_000) / produceMs,
      drainBrokerCpuPercent: ((cpu2 - cpu1) * 100_000) / drainMs,
      brokerStorageAfterProduce: produceStorage,
      brokerStorage: storage,
    },
  };
}

// ------------------------------------------------------------------ W3 jobs

async function w3Clients(ctx: RunContext, broker: BrokerChild): Promise<FerryClient[]> {
  const workers: FerryClient[] = [];
  for (let i = 0; i < ctx.cfg.w3Workers; i++) workers.push(await clientFor(ctx, broker));
  return workers;
}

export async function runW3(ctx: RunContext, durable: boolean): Promise<RunOutput> {
  const { cfg } = ctx;
  const broker = await brokerFor(ctx, durable ? 'w3d' : 'w3');
  const caller = await clientFor(ctx, broker);
  await startWorkers(await w3Clients(ctx, broker), 'bench-w3', cfg.size);
  const counters0 = await snapshotCounters(caller);
  let done = 0;
  startProgress(
    ctx.scope,
    ctx.label,
    () => `calls ${done.toLocaleString('en-US')}/${cfg.w3Count.toLocaleString('en-US')}`,
    () => done / cfg.w3Count,
  );
  const cpu0 = cpuSeconds(broker.pid);
  const r = await sequentialCalls(
    caller,
    'bench-w3',
    cfg.w3Count,
    cfg.size,
    (n) => (done = n),
    durable,
  );
  const elapsedMs = r.endedAt - r.startedAt;
  const brokerCpu = cpuSeconds(broker.pid) - cpu0;
  const counts = perOp(counters0, await snapshotCounters(caller), cfg.w3Count + W3_WARMUP_CALLS);
  const storage = await brokerStorageStats(caller);
  const lat = summarizeLatency(r.latencyMs);
  return {
    metrics: {
      callsPerSec: (cfg.w3Count * 1000) / elapsedMs,
      p50Ms: lat.p50,
      p99Ms: lat.p99,
      peakRssMB: broker.mem.peakRssKiB / 1024,
      ...counts,
    },
    details: {
      calls: cfg.w3Count,
      workers: cfg.w3Workers,
      elapsedMs,
      latencyMs: lat,
      brokerCpuPercent: (brokerCpu * 100_000) / elapsedMs,
      brokerCpuMicrosPerCall: (brokerCpu * 1e6) / cfg.w3Count,
      brokerStorage: storage,
    },
  };
}

async function runW3Submit(ctx: RunContext): Promise<RunOutput> {
  const { cfg } = ctx;
  const broker = await brokerFor(ctx, 'w3s');
  const submitter = await clientFor(ctx, broker);
  await startWorkers(await w3Clients(ctx, broker), 'bench-w3-submit', cfg.size);
  let submitted = 0;
  let done = 0;
  startProgress(
    ctx.scope,
    ctx.label,
    () =>
      `submitted ${submitted.toLocaleString('en-US')}, done ${done.toLocaleString('en-US')}/` +
      `${cfg.submitCount.toLocaleString('en-US')}, ${memText(broker)}`,
    () => done / cfg.submitCount,
  );
  const r = await submitAndDrain(
    submitter,
    'bench-w3-submit',
    cfg.submitCount,
    cfg.size,
    cfg.window,
    (s, d) => {
      submitted = s;
      done = d;
    },
    cfg.timeoutMs,
  );
  const storage = await brokerStorageStats(submitter);
  return {
    metrics: {
      submitPerSec: (cfg.submitCount * 1000) / r.submitMs,
      completedPerSec: (cfg.submitCount * 1000) / r.completeMs,
      peakRssMB: broker.mem.peakRssKiB / 1024,
    },
    details: {
      jobs: cfg.submitCount,
      workers: cfg.w3Workers,
      window: cfg.window,
      submitMs: r.submitMs,
      completeMs: r.completeMs,
      brokerStorage: storage,
    },
  };
}

// ------------------------------------------------------------------ pub/sub

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)]!;
}

function kindStats(subs: SubscriberResult[], count: number): Record<string, number> {
  const rates = subs.map((s) => (s.received * 1000) / Math.max(1, s.lastAtMs));
  return {
    rateMin: rates.length > 0 ? Math.min(...rates) : 0,
    rateMedian: median(rates),
    p99: subs.length > 0 ? Math.max(...subs.map((s) => s.latencyMs.p99)) : 0,
    p50: median(subs.map((s) => s.latencyMs.p50)),
    complete: subs.filter((s) => s.received === count).length,
    dropped: subs.filter((s) => s.dropped).length,
  };
}

async function runFanout(ctx: RunContext): Promise<RunOutput> {
  const { cfg } = ctx;
  const broker = await brokerFor(ctx, 'fanout');
  const publisher = await clientFor(ctx, broker);
  const subscribers: FerryClient[] = [];
  for (let i = 0; i < cfg.fanoutLive + cfg.fanoutDurable; i++) {
    subscribers.push(await clientFor(ctx, broker));
  }
  let published = 0;
  let delivered = 0;
  const expected = cfg.fanoutCount * subscribers.length;
  startProgress(
    ctx.scope,
    ctx.label,
    () =>
      `published ${published.toLocaleString('en-US')}/${cfg.fanoutCount.toLocaleString('en-US')}, ` +
      `delivered ${delivered.toLocaleString('en-US')}/${expected.toLocaleString('en-US')}, ${memText(broker)}`,
    () => delivered / expected,
  );
  const storage0 = await brokerStorageStats(publisher);
  const cpu0 = cpuSeconds(broker.pid);
  const r = await fanout(
    publisher,
    subscribers,
    cfg.fanoutLive,
    cfg.fanoutCount,
    cfg.size,
    cfg.window,
    (p, d) => {
      published = p;
      delivered = d;
    },
  );
  const live = kindStats(
    r.subscribers.filter((s) => s.kind === 'live'),
    cfg.fanoutCount,
  );
  const durable = kindStats(
    r.subscribers.filter((s) => s.kind === 'durable'),
    cfg.fanoutCount,
  );
  const brokerCpu = cpuSeconds(broker.pid) - cpu0;
  const storage = await brokerStorageStats(publisher);
  // Counts per publish (robust to a busy machine): what the broker did for each one.
  const perPublish = (key: string): number =>
    (Number(storage[key]) - Number(storage0[key])) / cfg.fanoutCount;
  return {
    metrics: {
      publishPerSec: (cfg.fanoutCount * 1000) / r.publishMs,
      brokerCpuUsPerPublish: (brokerCpu * 1e6) / cfg.fanoutCount,
      commitsPerPublish: perPublish('commits'),
      storageCallsPerPublish: perPublish('operations'),
      copiesPerPublish: perPublish('messagesWritten'),
      liveRateMin: live['rateMin']!,
      durableRateMin: durable['rateMin']!,
      liveP99Ms: live['p99']!,
      durableP99Ms: durable['p99']!,
      peakRssMB: broker.mem.peakRssKiB / 1024,
    },
    details: {
      messages: cfg.fanoutCount,
      live,
      durable,
      publishMs: r.publishMs,
      subscribers: r.subscribers.map((s) => ({
        kind: s.kind,
        received: s.received,
        dropped: s.dropped,
        lastAtMs: s.lastAtMs,
        latencyMs: s.latencyMs,
      })),
      brokerCpuSeconds: brokerCpu,
      brokerStorage: storage,
    },
  };
}

async function runSnapshot(ctx: RunContext): Promise<RunOutput> {
  const { cfg } = ctx;
  const broker = await brokerFor(ctx, 'snapshot');
  const publisher = await clientFor(ctx, broker);
  let stored = 0;
  let taken = 0;
  startProgress(
    ctx.scope,
    ctx.label,
    () =>
      `retained ${stored.toLocaleString('en-US')}/${cfg.snapshotKeys.toLocaleString('en-US')}, ` +
      `snapshot ${taken.toLocaleString('en-US')}, ${memText(broker)}`,
    () => (stored + taken) / (2 * cfg.snapshotKeys),
  );
  const fillStarted = Date.now();
  await fillRetained(publisher, cfg.snapshotKeys, cfg.size, cfg.window, (n) => (stored = n));
  const fillMs = Date.now() - fillStarted;
  stored = cfg.snapshotKeys;
  const subscriber = await clientFor(ctx, broker);
  const r = await takeSnapshot(subscriber, cfg.snapshotKeys, (n) => (taken = n));
  return {
    metrics: {
      snapshotMs: r.snapshotMs,
      keysPerSec: (cfg.snapshotKeys * 1000) / r.snapshotMs,
      retainedPerSec: (cfg.snapshotKeys * 1000) / fillMs,
      peakRssMB: broker.mem.peakRssKiB / 1024,
    },
    details: { keys: cfg.snapshotKeys, firstMs: r.firstMs, fillMs },
  };
}

// ------------------------------------------------------------------ the list

const W3_METRICS: MetricDef[] = [
  { key: 'callsPerSec', label: 'calls', unit: 'calls/s', target: { op: '>=', value: 3_400 } },
  { key: 'p50Ms', label: 'latency p50', unit: 'ms', target: { op: '<=', value: 0.25 } },
  { key: 'p99Ms', label: 'latency p99', unit: 'ms' },
  { key: 'peakRssMB', label: 'broker peak RSS', unit: 'MB' },
  ...OP_COUNT_METRICS,
];

export const WORKLOADS: Workload[] = [
  {
    id: 'ceilings',
    name: 'push-pull',
    title: 'Ceiling: raw zeromq.js PUSH/PULL (in-process, tcp loopback)',
    metrics: [{ key: 'msgsPerSec', label: 'throughput', unit: 'msgs/s' }],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ messages: cfg.count, size: cfg.size }),
    async run(ctx) {
      let done = 0;
      startProgress(
        ctx.scope,
        ctx.label,
        () => `received ${done.toLocaleString('en-US')}`,
        () => done / ctx.cfg.count,
      );
      const r = await pushPull(ctx.cfg.count, ctx.cfg.size, (n) => (done = n));
      return { metrics: { msgsPerSec: r.msgsPerSec }, details: { ...r } };
    },
  },
  {
    id: 'ceilings',
    name: 'dealer-router-rtt',
    title: 'Ceiling: raw zeromq.js DEALER/ROUTER round trip (in-process, tcp loopback)',
    metrics: [
      { key: 'p50Us', label: 'RTT p50', unit: 'µs' },
      { key: 'p99Us', label: 'RTT p99', unit: 'µs' },
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ roundTrips: cfg.rttCount, warmup: 1000, size: cfg.size }),
    async run(ctx) {
      let done = 0;
      startProgress(
        ctx.scope,
        ctx.label,
        () => `round trips ${done.toLocaleString('en-US')}`,
        () => done / (ctx.cfg.rttCount + RTT_WARMUP),
      );
      const r = await dealerRouterRtt(
        ctx.cfg.rttCount,
        ctx.cfg.size,
        RTT_WARMUP,
        (n) => (done = n),
      );
      return { metrics: { p50Us: r.p50, p99Us: r.p99 }, details: { latencyUs: r } };
    },
  },
  {
    id: 'ceilings',
    name: 'forwarded-call',
    title:
      'Ceiling: a call through a raw zeromq.js ROUTER forwarder process to an echoing worker (W3 topology)',
    metrics: [
      { key: 'p50Ms', label: 'call p50', unit: 'ms' },
      { key: 'p99Ms', label: 'call p99', unit: 'ms' },
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ calls: cfg.rttCount, warmup: 1000, size: cfg.size }),
    async run(ctx) {
      let done = 0;
      startProgress(
        ctx.scope,
        ctx.label,
        () => `calls ${done.toLocaleString('en-US')}`,
        () => done / (ctx.cfg.rttCount + RTT_WARMUP),
      );
      const r = await forwardedCall(ctx.cfg.rttCount, ctx.cfg.size, RTT_WARMUP, (n) => (done = n));
      return { metrics: { p50Ms: r.p50, p99Ms: r.p99 }, details: { latencyMs: r } };
    },
  },
  {
    id: 'ceilings',
    name: 'fdatasync',
    title: 'Ceiling: disk, append 4 KiB + fdatasync (same file system as the data dirs)',
    metrics: [
      { key: 'opsPerSec', label: 'fdatasync rate', unit: 'ops/s' },
      { key: 'p99Ms', label: 'fdatasync p99', unit: 'ms' },
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ operations: cfg.fsyncCount, blockBytes: 4096 }),
    async run(ctx) {
      const dir = makeTempDir(ctx.cfg, ctx.scope, 'ferry-bench-fsync-');
      const r = fdatasyncRate(dir, ctx.cfg.fsyncCount, () => {});
      return { metrics: { opsPerSec: r.opsPerSec, p99Ms: r.p99 }, details: { latencyMs: r } };
    },
  },
  {
    id: 'w1',
    name: 'w1',
    title: 'W1 durable queue: 1 producer + 1 consumer at once, every message acked',
    metrics: [
      {
        key: 'msgsPerSec',
        label: 'end to end',
        unit: 'msgs/s',
        target: { op: '>=', value: 100_000 },
      },
      { key: 'p50Ms', label: 'latency p50', unit: 'ms' },
      { key: 'p99Ms', label: 'latency p99', unit: 'ms' },
      { key: 'peakRssMB', label: 'broker peak RSS', unit: 'MB' },
      ...OP_COUNT_METRICS,
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({
      messages: cfg.count,
      size: cfg.size,
      window: cfg.window,
      prefetch: cfg.prefetch,
    }),
    run: (ctx) => runW1(ctx, false),
  },
  {
    id: 'w1-paced',
    name: 'w1-paced',
    title: 'W1-paced: W1 at a steady offered rate',
    metrics: [
      { key: 'msgsPerSec', label: 'achieved rate', unit: 'msgs/s' },
      { key: 'p50Ms', label: 'latency p50', unit: 'ms' },
      { key: 'p99Ms', label: 'latency p99', unit: 'ms', target: { op: '<=', value: 5 } },
      { key: 'maxMs', label: 'latency max', unit: 'ms' },
      { key: 'peakRssMB', label: 'broker peak RSS', unit: 'MB' },
      ...OP_COUNT_METRICS,
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({
      messages: cfg.pacedCount,
      warmupMs: cfg.warmupMs,
      rate: cfg.rate,
      tickMs: cfg.tickMs,
      size: cfg.size,
      window: cfg.window,
      prefetch: cfg.prefetch,
    }),
    run: (ctx) => runW1(ctx, true),
  },
  {
    id: 'w2',
    name: 'w2',
    title: 'W2 backlog: produce with no consumer, then one consumer drains',
    metrics: [
      {
        key: 'produceMsgsPerSec',
        label: 'produce',
        unit: 'msgs/s',
        target: { op: '>=', value: 100_000 },
      },
      {
        key: 'drainMsgsPerSec',
        label: 'drain',
        unit: 'msgs/s',
        target: { op: '>=', value: 100_000 },
      },
      {
        key: 'peakRssMB',
        label: 'broker peak RSS',
        unit: 'MB',
        target: { op: '<=', value: 150 },
      },
      { key: 'diskMB', label: 'data dir after produce', unit: 'MB' },
    ],
    timeoutMs: (cfg) => cfg.w2TimeoutMs,
    shape: (cfg) => ({
      messages: cfg.w2Count,
      size: cfg.size,
      window: cfg.w2Window,
      prefetch: cfg.prefetch,
    }),
    run: runW2,
  },
  {
    id: 'w3',
    name: 'w3',
    title:
      'W3 sync jobs: 1 client, sequential transient calls (not stored) through the broker to 4 workers',
    metrics: W3_METRICS,
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ calls: cfg.w3Count, workers: cfg.w3Workers, size: cfg.size }),
    run: (ctx) => runW3(ctx, false),
  },
  {
    id: 'w3-durable',
    name: 'w3-durable',
    title:
      "W3-durable: as W3, but durable calls (job stored before it runs, result stored and fsync'd before the answer)",
    // W3's metrics without its targets (they are the transient call's).
    metrics: W3_METRICS.map(({ key, label, unit }) => ({ key, label, unit })),
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ calls: cfg.w3Count, workers: cfg.w3Workers, size: cfg.size }),
    run: (ctx) => runW3(ctx, true),
  },
  {
    id: 'w3-submit',
    name: 'w3-submit',
    title: 'W3-submit: durable jobs submitted (window of unconfirmed) and run by 4 workers',
    metrics: [
      { key: 'submitPerSec', label: 'submit (stored)', unit: 'jobs/s' },
      { key: 'completedPerSec', label: 'submitted and done', unit: 'jobs/s' },
      { key: 'peakRssMB', label: 'broker peak RSS', unit: 'MB' },
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({
      jobs: cfg.submitCount,
      workers: cfg.w3Workers,
      size: cfg.size,
      window: cfg.window,
    }),
    run: runW3Submit,
  },
  {
    id: 'fanout',
    name: 'fanout',
    title:
      'Fan-out: 1 publisher, live + durable subscribers (own connections), every message to all',
    metrics: [
      { key: 'publishPerSec', label: 'publish (stored)', unit: 'msgs/s' },
      { key: 'liveRateMin', label: 'slowest live subscriber', unit: 'msgs/s' },
      { key: 'durableRateMin', label: 'slowest durable subscriber', unit: 'msgs/s' },
      { key: 'liveP99Ms', label: 'live latency p99 (worst)', unit: 'ms' },
      { key: 'durableP99Ms', label: 'durable latency p99 (worst)', unit: 'ms' },
      { key: 'peakRssMB', label: 'broker peak RSS', unit: 'MB' },
      { key: 'brokerCpuUsPerPublish', label: 'broker CPU per publish', unit: 'µs' },
      { key: 'commitsPerPublish', label: 'commits (fsyncs)', unit: 'per publish' },
      { key: 'storageCallsPerPublish', label: 'storage calls', unit: 'per publish' },
      { key: 'copiesPerPublish', label: 'stored copies', unit: 'per publish' },
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({
      messages: cfg.fanoutCount,
      live: cfg.fanoutLive,
      durable: cfg.fanoutDurable,
      size: cfg.size,
      window: cfg.window,
    }),
    run: runFanout,
  },
  {
    id: 'snapshot',
    name: 'snapshot',
    title: 'Snapshot: a new subscriber takes every retained key (snapshot: true)',
    metrics: [
      { key: 'snapshotMs', label: 'full snapshot', unit: 'ms' },
      { key: 'keysPerSec', label: 'snapshot rate', unit: 'keys/s' },
      { key: 'retainedPerSec', label: 'retained publishes (setup)', unit: 'msgs/s' },
      { key: 'peakRssMB', label: 'broker peak RSS', unit: 'MB' },
    ],
    timeoutMs: (cfg) => cfg.timeoutMs,
    shape: (cfg) => ({ keys: cfg.snapshotKeys, size: cfg.size, window: cfg.window }),
    run: runSnapshot,
  },
];
