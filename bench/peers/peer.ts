/**
 * What every peer (RabbitMQ, JetStream, BullMQ) provides, and the load loops shared by all of
 * them, so the three run exactly the same W1 / W2 / W3 / W4 code (W3 and W4 also for Ferry). Bodies carry their send time and
 * sequence number in Ferry's bench layout (bench/ferry-load.ts), so the consumer measures
 * end-to-end latency and counts each message once.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { diskUsage, MemSampler, readMem } from '../broker.js';
import {
  FLAG_WARMUP,
  HEADER_BYTES,
  newCounters,
  publishAll,
  type LoadCounters,
} from '../ferry-load.js';
import { fanoutLoad, type FanoutTarget } from '../pubsub-load.js';
import { summarizeLatency } from '../stats.js';
import { startProgress, type RunOutput, type Scope } from '../workloads.js';
import { packageVersion } from './clients.js';
import { W3_CALL_TIMEOUT_MS, type PeerId, type PeersConfig } from './config.js';

/** A server that answered the probe: its version and durability settings as reported. */
export interface ServerInfo {
  version: string;
  /** Durability in effect, one line, shown next to the numbers. */
  durability: string;
  /** The same in a few words, in the tables' durability column. */
  tag: string;
  settings: Record<string, unknown>;
}

interface ConsumerHandlers {
  /** Called with each delivered body, before the peer acks it. */
  onMessage(body: Buffer): void;
  /** Called once the peer acked (sent the ack, or completed the job) for one message. */
  onAcked(): void;
}

/** One clean queue (or stream, or BullMQ queue) on a peer; deleted again when the scope closes. */
export interface PeerQueue {
  /** Resolves once the server confirmed it stored the message. */
  publish(body: Buffer): Promise<void>;
  startConsumer(prefetch: number, handlers: ConsumerHandlers): Promise<void>;
}

/** W4: every subscriber keeps its own stored copy and acks it, or only online subscribers get it. */
export type FanoutMode = 'durable' | 'live';
export const FANOUT_MODES: readonly FanoutMode[] = ['durable', 'live'];

/** What a peer runs in one W4 mode. */
export interface FanoutFlavour {
  /** The row label: exactly what ran (e.g. "NATS core", "Redis pub/sub"). */
  label: string;
  /** What a confirmed publish and a delivery promise here, one line. */
  durability: string;
  /** The same in a few words, in the tables' durability column. */
  tag: string;
  /** The npm client package used. */
  client: string;
}

export interface FanoutOpenOptions {
  name: string;
  mode: FanoutMode;
  subscribers: number;
  /** Durable mode: unacked messages a subscriber may hold. */
  prefetch: number;
}

/** Request/reply through the peer to `workers` workers that answer with a same-size result. */
export interface PeerRpc {
  call(params: Buffer): Promise<Buffer>;
}

/**
 * W3: a transient call (a worker answers, the call is not stored on the way) or a durable one
 * (a job queue: the job is stored before a worker gets it, and the call returns once the server
 * confirmed storing it and the result came back).
 */
export type CallKind = 'transient' | 'durable';
export const CALL_KINDS: readonly CallKind[] = ['transient', 'durable'];

/** What a peer runs for one kind of W3 call. */
interface RpcFlavour {
  /** The row label: exactly what answers the calls (e.g. "NATS core", not JetStream). */
  label: string;
  /** How a call goes through this peer and what is stored, one line. */
  description: string;
  /** What is stored, in a few words (the tables' durability column). */
  tag: string;
}

export interface RpcOpenOptions {
  name: string;
  kind: CallKind;
  workers: number;
}

export interface Peer {
  id: PeerId;
  name: string;
  /** /proc/<pid>/comm of the server process whose RSS is reported. */
  processName: string;
  /** The server's data folder, for disk used by the W2 backlog (null: nothing on disk). */
  dataDir: string | null;
  /** Throws when the server is unreachable. */
  probe(): Promise<ServerInfo>;
  openQueue(scope: Scope, name: string): Promise<PeerQueue>;
  /** W3 per kind of call: what runs, or why nothing does (recorded as a skip). */
  rpc: Record<CallKind, RpcFlavour | { skip: string }>;
  /** W3: `workers` workers, each on a connection (or channel) of its own, and a caller. */
  openRpc(scope: Scope, o: RpcOpenOptions): Promise<PeerRpc>;
  /** W4 per mode: what runs, or why nothing does (recorded as a skip). */
  fanout: Record<FanoutMode, FanoutFlavour | { skip: string }>;
  /**
   * W4: one publisher and `subscribers` subscribers, each on a connection of its own; whatever
   * it creates on the server is deleted before and when the scope closes.
   */
  openFanout(scope: Scope, o: FanoutOpenOptions): Promise<FanoutTarget>;
}

/** A peer as its adapter builds it; its id and name come from load-peer.ts's table. */
export type AdapterPeer = Omit<Peer, 'id' | 'name'>;

/**
 * What each adapter module, adapters/<id>.ts, exports. The adapters are the only code that
 * imports a peer's client; bench/peers/tsconfig.json compiles them once `npm run bench:peers`
 * installed the clients, and load-peer.ts imports one only when its peer answers.
 */
export interface PeerAdapter {
  createPeer(cfg: PeersConfig): AdapterPeer;
}

/**
 * The pid of the process whose comm is `name`, or null; of several (e.g. a `rabbitmqctl` next to
 * the server, also `beam.smp`), the one with the largest RSS.
 */
export function findPid(name: string): number | null {
  let best: { pid: number; rssKiB: number } | null = null;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== name) continue;
    } catch {
      continue; // gone
    }
    const rssKiB = readMem(Number(entry))?.rssKiB ?? 0;
    if (!best || rssKiB > best.rssKiB) best = { pid: Number(entry), rssKiB };
  }
  return best?.pid ?? null;
}

export function samplerFor(scope: Scope, processName: string): MemSampler | null {
  const pid = findPid(processName);
  if (pid === null) return null;
  const mem = new MemSampler(pid);
  mem.start();
  scope.add(() => mem.stop());
  return mem;
}

function allocatedBytes(dir: string | null): number {
  if (dir === null) return NaN;
  try {
    return diskUsage(dir).allocated;
  } catch {
    return NaN;
  }
}

interface DrainResult {
  startedAt: number;
  firstReceiveAt: number;
  lastAckAt: number;
  duplicates: number;
  latencyMs: Float64Array;
}

/** Starts the consumer and resolves once `count` distinct messages were received and acked. */
async function consumeAll(
  q: PeerQueue,
  o: { count: number; prefetch: number; recordLatency: boolean; counters: LoadCounters },
): Promise<DrainResult> {
  const c = o.counters;
  const seen = new Uint8Array(o.count);
  const lat = new Float64Array(o.recordLatency ? o.count : 0);
  let nLat = 0;
  let duplicates = 0;
  let firstReceiveAt = NaN;
  let lastAckAt = NaN;
  const startedAt = performance.now();
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  await q.startConsumer(o.prefetch, {
    onMessage(body) {
      const now = performance.now();
      if (c.received === 0) firstReceiveAt = now;
      const seq = body.length >= HEADER_BYTES ? body.readUInt32LE(8) : o.count;
      if (seq >= o.count || seen[seq] === 1) {
        duplicates++;
        return;
      }
      seen[seq] = 1;
      c.received++;
      if (o.recordLatency && (body.readUInt32LE(12) & FLAG_WARMUP) === 0) {
        lat[nLat++] = now - body.readDoubleLE(0);
      }
    },
    onAcked() {
      c.acked++;
      if (c.acked >= o.count) {
        lastAckAt = performance.now();
        done();
      }
    },
  });
  await finished;
  return { startedAt, firstReceiveAt, lastAckAt, duplicates, latencyMs: lat.subarray(0, nLat) };
}

export interface PeerRunOptions {
  scope: Scope;
  peer: Peer;
  queue: string;
  count: number;
  size: number;
  window: number;
  prefetch: number;
  counters?: LoadCounters;
  /** W1-paced: offered rate and warm-up (its messages are sent first and not measured). */
  pace?: { ratePerSec: number; tickMs: number; warmupCount: number };
  /** Called with the live counters and server RSS for the progress line. */
  onStart?: (counters: LoadCounters, mem: MemSampler | null) => void;
}

/** W1 on a peer: producer and consumer at once; the same metric keys as Ferry's W1. */
export async function peerW1(o: PeerRunOptions): Promise<{
  metrics: Record<string, number>;
  details: Record<string, unknown>;
}> {
  const q = await o.peer.openQueue(o.scope, o.queue);
  const mem = samplerFor(o.scope, o.peer.processName);
  const counters = o.counters ?? newCounters();
  o.onStart?.(counters, mem);
  const total = o.count + (o.pace?.warmupCount ?? 0);
  const consuming = consumeAll(q, {
    count: total,
    prefetch: o.prefetch,
    recordLatency: true,
    counters,
  });
  const p = await publishAll(q, {
    count: total,
    size: o.size,
    window: o.window,
    counters,
    ...(o.pace ?? {}),
  });
  const r = await consuming;
  mem?.sample();
  const lat = summarizeLatency(r.latencyMs);
  const elapsedMs = r.lastAckAt - p.firstSendAt;
  return {
    metrics: {
      msgsPerSec: (total * 1000) / elapsedMs,
      p50Ms: lat.p50,
      p99Ms: lat.p99,
      maxMs: lat.max,
      peakRssMB: mem ? mem.peakRssKiB / 1024 : NaN,
    },
    details: {
      messages: total,
      warmupMessages: total - o.count,
      elapsedMs,
      produceConfirmedPerSec: (total * 1000) / (p.lastConfirmAt - p.firstSendAt),
      ...(o.pace ? { offeredRate: o.pace.ratePerSec, windowStalls: p.windowStalls } : {}),
      latencyMs: lat,
      duplicates: r.duplicates,
      serverPid: mem ? findPid(o.peer.processName) : null,
    },
  };
}

/** W2 on a peer: publish the whole backlog, then one consumer drains it. */
export async function peerW2(o: PeerRunOptions & { onPhase?: (phase: string) => void }): Promise<{
  metrics: Record<string, number>;
  details: Record<string, unknown>;
}> {
  const q = await o.peer.openQueue(o.scope, o.queue);
  const mem = samplerFor(o.scope, o.peer.processName);
  const counters = o.counters ?? newCounters();
  o.onStart?.(counters, mem);
  const disk0 = allocatedBytes(o.peer.dataDir);
  mem?.takePhasePeak();
  const p = await publishAll(q, { count: o.count, size: o.size, window: o.window, counters });
  const produceMs = p.lastConfirmAt - p.firstSendAt;
  const producePeakKiB = mem ? mem.takePhasePeak() : NaN;
  const disk1 = allocatedBytes(o.peer.dataDir);
  o.onPhase?.('drain');
  const r = await consumeAll(q, {
    count: o.count,
    prefetch: o.prefetch,
    recordLatency: false,
    counters,
  });
  const drainMs = r.lastAckAt - r.startedAt;
  const drainPeakKiB = mem ? mem.takePhasePeak() : NaN;
  return {
    metrics: {
      produceMsgsPerSec: (o.count * 1000) / produceMs,
      drainMsgsPerSec: (o.count * 1000) / drainMs,
      peakRssMB: Math.max(producePeakKiB, drainPeakKiB) / 1024,
      diskMB: (disk1 - disk0) / (1024 * 1024),
    },
    details: {
      messages: o.count,
      produceSeconds: produceMs / 1000,
      drainSeconds: drainMs / 1000,
      firstDeliveryAfterMs: r.firstReceiveAt - r.startedAt,
      producePeakRssMB: producePeakKiB / 1024,
      drainPeakRssMB: drainPeakKiB / 1024,
      diskAllocatedDeltaBytes: disk1 - disk0,
      diskDir: o.peer.dataDir,
      duplicates: r.duplicates,
    },
  };
}

export interface FanoutRunOptions {
  scope: Scope;
  label: string;
  target: FanoutTarget;
  /** The server process's memory sampler, and its name for the progress line. */
  mem: MemSampler | null;
  memName: string;
  subscribers: number;
  count: number;
  size: number;
  window: number;
  settleMs: number;
}

/** W4 on any system (Ferry too): runs the fan-out once; the same metric keys for everyone. */
export async function fanoutMeasurement(o: FanoutRunOptions): Promise<RunOutput> {
  const counters = newCounters();
  const expected = o.count * o.subscribers;
  startProgress(
    o.scope,
    o.label,
    () =>
      `confirmed ${counters.confirmed.toLocaleString('en-US')}/${o.count.toLocaleString('en-US')}, ` +
      `delivered ${counters.received.toLocaleString('en-US')}/${expected.toLocaleString('en-US')}` +
      (o.mem ? `, ${o.memName} RSS ${(o.mem.lastRssKiB / 1024).toFixed(0)} MB` : ''),
    () => counters.received / expected,
  );
  const r = await fanoutLoad(o.target, {
    subscribers: o.subscribers,
    count: o.count,
    size: o.size,
    window: o.window,
    settleMs: o.settleMs,
    counters,
  });
  o.mem?.sample();
  // A subscriber that lost messages is as slow as its own count over its own time.
  const subRates = r.subscribers.map((s) =>
    s.received > 0 ? (s.received * 1000) / s.lastAtMs : 0,
  );
  return {
    metrics: {
      publishPerSec: (o.count * 1000) / r.publishMs,
      deliveriesPerSec: (r.delivered * 1000) / r.lastDeliveryMs,
      slowestSubPerSec: subRates.length > 0 ? Math.min(...subRates) : NaN,
      p50Ms: r.latencyMs.p50,
      p99Ms: r.latencyMs.p99,
      peakRssMB: o.mem ? o.mem.peakRssKiB / 1024 : NaN,
      lost: r.lost,
    },
    details: {
      messages: o.count,
      subscribers: o.subscribers,
      publishMs: r.publishMs,
      lastDeliveryMs: r.lastDeliveryMs,
      delivered: r.delivered,
      lost: r.lost,
      duplicates: r.duplicates,
      endedBySettleTimeout: r.settled,
      closedSubscribers: r.subscribers.filter((s) => s.closed !== null).length,
      latencyMs: r.latencyMs,
      perSubscriber: r.subscribers.map((s) => ({
        received: s.received,
        duplicates: s.duplicates,
        closed: s.closed,
        lastAtMs: s.lastAtMs,
        p50Ms: s.latencyMs.p50,
        p99Ms: s.latencyMs.p99,
      })),
    },
  };
}

/** W4 on a peer, in the mode's flavour (see Peer.fanout). */
export async function peerW4(
  o: Omit<FanoutRunOptions, 'target' | 'mem' | 'memName'> & {
    peer: Peer;
    flavour: FanoutFlavour;
    mode: FanoutMode;
    prefetch: number;
  },
): Promise<RunOutput> {
  const target = await o.peer.openFanout(o.scope, {
    name: `ferry-bench-w4-${o.mode}`,
    mode: o.mode,
    subscribers: o.subscribers,
    prefetch: o.prefetch,
  });
  const mem = samplerFor(o.scope, o.peer.processName);
  const r = await fanoutMeasurement({ ...o, target, mem, memName: o.peer.processName });
  r.details['client'] = `${o.flavour.client} ${packageVersion(o.flavour.client)}`;
  r.details['serverPid'] = mem ? findPid(o.peer.processName) : null;
  return r;
}

export interface SequentialCallsOptions {
  calls: number;
  size: number;
  onProgress: (done: number) => void;
  /**
   * Called right before the first measured call and right after the last one (outside the
   * timed part), e.g. to take the broker's counters around exactly the measured calls.
   */
  measured?: { start(): Promise<void>; end(): Promise<void> };
}

/** W3 timing loop, shared by the peers and Ferry: `calls` sequential calls, 1 warm-up each 10. */
export async function sequentialCalls(
  call: (params: Buffer) => Promise<Buffer>,
  o: SequentialCallsOptions,
): Promise<{ metrics: Record<string, number>; details: Record<string, unknown> }> {
  const warmup = w3TotalCalls(o.calls) - o.calls;
  const samples = new Float64Array(o.calls);
  const params = Buffer.alloc(o.size, 0x70);
  let badReplies = 0;
  let t0 = NaN;
  for (let i = 0; i < warmup + o.calls; i++) {
    if (i === warmup) {
      await o.measured?.start();
      t0 = performance.now();
    }
    const start = performance.now();
    const reply = await call(params);
    if (reply.length !== o.size) badReplies++;
    if (i >= warmup) samples[i - warmup] = performance.now() - start;
    o.onProgress(i);
  }
  const elapsedMs = performance.now() - t0;
  await o.measured?.end();
  if (badReplies > 0) throw new Error(`${badReplies} replies of the wrong size`);
  const lat = summarizeLatency(samples);
  return {
    metrics: { callsPerSec: (o.calls * 1000) / elapsedMs, p50Ms: lat.p50, p99Ms: lat.p99 },
    details: { calls: o.calls, warmupCalls: warmup, elapsedMs, latencyMs: lat },
  };
}

/** W3 runs this fraction of its call count, unmeasured, first. */
const W3_WARMUP_DIVISOR = 10;

/** W3's calls including the warm-up (what the progress bar counts). */
export function w3TotalCalls(calls: number): number {
  return calls + Math.max(1, Math.floor(calls / W3_WARMUP_DIVISOR));
}

/** The result a W3 worker returns: `size` bytes. */
export function w3Result(size: number): Buffer {
  return Buffer.alloc(size, 0x72);
}

/**
 * Replies matched to their calls by an id (a correlation id, or the end of a reply subject):
 * each call waits for its own, at most W3_CALL_TIMEOUT_MS.
 */
export class PendingReplies {
  private nextId = 0;
  private readonly waiting = new Map<string, (body: Buffer) => void>();

  /** A new id, and the reply that `settle(id, …)` will resolve. */
  expect(): { id: string; reply: Promise<Buffer> } {
    const id = String(this.nextId++);
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no reply to call ${id} in ${W3_CALL_TIMEOUT_MS} ms`));
      }, W3_CALL_TIMEOUT_MS);
      this.waiting.set(id, (body) => {
        clearTimeout(timer);
        resolve(body);
      });
    });
    return { id, reply };
  }

  /** Resolves the call waiting for `id`; a reply nobody waits for (any more) is dropped. */
  settle(id: string, body: Buffer): void {
    this.waiting.get(id)?.(body);
    this.waiting.delete(id);
  }
}
