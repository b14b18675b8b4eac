/**
 * Producer and consumer loops over the Ferry SDK.
 *
 * Every body carries its send time (performance.now(), same process as the consumer, so the
 * clocks match) and a sequence number, so the consumer measures end-to-end latency and checks
 * that every message arrived exactly once.
 *
 * Body layout (little endian): [0,8) send time f64 ms · [8,12) seq u32 · [12,16) flags u32
 * (1 = warm-up, not measured) · [16,24) scheduled send time f64 ms (paced runs; NaN otherwise)
 * · then filler up to the message size.
 */
import { performance } from 'node:perf_hooks';
import type { FerryClient } from 'ferrymq';

export const HEADER_BYTES = 24;
export const FLAG_WARMUP = 1;

/** Live counters, read by the progress line. */
export interface LoadCounters {
  sent: number;
  confirmed: number;
  received: number;
  acked: number;
}

export function newCounters(): LoadCounters {
  return { sent: 0, confirmed: 0, received: 0, acked: 0 };
}

const FILLER = 0x78; // 'x'

function makeBody(size: number, seq: number, sentAt: number, scheduled: number, flags: number) {
  const b = Buffer.allocUnsafe(size);
  b.writeDoubleLE(sentAt, 0);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(flags, 12);
  b.writeDoubleLE(scheduled, 16);
  b.fill(FILLER, HEADER_BYTES);
  return b;
}

export interface ProduceOptions extends PaceOptions {
  queue: string;
}

/** Count, size, window and optional pacing of a producer loop (any system's send). */
export interface PaceOptions {
  count: number;
  size: number;
  /** Most sends not yet confirmed by the broker. */
  window: number;
  /** Offered rate, msgs/s; absent = as fast as the window allows. */
  ratePerSec?: number;
  /** Paced runs: timer tick, ms. */
  tickMs?: number;
  /** The first this-many messages are flagged warm-up (paced runs). */
  warmupCount?: number;
  counters: LoadCounters;
}

export interface ProduceResult {
  /** performance.now() of the first send() call. */
  firstSendAt: number;
  /** performance.now() when the last send promise resolved. */
  lastConfirmAt: number;
  confirmed: number;
  /** Paced runs: times a tick could not send all that was due because the window was full. */
  windowStalls: number;
}

/**
 * Sends `count` messages; a message counts as sent when its send() promise resolved (the broker
 * stored it). At most `window` are unconfirmed at any time. Rejects on the first failed send.
 */
export function produce(client: FerryClient, o: ProduceOptions): Promise<ProduceResult> {
  return produceWith((body) => client.send(o.queue, body), o);
}

/**
 * The producer loop of every system in the benches: `send` resolves once the system confirmed
 * it stored the body. At most `window` are unconfirmed at any time; paced when `ratePerSec` is
 * set. Rejects on the first failed send.
 */
export function produceWith(
  send: (body: Buffer) => Promise<unknown>,
  o: PaceOptions,
): Promise<ProduceResult> {
  return new Promise<ProduceResult>((resolve, reject) => {
    const c = o.counters;
    const warmupCount = o.warmupCount ?? 0;
    let next = 0;
    let inflight = 0;
    let firstSendAt = NaN;
    let windowStalls = 0;
    let failed = false;
    const paced = o.ratePerSec !== undefined && o.ratePerSec > 0;

    const onOk = (): void => {
      inflight--;
      c.confirmed++;
      if (c.confirmed === o.count) {
        resolve({
          firstSendAt,
          lastConfirmAt: performance.now(),
          confirmed: c.confirmed,
          windowStalls,
        });
        return;
      }
      if (!paced) fill();
    };
    const onErr = (err: unknown): void => {
      if (failed) return;
      failed = true;
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const sendOne = (scheduled: number): void => {
      const seq = next++;
      const now = performance.now();
      if (seq === 0) firstSendAt = now;
      const flags = seq < warmupCount ? FLAG_WARMUP : 0;
      const body = makeBody(o.size, seq, now, scheduled, flags);
      inflight++;
      c.sent++;
      send(body).then(onOk, onErr);
    };
    // Sends made in one tick are batched by the SDK into one request.
    const fill = (): void => {
      while (inflight < o.window && next < o.count && !failed) sendOne(NaN);
    };

    if (!paced) {
      fill();
      return;
    }
    const rate = o.ratePerSec!;
    const tickMs = o.tickMs ?? 1;
    const start = performance.now();
    const tick = (): void => {
      if (failed || next >= o.count) return;
      // Catch up on what is due by now, so the offered rate holds even when timers run late.
      const due = Math.min(o.count, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (next < due) {
        if (inflight >= o.window) {
          windowStalls++;
          break;
        }
        sendOne(start + (next * 1000) / rate);
      }
      if (next < o.count) setTimeout(tick, tickMs);
    };
    tick();
  });
}

export interface ConsumeOptions {
  queue: string;
  count: number;
  prefetch: number;
  /** Record end-to-end latency per message (W1); off for the backlog drain. */
  recordLatency: boolean;
  counters: LoadCounters;
}

export interface ConsumeResult {
  /** performance.now() when consume() was called. */
  startedAt: number;
  firstReceiveAt: number;
  lastReceiveAt: number;
  /** performance.now() when the last ack was confirmed by the broker. */
  lastAckAt: number;
  received: number;
  duplicates: number;
  ackFailures: number;
  /** Receive time − send time, ms, of each measured (non warm-up) message. */
  latencyMs: Float64Array;
  /** Receive time − scheduled send time, ms (paced runs; includes time queued in the window). */
  latencyFromScheduleMs: Float64Array;
}

/**
 * Receives `count` distinct messages with the given prefetch, acking every one individually
 * (msg.ack(), not awaited one by one: the SDK batches the acks of one tick), then waits until
 * every ack is confirmed and cancels the consumer.
 */
export async function consume(client: FerryClient, o: ConsumeOptions): Promise<ConsumeResult> {
  const c = o.counters;
  const seen = new Uint8Array(o.count);
  const lat = o.recordLatency ? new Float64Array(o.count) : new Float64Array(0);
  const latSched = o.recordLatency ? new Float64Array(o.count) : new Float64Array(0);
  let nLat = 0;
  let nSched = 0;
  let duplicates = 0;
  let ackFailures = 0;
  let ackPending = 0;
  let firstReceiveAt = NaN;
  let lastReceiveAt = NaN;
  let lastAckAt = NaN;
  let acksDone: (() => void) | undefined;
  let firstAckError: unknown;
  const startedAt = performance.now();
  const onAck = (): void => {
    ackPending--;
    c.acked++;
    lastAckAt = performance.now();
    if (ackPending === 0) acksDone?.();
  };
  const onAckErr = (err: unknown): void => {
    ackPending--;
    ackFailures++;
    firstAckError ??= err;
    if (ackPending === 0) acksDone?.();
  };
  const consumer = client.consume(o.queue, { prefetch: o.prefetch });
  for await (const msg of consumer) {
    const now = performance.now();
    if (c.received === 0) firstReceiveAt = now;
    lastReceiveAt = now;
    const body = msg.body;
    const seq = body.length >= HEADER_BYTES ? body.readUInt32LE(8) : o.count;
    if (seq >= o.count || seen[seq] === 1) {
      duplicates++;
    } else {
      seen[seq] = 1;
      c.received++;
      if (o.recordLatency && (body.readUInt32LE(12) & FLAG_WARMUP) === 0) {
        lat[nLat++] = now - body.readDoubleLE(0);
        const sched = body.readDoubleLE(16);
        if (!Number.isNaN(sched)) latSched[nSched++] = now - sched;
      }
    }
    ackPending++;
    msg.ack().then(onAck, onAckErr);
    if (c.received === o.count) break;
  }
  if (ackPending > 0) await new Promise<void>((r) => (acksDone = r));
  if (c.received < o.count) {
    throw new Error(`consumer ended after ${c.received} of ${o.count} messages`);
  }
  if (ackFailures > 0) {
    throw new Error(`${ackFailures} acks failed; first: ${String(firstAckError)}`);
  }
  return {
    startedAt,
    firstReceiveAt,
    lastReceiveAt,
    lastAckAt,
    received: c.received,
    duplicates,
    ackFailures,
    latencyMs: lat.subarray(0, nLat),
    latencyFromScheduleMs: latSched.subarray(0, nSched),
  };
}

/** Anything that publishes one body and resolves once the server confirmed it. */
export interface Publisher {
  publish(body: Buffer): Promise<void>;
}

/**
 * Publishes `count` bodies (seq 0…count−1, send time stamped) with at most `window` unconfirmed,
 * paced when `ratePerSec` is set: the producer loop above, for any system. Used by the peers
 * (W1, W1-paced, W2) and by every system's fan-out (bench/pubsub-load.ts).
 */
export function publishAll(q: Publisher, o: PaceOptions): Promise<ProduceResult> {
  return produceWith((body) => q.publish(body), o);
}
