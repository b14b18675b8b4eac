/**
 * Ceilings: what the pieces under Ferry can do on this machine, measured in the same run.
 *
 *  - raw zeromq.js PUSH/PULL throughput: both sockets in the bench process (one Node event
 *    loop, like W1's producer and consumer), over tcp://127.0.0.1, same count and size as W1;
 *    each send awaited, each message received with for-await; first send → last receive.
 *  - raw zeromq.js DEALER/ROUTER round trip: both sockets in the bench process over
 *    tcp://127.0.0.1; the ROUTER echoes; one request outstanding at a time.
 *  - the disk: append 4 KiB + fdatasync, N times, in a temp dir on the data dir's file system.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as zmq from 'zeromq';
import { summarizeLatency, type LatencySummary } from './stats.js';

export interface PushPullResult {
  msgsPerSec: number;
  elapsedMs: number;
  received: number;
}

export async function pushPull(
  count: number,
  size: number,
  onProgress: (received: number) => void,
): Promise<PushPullResult> {
  const pull = new zmq.Pull();
  const push = new zmq.Push();
  try {
    await pull.bind('tcp://127.0.0.1:*');
    push.connect(pull.lastEndpoint!);
    const body = Buffer.alloc(size, 0x78);
    let received = 0;
    let lastAt = NaN;
    const receiving = (async () => {
      for await (const [msg] of pull) {
        if (msg === undefined) continue;
        received++;
        if ((received & 0x3ff) === 0) onProgress(received);
        if (received === count) {
          lastAt = performance.now();
          break;
        }
      }
    })();
    const firstAt = performance.now();
    for (let i = 0; i < count; i++) {
      // A fresh buffer per message, as a real producer would have (zeromq.js may keep it).
      await push.send(Buffer.from(body));
    }
    await receiving;
    const elapsedMs = lastAt - firstAt;
    return { msgsPerSec: (count * 1000) / elapsedMs, elapsedMs, received };
  } finally {
    push.close();
    pull.close();
  }
}

export interface RoundTripResult extends LatencySummary {
  roundTripsPerSec: number;
}

export async function dealerRouterRtt(
  count: number,
  size: number,
  warmup: number,
  onProgress: (done: number) => void,
): Promise<RoundTripResult> {
  const router = new zmq.Router();
  const dealer = new zmq.Dealer();
  try {
    await router.bind('tcp://127.0.0.1:*');
    dealer.connect(router.lastEndpoint!);
    void (async () => {
      try {
        for await (const frames of router) await router.send(frames);
      } catch {
        /* closed */
      }
    })();
    const body = Buffer.alloc(size, 0x78);
    const samples = new Float64Array(count);
    const t0 = performance.now();
    for (let i = 0; i < warmup + count; i++) {
      const start = performance.now();
      await dealer.send(body);
      await dealer.receive();
      if (i >= warmup) samples[i - warmup] = (performance.now() - start) * 1000; // µs
      if ((i & 0x3ff) === 0) onProgress(i);
    }
    const total = performance.now() - t0;
    return {
      ...summarizeLatency(samples),
      roundTripsPerSec: ((warmup + count) * 1000) / total,
    };
  } finally {
    dealer.close();
    router.close();
  }
}

export interface FsyncResult extends LatencySummary {
  opsPerSec: number;
}

/** Appends 4 KiB and fdatasyncs, `count` times, in a fresh file under `dir`; latencies in ms. */
export function fdatasyncRate(
  dir: string,
  count: number,
  onProgress: (done: number) => void,
): FsyncResult {
  const file = path.join(dir, 'fdatasync-probe.bin');
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(4096, 0x78);
  const samples = new Float64Array(count);
  try {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      fs.writeSync(fd, block);
      fs.fdatasyncSync(fd);
      samples[i] = performance.now() - start;
      if ((i & 0x3f) === 0) onProgress(i);
    }
    const total = performance.now() - t0;
    return { ...summarizeLatency(samples), opsPerSec: (count * 1000) / total };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}
