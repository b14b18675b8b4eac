/**
 * Pub/sub load: fan-out (one publisher, live and durable subscribers, each on its own
 * connection) and snapshot (a new subscriber taking the whole retained state).
 *
 * The fan-out runner (`fanoutLoad`) is system-neutral: Ferry (`ferryFanoutTarget`) and the
 * other brokers of `bench:peers` (bench/peers/adapters/*.ts) each provide a `FanoutTarget`,
 * and the same windowed publisher (bench/ferry-load.ts `publishAll`, bodies with send time and
 * sequence number) and the same per-subscriber bookkeeping measure all of them.
 */
import { performance } from 'node:perf_hooks';
import type { FerryClient } from 'ferrymq';
import { HEADER_BYTES, newCounters, publishAll, type LoadCounters } from './ferry-load.js';
import { summarizeLatency, type LatencySummary } from './stats.js';

const FANOUT_TOPIC_PREFIX = 'bench/fanout/';
const SNAPSHOT_TOPIC_PREFIX = 'bench/snap/';
/** Topics the fan-out spreads over (publish order is per topic). */
const FANOUT_TOPICS = 16;
/** Prefetch of Ferry's durable fan-out subscribers. */
const FANOUT_DURABLE_PREFETCH = 1_000;
/**
 * A fan-out run ends this long after the last publish was confirmed and no subscriber received
 * anything new, when some subscriber still lacks messages (lost, or dropped unnoticed), ms.
 */
const DEFAULT_FANOUT_SETTLE_MS = 5_000;
/** The progress callback runs every this-many deliveries. */
const PROGRESS_EVERY_DELIVERIES = 1_024;

export interface FanoutHandlers {
  /**
   * A body delivered to subscriber `sub` (0-based), before the system acks it. Returns true once
   * that subscriber holds every message (it may stop consuming).
   */
  onMessage(sub: number, body: Buffer): boolean;
  /** Subscriber `sub` was dropped, or its subscription or connection ended: nothing more comes. */
  onClosed(sub: number, reason: string): void;
}

/** One publisher and N subscribers on some system, set up and ready to publish. */
export interface FanoutTarget {
  /** Resolves once the server confirmed the publish (what "confirmed" means is per system). */
  publish(body: Buffer): Promise<void>;
  /** Attaches every subscriber; resolves once all of them receive what is published next. */
  startSubscribers(h: FanoutHandlers): Promise<void>;
}

export interface FanoutLoadOptions {
  subscribers: number;
  count: number;
  size: number;
  window: number;
  /** See DEFAULT_FANOUT_SETTLE_MS. */
  settleMs: number;
  /** sent / confirmed: publishes; received: distinct deliveries over all subscribers. */
  counters?: LoadCounters;
  onProgress?: (c: LoadCounters) => void;
}

interface FanoutSubscriberStats {
  /** Distinct messages received. */
  received: number;
  duplicates: number;
  /** Why it ended before having every message (dropped, connection closed), or null. */
  closed: string | null;
  /** From the first publish to this subscriber's last new message, ms (NaN: none). */
  lastAtMs: number;
  latencyMs: LatencySummary;
}

export interface FanoutLoadResult {
  /** First publish → last publish confirmed, ms. */
  publishMs: number;
  /** First publish → the last new message at any subscriber, ms. */
  lastDeliveryMs: number;
  /** Distinct deliveries over all subscribers, and those missing (subscribers × count − them). */
  delivered: number;
  lost: number;
  duplicates: number;
  /** True when the run ended by the idle settle timeout, not by every subscriber finishing. */
  settled: boolean;
  /** Receive − publish time in the body, over every distinct delivery. */
  latencyMs: LatencySummary;
  subscribers: FanoutSubscriberStats[];
}

/** Resolves true after `ms` without progress (`lastProgressAt`), false once `finished` does. */
function idleOrFinished(
  ms: number,
  lastProgressAt: () => number,
  finished: Promise<void>,
): Promise<boolean> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const idle = performance.now() - lastProgressAt();
      if (idle >= ms) resolve(true);
      else timer = setTimeout(check, ms - idle); // a delivery came meanwhile: wait from it
    };
    timer = setTimeout(check, ms);
    void finished.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Attaches the subscribers, publishes `count` bodies (≤ `window` unconfirmed) and waits until
 * every subscriber has all of them or ended (dropped / closed), or — once every publish is
 * confirmed — nothing new arrived for `settleMs`. Each subscriber counts each sequence number
 * once (repeats are duplicates).
 */
export async function fanoutLoad(
  target: FanoutTarget,
  o: FanoutLoadOptions,
): Promise<FanoutLoadResult> {
  const n = o.subscribers;
  const c = o.counters ?? newCounters();
  const seen = Array.from({ length: n }, () => new Uint8Array(o.count));
  const lat = Array.from({ length: n }, () => new Float64Array(o.count));
  const received = new Array<number>(n).fill(0);
  const duplicates = new Array<number>(n).fill(0);
  const lastAt = new Array<number>(n).fill(NaN);
  const closed = new Array<string | null>(n).fill(null);
  const ended = new Array<boolean>(n).fill(false);
  let open = n;
  let lastProgressAt = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  const end = (i: number): void => {
    ended[i] = true;
    if (--open === 0) finish();
  };
  if (n === 0) finish();
  await target.startSubscribers({
    onMessage(i, body) {
      const now = performance.now();
      const seq = body.length >= HEADER_BYTES ? body.readUInt32LE(8) : o.count;
      if (seq >= o.count || seen[i]![seq] === 1) {
        duplicates[i]!++;
        return received[i] === o.count;
      }
      seen[i]![seq] = 1;
      lat[i]![received[i]!] = now - body.readDoubleLE(0);
      received[i]!++;
      lastAt[i] = now;
      lastProgressAt = now;
      c.received++;
      if (o.onProgress && c.received % PROGRESS_EVERY_DELIVERIES === 0) o.onProgress(c);
      if (received[i] !== o.count) return false;
      if (!ended[i]) end(i);
      return true;
    },
    onClosed(i, reason) {
      if (ended[i]) return;
      closed[i] = reason;
      end(i);
    },
  });
  const p = await publishAll(target, {
    count: o.count,
    size: o.size,
    window: o.window,
    counters: c,
  });
  o.onProgress?.(c);
  const settled = await idleOrFinished(
    o.settleMs,
    () => Math.max(lastProgressAt, p.lastConfirmAt),
    finished,
  );
  o.onProgress?.(c);
  let all = 0;
  for (const r of received) all += r;
  const allLat = new Float64Array(all);
  let at = 0;
  for (let i = 0; i < n; i++) {
    allLat.set(lat[i]!.subarray(0, received[i]), at);
    at += received[i]!;
  }
  let lastDelivery = NaN;
  for (const t of lastAt) if (Number.isNaN(lastDelivery) || t > lastDelivery) lastDelivery = t;
  return {
    publishMs: p.lastConfirmAt - p.firstSendAt,
    lastDeliveryMs: lastDelivery - p.firstSendAt,
    delivered: all,
    lost: n * o.count - all,
    duplicates: duplicates.reduce((a, b) => a + b, 0),
    settled,
    latencyMs: summarizeLatency(allLat),
    subscribers: received.map((r, i) => ({
      received: r,
      duplicates: duplicates[i]!,
      closed: closed[i]!,
      lastAtMs: lastAt[i]! - p.firstSendAt,
      latencyMs: summarizeLatency(lat[i]!.subarray(0, r)),
    })),
  };
}

/**
 * Ferry as a fan-out target: the first `live` clients subscribe live, the others durable
 * (`bench-d<i>`, `prefetch`, every message acked), all to
 * `bench/fanout/**`; publishes spread over FANOUT_TOPICS topics, each resolving once the
 * broker committed it.
 */
export function ferryFanoutTarget(
  publisher: FerryClient,
  subscriberClients: FerryClient[],
  live: number,
  prefetch = FANOUT_DURABLE_PREFETCH,
): FanoutTarget {
  let next = 0;
  const pattern = `${FANOUT_TOPIC_PREFIX}**`;
  return {
    async publish(body) {
      await publisher.publish(`${FANOUT_TOPIC_PREFIX}${next++ % FANOUT_TOPICS}`, body);
    },
    async startSubscribers(h) {
      const subs = subscriberClients.map((c, i) =>
        i < live
          ? c.subscribe(pattern)
          : c.subscribe(pattern, { durable: `bench-d${i}`, prefetch }),
      );
      await Promise.all(subs.map((s) => s.ready));
      subs.forEach((sub, i) => {
        void (async () => {
          try {
            for await (const m of sub) {
              const complete = h.onMessage(i, m.body);
              // Not awaited (prefetch keeps messages coming); acks still in flight when the run
              // ends fail as the clients close, which is no error of the run.
              if (i >= live) m.ack().catch(() => {});
              if (complete) break;
            }
            h.onClosed(i, 'subscription ended');
          } catch (err) {
            h.onClosed(i, err instanceof Error ? err.message : String(err));
          }
        })();
      });
    },
  };
}

export interface SubscriberResult {
  kind: 'live' | 'durable';
  received: number;
  dropped: boolean;
  /** From the first publish to this subscriber's last message, ms. */
  lastAtMs: number;
  latencyMs: LatencySummary;
}

export interface FanoutResult {
  publishMs: number;
  subscribers: SubscriberResult[];
}

/**
 * `npm run bench`'s fan-out: publishes `count` messages of `size` bytes with at most `window`
 * unconfirmed, to `live` live and the other durable subscribers (each client its own
 * connection), and waits for every subscriber to get all of them (or be dropped, or the
 * settle timeout).
 */
export async function fanout(
  publisher: FerryClient,
  subscriberClients: FerryClient[],
  live: number,
  count: number,
  size: number,
  window: number,
  onProgress: (published: number, delivered: number) => void,
): Promise<FanoutResult> {
  const r = await fanoutLoad(ferryFanoutTarget(publisher, subscriberClients, live), {
    subscribers: subscriberClients.length,
    count,
    size,
    window,
    settleMs: DEFAULT_FANOUT_SETTLE_MS,
    onProgress: (c) => onProgress(c.confirmed, c.received),
  });
  return {
    publishMs: r.publishMs,
    subscribers: r.subscribers.map((s, i) => ({
      kind: i < live ? 'live' : 'durable',
      received: s.received,
      dropped: s.closed !== null,
      lastAtMs: s.lastAtMs,
      latencyMs: s.latencyMs,
    })),
  };
}

/** Stores `keys` retained values (at most `window` unconfirmed). */
export async function fillRetained(
  publisher: FerryClient,
  keys: number,
  size: number,
  window: number,
  onProgress: (n: number) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  let inflight = 0;
  const value = Buffer.alloc(size, 0x62);
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (inflight < window && next < keys) {
        const i = next++;
        inflight++;
        publisher.publish(`${SNAPSHOT_TOPIC_PREFIX}${i}`, value, { retain: true }).then(() => {
          inflight--;
          done++;
          if ((done & 1023) === 0) onProgress(done);
          if (done === keys) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
}

/** A new subscriber with `snapshot: true`: ms until it holds all `keys` retained values. */
export async function takeSnapshot(
  client: FerryClient,
  keys: number,
  onProgress: (n: number) => void,
): Promise<{ snapshotMs: number; firstMs: number }> {
  const started = performance.now();
  let first = 0;
  let n = 0;
  const sub = client.subscribe(SNAPSHOT_TOPIC_PREFIX, { snapshot: true });
  for await (const m of sub) {
    if (!m.snapshot) continue;
    if (n === 0) first = performance.now() - started;
    n++;
    if ((n & 1023) === 0) onProgress(n);
    if (n >= keys) break;
  }
  return { snapshotMs: performance.now() - started, firstMs: first };
}
