/**
 * Ceilings: what the pieces under Ferry can do on this machine, measured in the same run.
 *
 *  - raw zeromq.js PUSH/PULL throughput: both sockets in the bench process (one Node event
 *    loop, like W1's producer and consumer), over tcp://127.0.0.1, same count and size as W1;
 *    each send awaited, each message received with for-await; first send → last receive.
 *  - raw zeromq.js DEALER/ROUTER round trip: both sockets in the bench process over
 *    tcp://127.0.0.1; the ROUTER echoes; one request outstanding at a time.
 *  - a raw brokered call: the bench process calls, through a zeromq.js ROUTER forwarding in a
 *    child process (raw-forwarder.ts), a DEALER worker in the bench process that echoes: W3's
 *    topology (client → broker → worker → broker → client, the broker its own process) with
 *    no broker logic and no storage. W3's latency floor on this machine.
 *  - the disk: append 4 KiB + fdatasync, N times, in a temp dir on the data dir's file system.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
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

const FORWARDER_PATH = fileURLToPath(new URL('./raw-forwarder.js', import.meta.url));
/** How long the forwarder child may take to print its endpoint. */
const FORWARDER_START_TIMEOUT_MS = 10_000;

/** Round trips of a call through a raw zeromq.js forwarder process to an echoing worker. */
export async function forwardedCall(
  count: number,
  size: number,
  warmup: number,
  onProgress: (done: number) => void,
): Promise<LatencySummary> {
  const child = spawn(process.execPath, [FORWARDER_PATH], { stdio: ['pipe', 'pipe', 'inherit'] });
  const client = new zmq.Dealer({ linger: 0 });
  const worker = new zmq.Dealer({ linger: 0 });
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error('the raw forwarder did not start')),
        FORWARDER_START_TIMEOUT_MS,
      );
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) {
          clearTimeout(timer);
          resolve(line.trim());
        }
      });
      child.once('exit', (code) => reject(new Error(`the raw forwarder exited (${code})`)));
    });
    worker.connect(endpoint);
    client.connect(endpoint);
    const R = Buffer.from('R');
    await worker.send([Buffer.from('W')]);
    const echoing = (async () => {
      for await (const [, from, ...body] of worker) {
        if (!from) continue;
        await worker.send([R, from, ...body]);
      }
    })();
    const C = Buffer.from('C');
    const body = Buffer.alloc(size, 0x70);
    // The worker's registration may race the first call: retry the first one until answered.
    for (;;) {
      await client.send([C, body]);
      const ready = await Promise.race([
        client.receive().then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
      ]);
      if (ready) break;
    }
    const latencyMs: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const t0 = performance.now();
      await client.send([C, body]);
      await client.receive();
      if (i >= warmup) latencyMs.push(performance.now() - t0);
      if ((i & 255) === 0) onProgress(i);
    }
    worker.close();
    await echoing.catch(() => {});
    return summarizeLatency(latencyMs);
  } finally {
    client.close();
    if (!worker.closed) worker.close();
    child.stdin?.end();
    child.kill('SIGKILL');
  }
}
