/**
 * The soak: a real broker process (bench/broker.ts) under a steady queue load — a producer
 * paced at a fixed rate and an acking consumer — for minutes, with the broker's RSS and the
 * end-to-end latency (send to delivery) sampled every few seconds. The rate is half the
 * maximum measured first for a few seconds (closed loop), or given. Fails on any error
 * (refused send or ack, message not delivered by the end) or when RSS grows past a bound
 * between the first and the second half of the run. `npm run soak` runs it from main.ts;
 * test/integration/soak.test.ts runs a short one.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type FerryClient } from 'ferrymq';
import { readMem, startBroker, type BrokerChild } from '../broker.js';
import { summarizeLatency } from '../stats.js';
import { tmpDir } from '../../test/helpers/broker.js';

const QUEUE = 'soak';
const BODY_BYTES = 256;
const PREFETCH = 200;
/** Closed loop while measuring the maximum: sends in flight. */
const MEASURE_WINDOW = 256;
/** The paced producer sends what is due every this many ms. */
const PACE_MS = 10;
/** At most this many seconds of sends in flight: past it the producer is behind, not piling up. */
const MAX_INFLIGHT_SECONDS = 5;
const DRAIN_TIMEOUT_MS = 60_000;
const DRAIN_POLL_MS = 50;
const KIB_PER_MIB = 1024;

export interface SoakOptions {
  durationMs: number;
  /** Messages per second; undefined = half the maximum measured for `measureMs`. */
  rate: number | undefined;
  measureMs: number;
  intervalMs: number;
  /** Fail when the largest RSS of the second half exceeds the first half's by more. */
  maxRssGrowthMiB: number;
  log?: (line: string) => void;
}

/** One sampling interval. */
export interface SoakSample {
  atS: number;
  rssMiB: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Sends not issued because too many were in flight (the producer fell behind). */
  behind: number;
}

export interface SoakResult {
  maxRate: number | undefined;
  rate: number;
  samples: SoakSample[];
  sent: number;
  delivered: number;
  errors: number;
  behind: number;
  undelivered: number;
  rssMinMiB: number;
  rssMaxMiB: number;
  rssGrowthMiB: number;
  p50Ms: number;
  p99Ms: number;
  failed: boolean;
  /** Why it failed, if it did. */
  reasons: string[];
}

function body(): Buffer {
  const b = Buffer.alloc(BODY_BYTES);
  b.writeDoubleLE(performance.now(), 0);
  return b;
}

/** The queue load and its counters. */
class SoakLoad {
  sent = 0;
  accepted = 0;
  delivered = 0;
  errors = 0;
  behind = 0;
  inflight = 0;
  /** Latencies (ms) of the current interval, and of the whole steady phase. */
  interval: number[] = [];
  readonly all: number[] = [];
  recording = false;
  private consuming: Promise<void> | undefined;

  constructor(
    private readonly producer: FerryClient,
    private readonly consumer: FerryClient,
  ) {}

  startConsumer(): void {
    this.consuming = (async () => {
      for await (const m of this.consumer.consume(QUEUE, { prefetch: PREFETCH })) {
        const latency = performance.now() - m.body.readDoubleLE(0);
        this.delivered++;
        if (this.recording) {
          this.interval.push(latency);
          this.all.push(latency);
        }
        m.ack().catch(() => {
          this.errors++;
        });
      }
    })().catch(() => {
      this.errors++;
    });
  }

  send(): void {
    this.sent++;
    this.inflight++;
    this.producer.send(QUEUE, body()).then(
      () => {
        this.inflight--;
        this.accepted++;
      },
      () => {
        this.inflight--;
        this.errors++;
      },
    );
  }

  async stopConsumer(): Promise<void> {
    await this.consuming;
  }
}

/** Closed loop for `ms`: as many sends as the broker takes; returns deliveries per second. */
async function measureMaxRate(load: SoakLoad, ms: number): Promise<number> {
  const start = performance.now();
  const before = load.delivered;
  while (performance.now() - start < ms) {
    while (load.inflight < MEASURE_WINDOW) load.send();
    await new Promise((r) => setImmediate(r));
  }
  const rate = ((load.delivered - before) * 1000) / (performance.now() - start);
  return Math.max(1, Math.round(rate));
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => {});
  const dataDir = tmpDir('ferry-soak-');
  let broker: BrokerChild | undefined;
  let producer: FerryClient | undefined;
  let consumer: FerryClient | undefined;
  try {
    broker = await startBroker({ dataDir, sync: 'always' });
    producer = await connect(broker.endpoint, { requestTimeoutMs: 30_000 });
    consumer = await connect(broker.endpoint, { requestTimeoutMs: 30_000 });
    const load = new SoakLoad(producer, consumer);
    load.startConsumer();

    let maxRate: number | undefined;
    let rate = options.rate;
    if (rate === undefined) {
      maxRate = await measureMaxRate(load, options.measureMs);
      rate = Math.max(1, Math.floor(maxRate / 2));
      log(
        `measured ${maxRate} msg/s at most over ${options.measureMs / 1000} s; soaking at ${rate}`,
      );
    } else {
      log(`soaking at ${rate} msg/s (given)`);
    }
    await waitDrained(load);

    const samples: SoakSample[] = [];
    const maxInflight = Math.max(PREFETCH, rate * MAX_INFLIGHT_SECONDS);
    const start = performance.now();
    let nextSampleAt = start + options.intervalMs;
    let issued = 0;
    let lastErrors = load.errors;
    let lastBehind = load.behind;
    let lastDelivered = load.delivered;
    load.recording = true;
    while (performance.now() - start < options.durationMs) {
      const now = performance.now();
      const due = Math.floor(((now - start) * rate) / 1000) - issued;
      for (let i = 0; i < due; i++) {
        issued++;
        if (load.inflight >= maxInflight) load.behind++;
        else load.send();
      }
      if (now >= nextSampleAt) {
        nextSampleAt += options.intervalMs;
        const mem = readMem(broker.pid);
        const lat = summarizeLatency(load.interval);
        load.interval = [];
        const sample: SoakSample = {
          atS: Math.round((now - start) / 1000),
          rssMiB: mem ? mem.rssKiB / KIB_PER_MIB : NaN,
          delivered: load.delivered - lastDelivered,
          p50Ms: lat.p50,
          p99Ms: lat.p99,
          errors: load.errors - lastErrors,
          behind: load.behind - lastBehind,
        };
        lastErrors = load.errors;
        lastBehind = load.behind;
        lastDelivered = load.delivered;
        samples.push(sample);
        log(formatSample(sample));
      }
      await delay(PACE_MS);
    }
    load.recording = false;
    const drained = await waitDrained(load);
    const undelivered = drained ? 0 : load.accepted - load.delivered;
    return summarize(options, { maxRate, rate, samples, load, undelivered });
  } finally {
    await producer?.close({ timeoutMs: 1_000 }).catch(() => {});
    await consumer?.close({ timeoutMs: 1_000 }).catch(() => {});
    await broker?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Waits until every accepted send was delivered (or the drain timeout); true if so. */
async function waitDrained(load: SoakLoad): Promise<boolean> {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (load.inflight === 0 && load.delivered >= load.accepted) return true;
    await delay(DRAIN_POLL_MS);
  }
  return false;
}

function summarize(
  options: SoakOptions,
  r: {
    maxRate: number | undefined;
    rate: number;
    samples: SoakSample[];
    load: SoakLoad;
    undelivered: number;
  },
): SoakResult {
  const rss = r.samples.map((s) => s.rssMiB).filter((x) => Number.isFinite(x));
  const half = Math.floor(rss.length / 2);
  const firstHalfMax = Math.max(...rss.slice(0, Math.max(1, half)));
  const secondHalfMax = Math.max(...rss.slice(half));
  const growth = rss.length >= 2 ? secondHalfMax - firstHalfMax : 0;
  const lat = summarizeLatency(r.load.all);
  const reasons: string[] = [];
  if (r.samples.length === 0) reasons.push('no sample was taken (run longer than one interval)');
  if (rss.length < r.samples.length) reasons.push('the broker RSS could not be read');
  if (r.load.errors > 0) reasons.push(`${r.load.errors} sends or acks failed`);
  if (r.undelivered > 0) reasons.push(`${r.undelivered} accepted messages were not delivered`);
  if (growth > options.maxRssGrowthMiB) {
    reasons.push(
      `RSS grew ${growth.toFixed(1)} MiB from the first half to the second (bound ${options.maxRssGrowthMiB})`,
    );
  }
  return {
    maxRate: r.maxRate,
    rate: r.rate,
    samples: r.samples,
    sent: r.load.sent,
    delivered: r.load.delivered,
    errors: r.load.errors,
    behind: r.load.behind,
    undelivered: r.undelivered,
    rssMinMiB: Math.min(...rss),
    rssMaxMiB: Math.max(...rss),
    rssGrowthMiB: growth,
    p50Ms: lat.p50,
    p99Ms: lat.p99,
    failed: reasons.length > 0,
    reasons,
  };
}

export function formatSample(s: SoakSample): string {
  return (
    `t=${String(s.atS).padStart(4)} s  rss ${s.rssMiB.toFixed(1).padStart(6)} MiB  ` +
    `delivered ${String(s.delivered).padStart(6)}  p50 ${s.p50Ms.toFixed(2).padStart(7)} ms  ` +
    `p99 ${s.p99Ms.toFixed(2).padStart(7)} ms  errors ${s.errors}  behind ${s.behind}`
  );
}

export function formatSummary(r: SoakResult): string {
  return [
    `rate: ${r.rate} msg/s` + (r.maxRate !== undefined ? ` (half the measured ${r.maxRate})` : ''),
    `messages: ${r.sent} sent, ${r.delivered} delivered, ${r.undelivered} undelivered, ` +
      `${r.behind} not sent (producer behind)`,
    `broker RSS: min ${r.rssMinMiB.toFixed(1)} MiB, max ${r.rssMaxMiB.toFixed(1)} MiB, ` +
      `growth first→second half ${r.rssGrowthMiB.toFixed(1)} MiB`,
    `latency (send → delivery): p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms; ` +
      `worst interval p99 ${Math.max(...r.samples.map((s) => s.p99Ms)).toFixed(2)} ms`,
    `errors: ${r.errors}`,
    r.failed ? `FAILED: ${r.reasons.join('; ')}` : 'passed',
  ].join('\n');
}
