/**
 * Pub/sub load: fan-out (one publisher, live and durable subscribers, each on its own
 * connection) and snapshot (a new subscriber taking the whole retained state).
 */
import { performance } from 'node:perf_hooks';
import type { FerryClient } from '../src/client/client.js';
import type { TopicSubscription } from '../src/client/topic-client.js';
import { summarizeLatency, type LatencySummary } from './stats.js';

/** Bytes of the body that carry the publish time (a double, ms since the time origin). */
const STAMP_BYTES = 8;
const FANOUT_TOPIC_PREFIX = 'bench/fanout/';
const SNAPSHOT_TOPIC_PREFIX = 'bench/snap/';
/** Topics the fan-out spreads over (publish order is per topic). */
const FANOUT_TOPICS = 16;

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

function body(size: number): Buffer {
  const b = Buffer.alloc(Math.max(size, STAMP_BYTES), 0x61);
  b.writeDoubleBE(performance.now(), 0);
  return b;
}

async function drain(
  sub: TopicSubscription,
  kind: 'live' | 'durable',
  count: number,
  startedAt: () => number,
  onMessage: () => void,
): Promise<SubscriberResult> {
  const latencies = new Float64Array(count);
  let received = 0;
  let dropped = false;
  let lastAt = 0;
  try {
    for await (const m of sub) {
      const now = performance.now();
      latencies[received] = now - m.body.readDoubleBE(0);
      received++;
      lastAt = now;
      onMessage();
      if (kind === 'durable') void m.ack();
      if (received >= count) break;
    }
  } catch {
    dropped = true;
  }
  return {
    kind,
    received,
    dropped,
    lastAtMs: lastAt - startedAt(),
    latencyMs: summarizeLatency(latencies.subarray(0, received)),
  };
}

/**
 * Publishes `count` messages of `size` bytes with at most `window` unconfirmed, to `live` live
 * and `durable` durable subscribers (each client its own connection), and waits for every
 * subscriber to get all of them (or be dropped).
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
  let started = 0;
  let delivered = 0;
  let published = 0;
  const subs: { sub: TopicSubscription; kind: 'live' | 'durable' }[] = [];
  subscriberClients.forEach((c, i) => {
    const kind = i < live ? 'live' : 'durable';
    const sub =
      kind === 'live'
        ? c.subscribe(`${FANOUT_TOPIC_PREFIX}**`)
        : c.subscribe(`${FANOUT_TOPIC_PREFIX}**`, { durable: `bench-d${i}`, prefetch: 1_000 });
    subs.push({ sub, kind });
  });
  await Promise.all(subs.map((s) => s.sub.ready));
  const results = subs.map((s) =>
    drain(
      s.sub,
      s.kind,
      count,
      () => started,
      () => {
        delivered++;
        if ((delivered & 1023) === 0) onProgress(published, delivered);
      },
    ),
  );
  started = performance.now();
  let inflight = 0;
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (inflight < window && next < count) {
        const i = next++;
        inflight++;
        publisher.publish(`${FANOUT_TOPIC_PREFIX}${i % FANOUT_TOPICS}`, body(size)).then(() => {
          inflight--;
          published++;
          if (published === count) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  const publishMs = performance.now() - started;
  onProgress(published, delivered);
  return { publishMs, subscribers: await Promise.all(results) };
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
