/**
 * The fuzz harness: a broker child with every dialect on, then, endpoint by endpoint, a flood
 * of seeded hostile messages (frames.ts) while a healthy Ferry client keeps pinging the Ferry
 * endpoint; its round trip is measured before and during each flood. After each flood the
 * broker must still be alive and answering, and /metrics shows what its peer guards counted.
 * `npm run fuzz` (run.ts) prints the report; test/integration/fuzz.test.ts runs a short one.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as zmq from 'zeromq';
import { decodeReply, encodeRequest } from 'ferrymq/protocol';
import { startBroker, type BrokerChild } from '../broker.js';
import { Worker } from 'node:worker_threads';
import { hostileHttp, Rng } from './frames.js';
import type { FloodJob, FloodResult } from './flood-worker.js';

/** Every endpoint the harness can flood, in the order it floods them. */
export const FUZZ_TARGETS = [
  'ferry',
  'mdp',
  'zmws-client',
  'zmws-worker',
  'pzq-receive',
  'pzq-send',
  'pzq-monitor',
  'clone-snapshot',
  'clone-collector',
  'http',
] as const;
export type FuzzTarget = (typeof FUZZ_TARGETS)[number];

/** The dialect label its counters carry in /metrics. */
const DIALECT_OF: Record<FuzzTarget, string> = {
  ferry: 'ferry',
  mdp: 'mdp',
  'zmws-client': 'zmws',
  'zmws-worker': 'zmws',
  'pzq-receive': 'pzq',
  'pzq-send': 'pzq',
  'pzq-monitor': 'pzq',
  'clone-snapshot': 'clone',
  'clone-collector': 'clone',
  http: 'http',
};

export interface FuzzOptions {
  seed: number;
  /** Messages sent to each endpoint. */
  frames: number;
  targets: readonly FuzzTarget[];
  /** Messages per flooding peer before it reconnects as a new peer (0: one peer throughout). */
  peerFrames: number;
  /** Healthy round trips measured before each flood. */
  baselinePings: number;
  /** Concurrent HTTP requests of the HTTP flood. */
  httpConcurrency: number;
  log?: (line: string) => void;
}

export const DEFAULT_FUZZ_OPTIONS: Omit<FuzzOptions, 'seed'> = {
  frames: 10_000,
  targets: FUZZ_TARGETS,
  peerFrames: 200,
  baselinePings: 300,
  httpConcurrency: 16,
};

/** Round trips during a flood are capped at this many (the list is kept in memory). */
const MAX_FLOOD_PINGS = 1_000_000;
const HEALTHY_TIMEOUT_MS = 30_000;
const CLONE_PORT_TRIES = 20;

interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
}

interface TargetReport {
  target: FuzzTarget;
  /** The dialect label of its counters in /metrics (cumulative over that dialect's targets). */
  dialect: string;
  sent: number;
  seconds: number;
  /** Replies the flooding peers got (HTTP: responses). */
  replies: number;
  /** HTTP only: responses with a 5xx status. */
  serverErrors: number;
  baseline: LatencySummary;
  duringFlood: LatencySummary;
  /** The peer guard counters of the target's dialect after the flood (from /metrics). */
  invalidFrames: number;
  peersDropped: number;
  ignoredFrames: number;
  brokerAlive: boolean;
  brokerPeakRssMiB: number;
}

export interface FuzzReport {
  seed: number;
  targets: TargetReport[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function summarize(samples: number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  return { count: s.length, p50Ms: percentile(s, 0.5), p99Ms: percentile(s, 0.99) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base port P with P, P+1 and P+2 free (Clone binds all three). */
async function freeTriple(): Promise<number> {
  for (let i = 0; i < CLONE_PORT_TRIES; i++) {
    const p = await freePort();
    if (p + 2 < 65_536 && (await portFree(p + 1)) && (await portFree(p + 2))) return p;
  }
  throw new Error('no three consecutive free ports for Clone');
}

interface Endpoints {
  http: string;
  zmq: Record<Exclude<FuzzTarget, 'http'>, string>;
}

async function startAllDialects(dataDir: string): Promise<{ broker: BrokerChild; ep: Endpoints }> {
  const tcp = async (): Promise<string> => `tcp://127.0.0.1:${await freePort()}`;
  const [mdp, zc, zw, pr, ps, pm] = [
    await tcp(),
    await tcp(),
    await tcp(),
    await tcp(),
    await tcp(),
    await tcp(),
  ];
  const clone = await freeTriple();
  const http = `127.0.0.1:${await freePort()}`;
  const broker = await startBroker({
    dataDir,
    sync: 'off',
    flags: [
      '--http',
      http,
      '--mdp',
      mdp,
      '--zmws',
      '--zmws-client',
      zc,
      '--zmws-worker',
      zw,
      '--pzq',
      '--pzq-receive',
      pr,
      '--pzq-send',
      ps,
      '--pzq-monitor',
      pm,
      '--clone',
      String(clone),
    ],
  });
  return {
    broker,
    ep: {
      http,
      zmq: {
        ferry: broker.endpoint,
        mdp,
        'zmws-client': zc,
        'zmws-worker': zw,
        'pzq-receive': pr,
        'pzq-send': ps,
        'pzq-monitor': pm,
        'clone-snapshot': `tcp://127.0.0.1:${clone}`,
        'clone-collector': `tcp://127.0.0.1:${clone + 2}`,
      },
    },
  };
}

/** A healthy Ferry client: HELLO once, then PINGs one at a time, each timed. */
class HealthyClient {
  private readonly sock = new zmq.Dealer({ linger: 0, receiveTimeout: HEALTHY_TIMEOUT_MS });
  private next = 0;

  constructor(endpoint: string) {
    this.sock.connect(endpoint);
  }

  /** One round trip, ms; throws when the broker does not answer within the timeout. */
  async roundTrip(command: 'HELLO' | 'PING' = 'PING'): Promise<number> {
    const id = Buffer.from(`h${++this.next}`);
    const t0 = process.hrtime.bigint();
    await this.sock.send(
      encodeRequest(command, id, command === 'HELLO' ? { heartbeatMs: 60_000 } : {}),
    );
    for (;;) {
      const reply = decodeReply(await this.sock.receive());
      if (reply.requestId.equals(id)) {
        if (reply.kind === 'ERROR')
          throw new Error(`${command} answered ${String(reply.args['code'])}`);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      }
    }
  }

  close(): void {
    this.sock.close();
  }
}

/** Floods a ZeroMQ endpoint from a worker thread; resolves with what it sent and got back. */
function floodZmq(
  target: Exclude<FuzzTarget, 'http'>,
  endpoint: string,
  options: FuzzOptions,
  seed: number,
): Promise<FloodResult> {
  const job: FloodJob = {
    target,
    endpoint,
    seed,
    frames: options.frames,
    peerFrames: options.peerFrames,
  };
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./flood-worker.js', import.meta.url), { workerData: job });
    let result: FloodResult | undefined;
    w.once('message', (r: FloodResult) => (result = r));
    w.once('error', reject);
    w.once('exit', (code) =>
      result ? resolve(result) : reject(new Error(`flood worker exited with ${code}`)),
    );
  });
}

/** Floods the HTTP gateway with `httpConcurrency` requests at a time. */
async function floodHttp(
  base: string,
  options: FuzzOptions,
  rng: Rng,
  progress: { sent: number },
): Promise<{ replies: number; serverErrors: number }> {
  let replies = 0;
  let serverErrors = 0;
  const worker = async (): Promise<void> => {
    while (progress.sent < options.frames) {
      progress.sent++;
      const req = hostileHttp(rng);
      try {
        const res = await fetch(`http://${base}${req.path}`, {
          method: req.method,
          headers: { 'content-type': 'application/json' },
          ...(req.body !== undefined ? { body: req.body } : {}),
        });
        await res.arrayBuffer();
        replies++;
        if (res.status >= 500) serverErrors++;
      } catch {
        // A refused or reset connection: counted as no reply.
      }
    }
  };
  await Promise.all(Array.from({ length: options.httpConcurrency }, () => worker()));
  return { replies, serverErrors };
}

/** Sums a counter of /metrics over the samples with the given dialect label. */
function metricValue(text: string, name: string, dialect: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(`dialect="${dialect}"`)) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-fuzz-'));
  const { broker, ep } = await startAllDialects(dataDir);
  const healthy = new HealthyClient(broker.endpoint);
  const report: FuzzReport = { seed: options.seed, targets: [] };
  try {
    await healthy.roundTrip('HELLO');
    for (const [i, target] of options.targets.entries()) {
      // Each target gets its own stream, so `--endpoint X` replays X's part of a full run.
      const seed = (options.seed + i * 0x9e3779b9) >>> 0;
      const base: number[] = [];
      for (let k = 0; k < options.baselinePings; k++) base.push(await healthy.roundTrip());
      broker.mem.takePhasePeak();
      const progress = { sent: 0 };
      const t0 = Date.now();
      let floodDone = false;
      const flood = (
        target === 'http'
          ? floodHttp(ep.http, options, new Rng(seed), progress)
          : floodZmq(target, ep.zmq[target], options, seed).then((r) => {
              progress.sent = r.sent;
              return { replies: r.replies, serverErrors: 0 };
            })
      ).finally(() => (floodDone = true));
      const during: number[] = [];
      while (!floodDone && during.length < MAX_FLOOD_PINGS) during.push(await healthy.roundTrip());
      const { replies, serverErrors } = await flood;
      const seconds = (Date.now() - t0) / 1000;
      // The broker still answers after the flood.
      await healthy.roundTrip();
      const metrics = await (await fetch(`http://${ep.http}/metrics`)).text();
      const dialect = DIALECT_OF[target];
      const r: TargetReport = {
        target,
        dialect,
        sent: progress.sent,
        seconds,
        replies,
        serverErrors,
        baseline: summarize(base),
        duringFlood: summarize(during),
        invalidFrames: metricValue(metrics, 'ferry_peer_invalid_frames_total', dialect),
        peersDropped: metricValue(metrics, 'ferry_peers_dropped_total', dialect),
        ignoredFrames: metricValue(metrics, 'ferry_peer_ignored_frames_total', dialect),
        brokerAlive: alive(broker.pid),
        brokerPeakRssMiB: broker.mem.takePhasePeak() / 1024,
      };
      report.targets.push(r);
      log(formatTarget(r));
    }
  } finally {
    healthy.close();
    await broker.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return report;
}

function formatTarget(r: TargetReport): string {
  const f = (n: number): string => n.toFixed(2);
  return (
    `${r.target.padEnd(16)} sent ${r.sent} in ${r.seconds.toFixed(1)} s, replies ${r.replies}` +
    (r.target === 'http' ? `, 5xx ${r.serverErrors}` : '') +
    ` | healthy p50/p99 ${f(r.baseline.p50Ms)}/${f(r.baseline.p99Ms)} ms → during flood ` +
    `${f(r.duringFlood.p50Ms)}/${f(r.duringFlood.p99Ms)} ms (${r.duringFlood.count} pings)` +
    ` | invalid ${r.invalidFrames}, dropped ${r.peersDropped}, ignored ${r.ignoredFrames}` +
    ` | RSS peak ${r.brokerPeakRssMiB.toFixed(0)} MiB, alive ${r.brokerAlive}`
  );
}
