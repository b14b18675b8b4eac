/**
 * `npm run bench:peers [-- --quick]`: Ferry side by side with RabbitMQ, NATS JetStream and
 * BullMQ on this machine, the same workloads for each. Ferry runs as a child process per run
 * (as in `npm run bench`); the peers are the servers already running on this machine, each
 * measured through its standard Node client in this process (its adapter, adapters/<id>.ts, is
 * loaded only once its port answers: load-peer.ts). Runs are interleaved: round 1 of
 * every system, then round 2, … so drift of a shared machine hits every system alike.
 * Prints a table per workload as it goes, writes JSON lines to bench/results/ and an SVG chart.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, killAllBrokers, type MemSampler } from '../broker.js';
import { newCounters, type LoadCounters } from '../ferry-load.js';
import { OP_COUNT_METRICS } from '../op-counts.js';
import {
  machineBusySeconds,
  machineInfo,
  selfAndChildrenSeconds,
  waitForQuiet,
} from '../machine.js';
import { fmt, spread, type Spread } from '../stats.js';
import {
  liveTempDirs,
  Scope,
  startProgress,
  type MetricDef,
  type RunOutput,
} from '../workloads.js';
import { packageVersion } from './clients.js';
import {
  loadPeersConfig,
  PEERS_ENV_HELP,
  W3_PAYLOAD_BYTES,
  type PeersConfig,
  type PeerId,
  type PeerWorkloadId,
} from './config.js';
import { ferryW3, ferryW4, ferryWorkload, runFerryWorkload } from './ferry.js';
import { connectPeer, PEER_ENDPOINTS } from './load-peer.js';
import {
  CALL_KINDS,
  FANOUT_MODES,
  findPid,
  peerW1,
  peerW2,
  peerW4,
  samplerFor,
  sequentialCalls,
  w3TotalCalls,
  type CallKind,
  type FanoutMode,
  type Peer,
  type ServerInfo,
} from './peer.js';
import { renderChart, type Panel } from '../svg-chart.js';
import {
  PG_HEADLINE_METRICS,
  pgGroups,
  pgPeerVersion,
  preparePg,
  type PgReady,
} from './pg-group.js';
import type { Group, Measurement, RatioLine, Result, SystemRow } from './rows.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');
const DOC_CHART = path.join(REPO_ROOT, 'docs', 'benchmarks', 'peers.svg');
/** A run of the pg group alone charts into its own file, not over the other workloads' chart. */
const DOC_PG_CHART = path.join(REPO_ROOT, 'docs', 'benchmarks', 'postgres.svg');
/** Warn when other processes took more than this much of a core (and wait for less). */
const OTHER_LOAD_WARN_PERCENT = 10;
/** Closing what a run opened may not take longer than this, ms. */
const SCOPE_CLOSE_TIMEOUT_MS = 30_000;

/** Ferry's policy that matches each peer's durability most closely (see config.ts). */
const FERRY_EQUIVALENT: Record<Peer['id'], string> = {
  rabbitmq: 'always',
  jetstream: 'batch:1000',
  bullmq: 'off',
};

const COLORS: Record<string, string> = {
  'ferry:always': '#1f4e79',
  'ferry:batch': '#4a86c5',
  'ferry:off': '#9cc3e6',
  rabbitmq: '#f28e2b',
  jetstream: '#59a14f',
  bullmq: '#e15759',
};

const W1_METRICS: MetricDef[] = [
  { key: 'msgsPerSec', label: 'msgs/s', unit: 'msgs/s' },
  { key: 'p50Ms', label: 'p50', unit: 'ms' },
  { key: 'p99Ms', label: 'p99', unit: 'ms' },
  { key: 'peakRssMB', label: 'peak RSS', unit: 'MB' },
];
const W1_PACED_METRICS: MetricDef[] = [
  { key: 'msgsPerSec', label: 'achieved', unit: 'msgs/s' },
  { key: 'p50Ms', label: 'p50', unit: 'ms' },
  { key: 'p99Ms', label: 'p99', unit: 'ms' },
  { key: 'maxMs', label: 'max', unit: 'ms' },
];
const W2_METRICS: MetricDef[] = [
  { key: 'produceMsgsPerSec', label: 'produce', unit: 'msgs/s' },
  { key: 'drainMsgsPerSec', label: 'drain', unit: 'msgs/s' },
  { key: 'peakRssMB', label: 'peak RSS', unit: 'MB' },
  { key: 'diskMB', label: 'disk', unit: 'MB' },
];
const W3_METRICS: MetricDef[] = [
  { key: 'callsPerSec', label: 'calls/s', unit: 'calls/s' },
  { key: 'p50Ms', label: 'p50', unit: 'ms' },
  { key: 'p99Ms', label: 'p99', unit: 'ms' },
  { key: 'peakRssMB', label: 'peak RSS', unit: 'MB' },
];

const W4_METRICS: MetricDef[] = [
  { key: 'publishPerSec', label: 'publish', unit: 'msgs/s' },
  { key: 'deliveriesPerSec', label: 'deliveries', unit: 'msgs/s' },
  { key: 'slowestSubPerSec', label: 'slowest subscriber', unit: 'msgs/s' },
  { key: 'p50Ms', label: 'p50', unit: 'ms' },
  { key: 'p99Ms', label: 'p99', unit: 'ms' },
  { key: 'peakRssMB', label: 'peak RSS', unit: 'MB' },
  { key: 'lost', label: 'lost', unit: 'deliveries' },
];

/** Per workload, the metrics Ferry's ratio to each peer is taken on and the chart shows. */
const HEADLINE_METRICS: Record<PeerWorkloadId, string[]> = {
  ceilings: [],
  w1: ['msgsPerSec', 'p99Ms'],
  'w1-paced': ['p50Ms', 'p99Ms'],
  w2: ['produceMsgsPerSec', 'drainMsgsPerSec', 'peakRssMB'],
  w3: ['callsPerSec', 'p50Ms', 'p99Ms'],
  w4: ['publishPerSec', 'deliveriesPerSec', 'p99Ms'],
  pg: PG_HEADLINE_METRICS,
};

class TimeoutError extends Error {}

function sizeText(size: number): string {
  return size % 1024 === 0 ? `${size / 1024} KiB` : `${size} B`;
}

function ferryDurability(sync: string): string {
  if (sync === 'always') return 'acknowledged after its group commit is fsync’d';
  if (sync === 'off') return 'acknowledged once committed to SQLite (in the OS), never fsync’d';
  return `acknowledged once committed (in the OS); fsync every ${sync.slice(6)} ms`;
}

function ferryFanoutDurability(sync: string, mode: FanoutMode): string {
  return mode === 'durable'
    ? `${ferryDurability(sync)}; with a copy in every durable subscription, in the same commit; one ack per message`
    : `${ferryDurability(sync)} — a publish is stored (its sequence number) even with only live subscribers; ` +
        'live delivery after the commit, at most once: a subscriber past its window (10,000) is dropped and told';
}

/** Ferry's policy in a few words: the last column of the tables. */
function ferryTag(sync: string): string {
  if (sync === 'always') return 'fsync’d before ack';
  if (sync === 'off') return 'never fsync’d';
  if (sync.startsWith('batch:')) return `fsync every ${sync.slice(6)} ms`;
  return '';
}

function ferryRow(sync: string): SystemRow {
  const kind = sync.startsWith('batch:') ? 'batch' : sync;
  return {
    key: `ferry:${sync}`,
    label: `Ferry ${sync}`,
    systemId: 'ferry',
    sync,
    durability: ferryDurability(sync),
    tag: ferryTag(sync),
    color: COLORS[`ferry:${kind}`] ?? '#1f4e79',
  };
}

// ------------------------------------------------------------------ running

function cleanupSync(): void {
  killAllBrokers();
  for (const dir of liveTempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  liveTempDirs.clear();
}

function installExitHandlers(): void {
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stdout.write(`\n${sig}: killing the broker and removing temp dirs\n`);
      cleanupSync();
      process.exit(130);
    });
  }
  process.on('unhandledRejection', (err) => {
    console.error('bench:peers: unhandled rejection:', err);
  });
}

async function runOnce(m: Measurement, label: string): Promise<RunOutput> {
  const scope = new Scope();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`timed out after ${m.timeoutMs / 1000} s`)),
      m.timeoutMs,
    );
  });
  const work = m.run(scope, label);
  work.catch(() => {});
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    let closeTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      scope.close(),
      new Promise<void>((r) => {
        closeTimer = setTimeout(() => {
          console.log(
            `  ! ${label}: cleanup took over ${SCOPE_CLOSE_TIMEOUT_MS / 1000} s; going on`,
          );
          r();
        }, SCOPE_CLOSE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(closeTimer);
  }
}

// ------------------------------------------------------------------ the plan

/** The progress line of a peer's W1 / W1-paced run. */
function peerProgress(
  scope: Scope,
  label: string,
  peer: Peer,
  c: LoadCounters,
  total: number,
  mem: MemSampler | null,
): void {
  startProgress(
    scope,
    label,
    () =>
      `confirmed ${c.confirmed.toLocaleString('en-US')}/${total.toLocaleString('en-US')}, ` +
      `received ${c.received.toLocaleString('en-US')}, acked ${c.acked.toLocaleString('en-US')}` +
      (mem ? `, ${peer.processName} RSS ${(mem.lastRssKiB / 1024).toFixed(0)} MB` : ''),
    () => c.acked / total,
  );
}

function peerRow(p: Peer, info: ServerInfo): SystemRow {
  return {
    key: p.id,
    label: p.name,
    systemId: p.id,
    sync: null,
    durability: info.durability,
    tag: info.tag,
    color: COLORS[p.id] ?? '#888',
    processName: p.processName,
  };
}

function plan(
  cfg: PeersConfig,
  peers: { peer: Peer; info: ServerInfo }[],
  pg: PgReady | null,
): Group[] {
  const b = cfg.base;
  const groups: Group[] = [];
  const ferryRows = cfg.systems.includes('ferry') ? cfg.ferrySyncs.map(ferryRow) : [];
  const ceilings = cfg.only.includes('ceilings');

  for (const size of cfg.sizes) {
    if (ceilings) {
      const pp = ferryWorkload('push-pull');
      groups.push({
        workload: 'ceilings',
        name: `PUSH/PULL ${sizeText(size)}`,
        title: pp.title,
        size,
        shape: { messages: b.count, size },
        measurements: [
          {
            row: {
              ...ferryRow('n/a'),
              key: 'zeromq',
              label: 'zeromq.js',
              durability: 'none',
              tag: '',
            },
            metrics: pp.metrics,
            timeoutMs: b.timeoutMs,
            run: (scope, label) => runFerryWorkload('push-pull', b, { size }, scope, label),
          },
        ],
      });
    }
    if (size === cfg.sizes[0] && ceilings) {
      for (const name of ['dealer-router-rtt', 'fdatasync']) {
        const w = ferryWorkload(name);
        groups.push({
          workload: 'ceilings',
          name: name === 'fdatasync' ? 'fdatasync' : `DEALER/ROUTER ${sizeText(size)}`,
          title: w.title,
          size,
          shape: w.shape({ ...b, size }),
          measurements: [
            {
              row: {
                ...ferryRow('n/a'),
                key: name,
                label: name === 'fdatasync' ? 'disk' : 'zeromq.js',
                durability: 'none',
                tag: '',
              },
              metrics: w.metrics,
              timeoutMs: b.timeoutMs,
              run: (scope, label) => runFerryWorkload(name, b, { size }, scope, label),
            },
          ],
        });
      }
    }
    if (cfg.only.includes('w1')) {
      const ms: Measurement[] = ferryRows.map((row) => ({
        row,
        metrics: W1_METRICS,
        timeoutMs: b.timeoutMs,
        run: (scope, label) => runFerryWorkload('w1', b, { size, sync: row.sync! }, scope, label),
      }));
      for (const { peer, info } of peers) {
        ms.push({
          row: peerRow(peer, info),
          metrics: W1_METRICS,
          timeoutMs: b.timeoutMs,
          run: (scope, label) => {
            const counters = newCounters();
            return peerW1({
              scope,
              peer,
              queue: 'ferry-bench-w1',
              count: b.count,
              size,
              window: b.window,
              prefetch: b.prefetch,
              counters,
              onStart: (c, mem) => peerProgress(scope, label, peer, c, b.count, mem),
            });
          },
        });
      }
      groups.push({
        workload: 'w1',
        name: `W1 ${sizeText(size)}`,
        title: `W1 durable queue, ${sizeText(size)}: 1 producer + 1 consumer, ${b.count.toLocaleString('en-US')} msgs, ≤ ${b.window} unconfirmed, prefetch ${b.prefetch}, every message acked`,
        size,
        shape: { messages: b.count, size, window: b.window, prefetch: b.prefetch },
        measurements: ms,
      });
    }
    if (cfg.only.includes('w1-paced') && size === cfg.sizes[0]) {
      const warmupCount = Math.round((cfg.pacedRate * b.warmupMs) / 1000);
      const pace = { ratePerSec: cfg.pacedRate, tickMs: b.tickMs, warmupCount };
      const paced = { rate: cfg.pacedRate, pacedCount: cfg.pacedCount };
      const ms: Measurement[] = ferryRows.map((row) => ({
        row,
        metrics: W1_PACED_METRICS,
        timeoutMs: b.timeoutMs,
        run: (scope, label) =>
          runFerryWorkload('w1-paced', b, { size, sync: row.sync!, ...paced }, scope, label),
      }));
      for (const { peer, info } of peers) {
        ms.push({
          row: peerRow(peer, info),
          metrics: W1_PACED_METRICS,
          timeoutMs: b.timeoutMs,
          run: (scope, label) =>
            peerW1({
              scope,
              peer,
              queue: 'ferry-bench-w1-paced',
              count: cfg.pacedCount,
              size,
              window: b.window,
              prefetch: b.prefetch,
              pace,
              onStart: (c, mem) =>
                peerProgress(scope, label, peer, c, warmupCount + cfg.pacedCount, mem),
            }),
        });
      }
      groups.push({
        workload: 'w1-paced',
        name: `W1-paced ${sizeText(size)}`,
        title:
          `W1-paced, ${sizeText(size)}: W1 at a steady ${cfg.pacedRate.toLocaleString('en-US')} msgs/s offered ` +
          `(${cfg.pacedCount.toLocaleString('en-US')} measured after ${warmupCount.toLocaleString('en-US')} warm-up), every message acked`,
        size,
        shape: {
          messages: cfg.pacedCount,
          warmupMessages: warmupCount,
          rate: cfg.pacedRate,
          size,
          window: b.window,
          prefetch: b.prefetch,
        },
        measurements: ms,
      });
    }
    if (cfg.only.includes('w2')) {
      // Ferry's full W2 backlog at the first size (the issue's target); the peers' depth at the
      // others, which keeps the run short and compares equal depths there.
      const ferryW2Count = size === cfg.sizes[0] ? b.w2Count : Math.min(b.w2Count, cfg.peerW2Count);
      const w2Rows = ferryRows.filter((row) => cfg.w2FerrySyncs.includes(row.sync!));
      const ms: Measurement[] = w2Rows.map((row) => ({
        row,
        metrics: W2_METRICS,
        timeoutMs: b.w2TimeoutMs,
        run: (scope, label) =>
          runFerryWorkload('w2', b, { size, sync: row.sync!, w2Count: ferryW2Count }, scope, label),
      }));
      for (const { peer, info } of peers) {
        ms.push({
          row: peerRow(peer, info),
          metrics: W2_METRICS,
          timeoutMs: b.w2TimeoutMs,
          run: (scope, label) => {
            let phase = 'produce';
            return peerW2({
              scope,
              peer,
              queue: 'ferry-bench-w2',
              count: cfg.peerW2Count,
              size,
              window: b.w2Window,
              prefetch: b.prefetch,
              onPhase: (p) => (phase = p),
              onStart: (c, mem) =>
                startProgress(
                  scope,
                  label,
                  () =>
                    `${phase}: confirmed ${c.confirmed.toLocaleString('en-US')}/${cfg.peerW2Count.toLocaleString('en-US')}, ` +
                    `acked ${c.acked.toLocaleString('en-US')}` +
                    (mem
                      ? `, ${peer.processName} RSS ${(mem.lastRssKiB / 1024).toFixed(0)} MB`
                      : ''),
                  () => (c.confirmed + c.acked) / (2 * cfg.peerW2Count),
                ),
            });
          },
        });
      }
      groups.push({
        workload: 'w2',
        name: `W2 ${sizeText(size)}`,
        title:
          `W2 backlog, ${sizeText(size)}: produce with no consumer, then one consumer drains — ` +
          `Ferry ${ferryW2Count.toLocaleString('en-US')} msgs, peers ${cfg.peerW2Count.toLocaleString('en-US')} msgs`,
        size,
        shape: {
          ferryMessages: ferryW2Count,
          peerMessages: cfg.peerW2Count,
          size,
          window: b.w2Window,
          prefetch: b.prefetch,
        },
        measurements: ms,
      });
    }
    if (cfg.only.includes('w4')) {
      for (const mode of FANOUT_MODES) groups.push(w4Group(cfg, peers, ferryRows, size, mode));
    }
  }

  if (cfg.only.includes('w3')) {
    for (const kind of CALL_KINDS) groups.push(w3Group(cfg, peers, ferryRows, kind));
  }
  if (pg) groups.push(...pgGroups(cfg, pg));
  return groups;
}

/** A row that is not run, and why (printed, and kept in the JSON lines). */
function skipped(row: SystemRow, metrics: MetricDef[], why: string): Measurement {
  return {
    row: { ...row, durability: 'not measured', tag: '' },
    metrics,
    timeoutMs: 0,
    skip: why,
    run: () => Promise.reject(new Error(why)),
  };
}

/**
 * Ferry's W3 rows: one for a transient call (no sync policy touches it), one per policy for a
 * durable call.
 */
function ferryCallRows(ferryRows: SystemRow[], kind: CallKind): SystemRow[] {
  if (kind === 'durable') {
    return ferryRows.map((row) => ({
      ...row,
      label: `Ferry durable ${row.sync!}`,
      durability: `call({ durable: true }): the job stored before a worker gets it, its result before the answer; ${ferryDurability(row.sync!)}`,
      tag: `job + result, ${row.tag}`,
    }));
  }
  const row = ferryRows.find((r) => r.sync === 'always') ?? ferryRows[0];
  if (!row) return [];
  return [
    {
      ...row,
      label: 'Ferry call',
      durability: 'call(): a transient job, not stored; no fsync on its path whatever the policy',
      tag: 'not stored (a call)',
    },
  ];
}

function w3Group(
  cfg: PeersConfig,
  peers: { peer: Peer; info: ServerInfo }[],
  ferryRows: SystemRow[],
  kind: CallKind,
): Group {
  const b = cfg.base;
  const size = W3_PAYLOAD_BYTES;
  const callsProgress = (scope: Scope, label: string): ((n: number) => void) => {
    let done = 0;
    startProgress(
      scope,
      label,
      () => `calls ${done.toLocaleString('en-US')}`,
      () => done / w3TotalCalls(cfg.w3Calls),
    );
    return (n) => (done = n);
  };
  const ms: Measurement[] = ferryCallRows(ferryRows, kind).map((row) => ({
    row,
    metrics: W3_METRICS,
    timeoutMs: b.timeoutMs,
    run: (scope, label) =>
      ferryW3({
        base: b,
        sync: row.sync!,
        kind,
        calls: cfg.w3Calls,
        workers: cfg.w3Workers,
        size,
        scope,
        onProgress: callsProgress(scope, label),
      }),
  }));
  for (const { peer, info } of peers) {
    const flavour = peer.rpc[kind];
    if ('skip' in flavour) {
      ms.push(skipped(peerRow(peer, info), W3_METRICS, flavour.skip));
      continue;
    }
    ms.push({
      row: {
        ...peerRow(peer, info),
        label: flavour.label,
        durability: flavour.description,
        tag: flavour.tag,
      },
      metrics: W3_METRICS,
      timeoutMs: b.timeoutMs,
      async run(scope, label) {
        const mem = samplerFor(scope, peer.processName);
        const onProgress = callsProgress(scope, label);
        const name = `ferry-bench-w3-${kind}`;
        const rpc = await peer.openRpc(scope, { name, kind, workers: cfg.w3Workers });
        const r = await sequentialCalls((p) => rpc.call(p), {
          calls: cfg.w3Calls,
          size,
          onProgress,
        });
        mem?.sample();
        r.metrics['peakRssMB'] = mem ? mem.peakRssKiB / 1024 : NaN;
        return r;
      },
    });
  }
  const what =
    kind === 'durable'
      ? 'durable calls (job queues): the job stored before a worker gets it; a call returns once the server confirmed storing it and the result came back'
      : 'transient calls: a worker answers, nothing stored on the way (RabbitMQ: persistent requests, unconfirmed)';
  return {
    workload: 'w3',
    name: `W3 ${kind} ${sizeText(size)}`,
    title: `W3 ${what} — 1 client, ${cfg.w3Calls.toLocaleString('en-US')} sequential calls (+10 % warm-up) to ${cfg.w3Workers} workers, ${size} B params and results`,
    size,
    shape: { kind, calls: cfg.w3Calls, workers: cfg.w3Workers, size },
    measurements: ms,
    callKind: kind,
  };
}

function w4Group(
  cfg: PeersConfig,
  peers: { peer: Peer; info: ServerInfo }[],
  ferryRows: SystemRow[],
  size: number,
  mode: FanoutMode,
): Group {
  const b = cfg.base;
  const common = {
    subscribers: cfg.w4Subscribers,
    count: cfg.w4Count,
    size,
    settleMs: cfg.w4SettleMs,
  };
  const ms: Measurement[] = ferryRows.map((row) => ({
    row: {
      ...row,
      durability: ferryFanoutDurability(row.sync!, mode),
      tag: mode === 'live' ? `${row.tag}, the publish only` : `${row.tag}, a copy per subscriber`,
    },
    metrics: W4_METRICS,
    timeoutMs: b.timeoutMs,
    run: (scope, label) => ferryW4({ ...common, base: b, sync: row.sync!, mode, scope, label }),
  }));
  for (const { peer, info } of peers) {
    const flavour = peer.fanout[mode];
    if ('skip' in flavour) {
      ms.push(skipped(peerRow(peer, info), W4_METRICS, flavour.skip));
      continue;
    }
    ms.push({
      row: {
        ...peerRow(peer, info),
        label: flavour.label,
        durability: flavour.durability,
        tag: flavour.tag,
      },
      metrics: W4_METRICS,
      timeoutMs: b.timeoutMs,
      run: (scope, label) =>
        peerW4({
          ...common,
          scope,
          label,
          peer,
          flavour,
          mode,
          window: b.window,
          prefetch: b.prefetch,
        }),
    });
  }
  const what =
    mode === 'durable'
      ? `every subscriber its own stored copy, prefetch ${b.prefetch}, every message acked`
      : 'live subscribers, nothing stored per subscriber';
  return {
    workload: 'w4',
    name: `W4 ${mode} ${sizeText(size)}`,
    title:
      `W4 ${mode} fan-out, ${sizeText(size)}: 1 publisher, ${cfg.w4Subscribers} subscribers (a connection each), ` +
      `${cfg.w4Count.toLocaleString('en-US')} msgs, ≤ ${b.window} unconfirmed; ${what}`,
    size,
    shape: {
      mode,
      messages: cfg.w4Count,
      subscribers: cfg.w4Subscribers,
      size,
      window: b.window,
      prefetch: mode === 'durable' ? b.prefetch : null,
      settleMs: cfg.w4SettleMs,
    },
    measurements: ms,
    fanoutMode: mode,
  };
}

// ------------------------------------------------------------------ output

const LABEL_W = 26;
const CELL_W = 32;

function cell(s: Spread, unit: string): string {
  if (s.n === 0) return 'n/a';
  const range = s.n > 1 ? ` (${fmt(s.min)}–${fmt(s.max)})` : '';
  return `${fmt(s.median)}${range} ${unit}`;
}

function printGroupHeader(g: Group): void {
  const metrics = g.measurements[0]?.metrics ?? [];
  console.log(`\n${g.title}`);
  console.log(
    [
      'system'.padEnd(LABEL_W),
      ...metrics.map((m) => m.label.padEnd(CELL_W)),
      'ok ',
      'durability',
    ].join(' '),
  );
}

function printResult(r: Result, runs: number): void {
  if (r.m.skip) {
    console.log(`${r.m.row.label.padEnd(LABEL_W)} skipped: ${r.m.skip}`);
    return;
  }
  const cells = r.m.metrics.map((m) => cell(r.spreads[m.key]!, m.unit).padEnd(CELL_W));
  console.log(
    [r.m.row.label.padEnd(LABEL_W), ...cells, `${r.outputs.length}/${runs}`, r.m.row.tag].join(' '),
  );
  const counts = opCountsText(r);
  if (counts !== null) console.log(`${''.padEnd(LABEL_W)} per op: ${counts}`);
}

/**
 * The broker's own counts per operation (bench/op-counts.ts: medians), for a Ferry row whose
 * runs report them; null otherwise (the peers, the ceilings).
 */
function opCountsText(r: Result): string | null {
  const parts: string[] = [];
  for (const m of OP_COUNT_METRICS) {
    const s = r.spreads[m.key];
    if (s && s.n > 0) parts.push(`${fmt(s.median)} ${m.label.replace(/ per op.*$/, '')}`);
  }
  if (parts.length === 0) return null;
  return parts.join(', ');
}

/** Ferry ÷ peer (medians) on the group's headline metrics, for `always` and the equivalent. */
function ratios(results: Result[]): RatioLine[] {
  const out: RatioLine[] = [];
  const g = results[0]?.group;
  if (!g) return out;
  const keys = HEADLINE_METRICS[g.workload];
  const peers = results.filter((r) => r.m.row.systemId !== 'ferry' && r.outputs.length > 0);
  for (const p of peers) {
    const id = p.m.row.systemId as Peer['id'];
    // Live fan-out stores nothing per subscriber anywhere: every Ferry policy is compared.
    const wanted = g.fanoutMode === 'live' ? null : new Set(['always', FERRY_EQUIVALENT[id]]);
    const ferry = results.filter(
      (r) =>
        r.m.row.sync !== null &&
        (wanted === null || wanted.has(r.m.row.sync)) &&
        r.outputs.length > 0,
    );
    for (const f of ferry) {
      for (const k of keys) {
        const fv = f.spreads[k]?.median ?? NaN;
        const pv = p.spreads[k]?.median ?? NaN;
        out.push({
          group: g.name,
          ferry: f.m.row.label,
          peer: p.m.row.label,
          metric: k,
          ratio: fv / pv,
        });
      }
    }
  }
  return out;
}

function ratioText(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a';
}

function printRatios(lines: RatioLine[]): void {
  const byPair = new Map<string, RatioLine[]>();
  for (const l of lines) {
    const k = `${l.ferry} ÷ ${l.peer}`;
    byPair.set(k, [...(byPair.get(k) ?? []), l]);
  }
  for (const [pair, ls] of byPair) {
    console.log(`  ${pair}: ${ls.map((l) => `${l.metric} ${ratioText(l.ratio)}`).join(', ')}`);
  }
}

interface TargetLine {
  target: string;
  met: boolean | null;
  measured: string;
}

function targets(all: Result[], sizes: number[]): TargetLine[] {
  const size = 100;
  if (!sizes.includes(size)) return [];
  const find = (workload: string, key: string): Result | undefined =>
    all.find((r) => r.group.workload === workload && r.group.size === size && r.m.row.key === key);
  const med = (r: Result | undefined, k: string): number => r?.spreads[k]?.median ?? NaN;
  const out: TargetLine[] = [];
  const check = (target: string, ok: number | boolean, measured: string): void => {
    const met = typeof ok === 'boolean' ? ok : null;
    out.push({ target, met: Number.isNaN(ok) ? null : met, measured });
  };
  const f1 = find('w1', 'ferry:always');
  for (const peer of ['rabbitmq', 'jetstream']) {
    const p = find('w1', peer);
    if (!f1 || !p) continue;
    const r = med(f1, 'msgsPerSec') / med(p, 'msgsPerSec');
    check(
      `W1 100 B: Ferry always ≥ 5× ${p.m.row.label} msgs/s`,
      Number.isFinite(r) ? r >= 5 : NaN,
      `${ratioText(r)} (${fmt(med(f1, 'msgsPerSec'))} vs ${fmt(med(p, 'msgsPerSec'))} msgs/s)`,
    );
    const fp = med(f1, 'p99Ms');
    const pp = med(p, 'p99Ms');
    check(
      `W1 100 B: Ferry always p99 below ${p.m.row.label}`,
      Number.isFinite(fp / pp) ? fp < pp : NaN,
      `${fmt(fp)} ms vs ${fmt(pp)} ms (${ratioText(fp / pp)})`,
    );
  }
  const f2 = find('w2', 'ferry:always');
  if (f2) {
    const rss = med(f2, 'peakRssMB');
    check(
      `W2 100 B: Ferry always peak RSS ≤ 150 MB (${String(f2.group.shape['ferryMessages'])} queued)`,
      Number.isFinite(rss) ? rss <= 150 : NaN,
      `${fmt(rss)} MB`,
    );
    const peers = all.filter(
      (r) => r.group.workload === 'w2' && r.group.size === size && r.m.row.systemId !== 'ferry',
    );
    const best = peers
      .filter((p) => Number.isFinite(med(p, 'drainMsgsPerSec')))
      .sort((a, b) => med(b, 'drainMsgsPerSec') - med(a, 'drainMsgsPerSec'))[0];
    if (best) {
      const r = med(f2, 'drainMsgsPerSec') / med(best, 'drainMsgsPerSec');
      check(
        `W2 100 B: Ferry always drain ≥ 2× the best peer (${best.m.row.label})`,
        Number.isFinite(r) ? r >= 2 : NaN,
        `${ratioText(r)} (${fmt(med(f2, 'drainMsgsPerSec'))} vs ${fmt(med(best, 'drainMsgsPerSec'))} msgs/s)`,
      );
    }
  }
  // W3 (issue 13's goals): the transient call against RabbitMQ RPC and NATS core, the durable
  // call against NATS JetStream used as a job queue, at ≤ 1 fsync per call.
  const call = (kind: CallKind, key: string): Result | undefined =>
    all.find(
      (r) =>
        r.group.workload === 'w3' &&
        r.group.callKind === kind &&
        r.m.row.key === key &&
        r.outputs.length > 0,
    );
  /** `f`'s median ÷ `p`'s on `key` must be at most (≤) or at least (≥) `bound`. */
  const ratioCheck = (
    kind: CallKind,
    pair: { f: Result | undefined; p: Result | undefined },
    key: 'p50Ms' | 'callsPerSec',
    goal: { op: '≤' | '≥'; bound: number },
  ): void => {
    const { f, p } = pair;
    if (!f || !p) return;
    const what = key === 'p50Ms' ? 'p50' : 'calls/s';
    const times = goal.bound === 1 ? '' : `${goal.bound}× `;
    const r = med(f, key) / med(p, key);
    check(
      `W3 ${kind}: ${f.m.row.label} ${what} ${goal.op} ${times}${p.m.row.label} ${what}`,
      Number.isFinite(r) ? (goal.op === '≤' ? r <= goal.bound : r >= goal.bound) : NaN,
      `${ratioText(r)} (${fmt(med(f, key))} vs ${fmt(med(p, key))} ${key === 'p50Ms' ? 'ms' : 'calls/s'})`,
    );
  };
  const tf = call('transient', 'ferry:always');
  ratioCheck('transient', { f: tf, p: call('transient', 'rabbitmq') }, 'p50Ms', {
    op: '≤',
    bound: 1,
  });
  ratioCheck('transient', { f: tf, p: call('transient', 'jetstream') }, 'callsPerSec', {
    op: '≥',
    bound: 0.9,
  });
  const df = call('durable', 'ferry:always');
  ratioCheck('durable', { f: df, p: call('durable', 'jetstream') }, 'p50Ms', { op: '≤', bound: 1 });
  if (df) {
    const fsyncs = med(df, 'fsyncsPerOp');
    check(
      `W3 durable: ${df.m.row.label} ≤ 1 fsync per call`,
      Number.isFinite(fsyncs) ? fsyncs <= 1 : NaN,
      `${Number.isFinite(fsyncs) ? fsyncs.toFixed(4) : 'n/a'} fsyncs per measured call (every fsync of the broker meanwhile)`,
    );
  }
  return out;
}

function markdown(all: Result[], runs: number): string {
  const lines: string[] = [];
  for (const g of new Set(all.map((r) => r.group))) {
    const rs = all.filter((r) => r.group === g);
    const metrics = rs[0]?.m.metrics ?? [];
    lines.push(
      '',
      `**${g.title}**`,
      '',
      `| System | ${metrics.map((m) => (m.label === m.unit ? m.label : `${m.label} (${m.unit})`)).join(' | ')} | Runs ok | Durability |`,
      `|---|${metrics.map(() => '---:').join('|')}|:-:|---|`,
    );
    for (const r of rs) {
      const cells = r.m.skip
        ? r.m.metrics.map(() => 'skipped')
        : r.m.metrics.map((m) => {
            const s = r.spreads[m.key]!;
            return s.n === 0 ? 'n/a' : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
          });
      lines.push(
        `| ${r.m.row.label} | ${cells.join(' | ')} | ${r.outputs.length}/${runs} | ${r.m.row.tag} |`,
      );
    }
    // The broker's counts per operation under the table, for the rows that have them.
    const counts = rs.flatMap((r) => {
      const text = opCountsText(r);
      return text === null ? [] : [`- ${r.m.row.label}, per op (medians): ${text}`];
    });
    if (counts.length > 0) lines.push('', ...counts);
  }
  return lines.join('\n');
}

function chart(all: Result[], subtitle: string): string {
  const panels: Panel[] = [];
  const groups = [...new Set(all.map((r) => r.group))].filter((g) => g.workload !== 'ceilings');
  const legend = new Map<string, string>();
  for (const g of groups) {
    const rs = all.filter((r) => r.group === g);
    for (const key of HEADLINE_METRICS[g.workload]) {
      const def = rs[0]?.m.metrics.find((m) => m.key === key);
      if (!def) continue;
      panels.push({
        title: `${g.name} ${def.label}`,
        unit: `${def.unit}${def.unit === 'ms' || def.unit === 'MB' ? ' (lower is better)' : ' (higher is better)'}`,
        bars: rs.map((r) => {
          legend.set(r.m.row.label, r.m.row.color);
          const s = r.spreads[key] ?? { median: NaN, min: NaN, max: NaN, n: 0 };
          return { label: r.m.row.label, ...s, color: r.m.row.color };
        }),
      });
    }
  }
  return renderChart({
    title: 'Ferry against other brokers (median, whiskers min–max)',
    subtitle,
    panels,
    columns: 4,
    legend: [...legend].map(([label, color]) => ({ label, color })),
  });
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ main

function usage(): string {
  const env = PEERS_ENV_HELP.map(([k, v]) => `  ${k.padEnd(26)} ${v}`).join('\n');
  return `npm run bench:peers [-- --quick]\n\nEnvironment:\n${env}\n`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  const cfg = loadPeersConfig(argv, process.env);
  const b = cfg.base;
  installExitHandlers();
  fs.mkdirSync(b.dir, { recursive: true });
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const machine = machineInfo(b.dir);
  const started = new Date();
  const stamp = `${started.toISOString().replace(/[:.]/g, '-')}-peers${cfg.quick ? '-quick' : ''}`;
  const resultsFile = path.join(RESULTS_DIR, `${stamp}.jsonl`);
  const pgOnly = cfg.only.every((w) => w === 'pg');
  const chartFile =
    process.env['BENCH_CHART'] ??
    (cfg.quick ? path.join(RESULTS_DIR, `${stamp}.svg`) : pgOnly ? DOC_PG_CHART : DOC_CHART);
  const out = fs.openSync(resultsFile, 'a');
  const common = { startedAt: started.toISOString(), quick: cfg.quick, commit: gitCommit() };
  const emit = (line: Record<string, unknown>): void => {
    fs.writeSync(out, `${JSON.stringify({ ...line, ...common })}\n`);
  };

  console.log(
    `Ferry against other brokers${cfg.quick ? ' (--quick)' : ''} — ${started.toISOString()}`,
  );
  console.log(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ` +
      `${(machine.totalMemBytes / 2 ** 30).toFixed(1)} GiB, Node ${machine.node}, ${machine.platform} ${machine.kernel}`,
  );
  console.log(
    `sizes ${cfg.sizes.map(sizeText).join(', ')} · runs ${b.runs} (interleaved) · W1 ${b.count.toLocaleString('en-US')} msgs · ` +
      `W2 Ferry ${b.w2Count.toLocaleString('en-US')} / peers ${cfg.peerW2Count.toLocaleString('en-US')} msgs · ` +
      `W3 ${cfg.w3Calls.toLocaleString('en-US')} calls · W4 ${cfg.w4Count.toLocaleString('en-US')} msgs to ${cfg.w4Subscribers} subscribers · ` +
      `window ${b.window} · prefetch ${b.prefetch}`,
  );
  if (cfg.peerW2Count < b.w2Count && cfg.only.includes('w2')) {
    console.log(
      `note: the peers' W2 backlog is ${cfg.peerW2Count.toLocaleString('en-US')} messages, Ferry's ` +
        `${b.w2Count.toLocaleString('en-US')} at ${sizeText(cfg.sizes[0] ?? 100)} and the peers' at other sizes ` +
        '(BENCH_PEERS_W2_N / BENCH_W2_N), to keep the run short',
    );
  }
  console.log(`results: ${path.relative(process.cwd(), resultsFile)}`);

  // Servers: Ferry is started per run; the peers must already be running.
  const servers: Record<string, unknown> = {};
  if (cfg.systems.includes('ferry')) {
    servers['ferry'] = {
      version: ferryVersion(),
      commit: common.commit,
      syncs: Object.fromEntries(cfg.ferrySyncs.map((s) => [s, ferryDurability(s)])),
    };
    console.log(`Ferry (commit ${common.commit ?? '?'}): sync ${cfg.ferrySyncs.join(', ')}`);
    for (const s of cfg.ferrySyncs) console.log(`  · ${s}: ${ferryDurability(s)}`);
  }
  const peers: { peer: Peer; info: ServerInfo }[] = [];
  for (const id of cfg.systems) {
    if (id === 'ferry') continue;
    const r = await connectPeer(id, cfg);
    if ('why' in r) {
      console.log(`${PEER_ENDPOINTS[id].name}: ${r.why} — skipped`);
      servers[id] = { skipped: true, reason: r.reason };
      emit({ kind: 'skip', system: id, reason: r.reason });
      continue;
    }
    peers.push(r);
    const { peer, info } = r;
    servers[peer.id] = { ...info, client: clientPackage(peer.id) };
    console.log(
      `${peer.name} ${info.version} (client ${clientPackage(peer.id)}): ${info.durability}`,
    );
  }
  let pg: PgReady | null = null;
  if (cfg.only.includes('pg')) {
    const r = await preparePg(cfg);
    if ('why' in r) {
      console.log(`PostgreSQL group: ${r.why} — skipped`);
      servers['postgres'] = { skipped: true, reason: r.why };
      emit({ kind: 'skip', system: 'postgres', reason: r.why });
    } else {
      pg = r;
      servers['postgres'] = {
        version: r.version,
        durability: r.durability,
        clients: r.peers.map((p) => pgPeerVersion(p.id)),
      };
      console.log(`PostgreSQL ${r.version} at ${cfg.pg.url}: ${r.durability}`);
      for (const { id, peer } of r.peers) {
        console.log(
          `  · ${pgPeerVersion(id)}: jobs: ${peer.settings.jobs}; latency: ${peer.settings.latency}`,
        );
      }
      for (const s of r.skipped) {
        console.log(`  · ${s.id}: ${s.why} — skipped`);
        emit({ kind: 'skip', system: s.id, reason: s.why });
      }
    }
  }
  emit({ kind: 'machine', machine, servers, config: { ...cfg, base: undefined, bench: b } });

  const groups = plan(cfg, peers, pg);
  const all: Result[] = [];
  let failures = 0;
  for (const g of groups) {
    const results: Result[] = g.measurements.map((m) => ({
      group: g,
      m,
      outputs: [],
      failures: 0,
      spreads: {},
    }));
    for (let i = 1; i <= b.runs; i++) {
      for (const r of results) {
        if (r.m.skip) continue;
        const label = `${g.name} ${r.m.row.label} run ${i}/${b.runs}`;
        let quiet: { otherPercent: number; waitedMs: number } | null = null;
        if (b.quietWaitMs > 0) {
          quiet = await waitForQuiet(OTHER_LOAD_WARN_PERCENT, b.quietWaitMs);
          if (quiet.otherPercent >= OTHER_LOAD_WARN_PERCENT) {
            console.log(
              `  ! ${label}: machine still busy after ${(quiet.waitedMs / 1000).toFixed(0)} s ` +
                `(other processes at ${quiet.otherPercent.toFixed(0)} % of a core); running anyway`,
            );
          }
        }
        const t0 = Date.now();
        const busy0 = machineBusySeconds();
        const own0 = selfAndChildrenSeconds();
        const serverPid = r.m.row.processName ? findPid(r.m.row.processName) : null;
        const server0 = serverPid === null ? NaN : cpuSeconds(serverPid);
        /** CPU of the peer's server process during the run, % of one core. */
        const serverLoad = (): number =>
          serverPid === null
            ? 0
            : ((cpuSeconds(serverPid) - server0) * 100_000) / Math.max(1, Date.now() - t0);
        /** CPU of everything else (not this process, its children, the peer's server). */
        const otherLoad = (serverPercent: number): number => {
          const other = machineBusySeconds() - busy0 - (selfAndChildrenSeconds() - own0);
          return Math.max(0, (other * 100_000) / Math.max(1, Date.now() - t0) - serverPercent);
        };
        const base = {
          kind: 'run',
          workload: g.workload,
          group: g.name,
          size: g.size,
          system: r.m.row.systemId,
          row: r.m.row.label,
          sync: r.m.row.sync,
          durability: r.m.row.durability,
          run: i,
          shape: g.shape,
        };
        try {
          const o = await runOnce(r.m, label);
          const server = serverLoad();
          const other = otherLoad(server);
          if (other > OTHER_LOAD_WARN_PERCENT) {
            console.log(
              `  ! ${label}: other processes used ${other.toFixed(0)} % of a core meanwhile`,
            );
          }
          o.details['otherCpuPercent'] = other;
          if (serverPid !== null) o.details['serverCpuPercent'] = server;
          o.details['quietWait'] = quiet;
          const lost = o.metrics['lost'] ?? 0;
          if (lost > 0) {
            console.log(
              `  ! ${label}: ${lost.toLocaleString('en-US')} deliveries lost ` +
                `(${String(o.details['closedSubscribers'])} subscriber(s) dropped or closed, ` +
                `${o.details['endedBySettleTimeout'] === true ? 'ended by the settle timeout' : 'all subscribers ended'})`,
            );
          }
          r.outputs.push(o);
          emit({
            ...base,
            ok: true,
            wallSeconds: (Date.now() - t0) / 1000,
            metrics: o.metrics,
            details: o.details,
          });
        } catch (err) {
          failures++;
          r.failures++;
          const message = err instanceof Error ? err.message : String(err);
          console.log(`  ✗ ${label} FAILED: ${message}`);
          emit({
            ...base,
            ok: false,
            error: message,
            timedOut: err instanceof TimeoutError,
            otherCpuPercent: otherLoad(serverLoad()),
            wallSeconds: (Date.now() - t0) / 1000,
          });
        }
      }
    }
    printGroupHeader(g);
    for (const r of results) {
      for (const m of [...r.m.metrics, ...OP_COUNT_METRICS]) {
        r.spreads[m.key] = spread(r.outputs.map((o) => o.metrics[m.key] ?? NaN));
      }
      printResult(r, b.runs);
      emit({
        kind: 'summary',
        workload: g.workload,
        group: g.name,
        size: g.size,
        system: r.m.row.systemId,
        row: r.m.row.label,
        sync: r.m.row.sync,
        durability: r.m.row.durability,
        skipped: r.m.skip ?? null,
        runs: b.runs,
        ok: r.outputs.length,
        shape: g.shape,
        metrics: r.spreads,
      });
    }
    const rl = g.ratios ? g.ratios(results) : ratios(results);
    printRatios(rl);
    for (const l of rl) emit({ kind: 'ratio', ...l });
    all.push(...results);
  }

  const tl = targets(all, cfg.sizes);
  if (tl.length > 0) {
    console.log('\nTargets (100 B, medians of this run):');
    for (const t of tl) {
      const verdict = t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED';
      console.log(`  ${verdict.padEnd(6)} ${t.target}: ${t.measured}`);
      emit({ kind: 'target', ...t });
    }
  }
  fs.closeSync(out);
  await pg?.pool.end().catch(() => {});

  const minutes = (Date.now() - started.getTime()) / 60_000;
  const subtitle =
    `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node} · ${started.toISOString().slice(0, 16)}Z · ` +
    `${b.runs} run(s) · W1 ${b.count.toLocaleString('en-US')} msgs · W2 Ferry ${b.w2Count.toLocaleString('en-US')} / peers ${cfg.peerW2Count.toLocaleString('en-US')} · W3 ${cfg.w3Calls.toLocaleString('en-US')} calls · W4 ${cfg.w4Count.toLocaleString('en-US')} msgs × ${cfg.w4Subscribers} subscribers`;
  fs.mkdirSync(path.dirname(chartFile), { recursive: true });
  fs.writeFileSync(chartFile, chart(all, subtitle));
  const mdFile = path.join(RESULTS_DIR, `${stamp}.md`);
  fs.writeFileSync(mdFile, `${markdown(all, b.runs)}\n`);
  console.log(`\nDone in ${minutes.toFixed(1)} min; ${failures} failed run(s).`);
  console.log(`JSON lines: ${path.relative(process.cwd(), resultsFile)}`);
  console.log(
    `chart: ${path.relative(process.cwd(), chartFile)} · Markdown tables: ${path.relative(process.cwd(), mdFile)}`,
  );
  if (failures > 0) process.exitCode = 1;
}

function ferryVersion(): string {
  try {
    const pkg = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'packages', 'ferrymq-server', 'package.json'), 'utf8'),
    ) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return '?';
  }
}

function clientPackage(id: PeerId): string {
  const name = PEER_ENDPOINTS[id].client;
  return `${name} ${packageVersion(name)}`;
}

main().then(
  () => {
    cleanupSync();
    process.exit(process.exitCode ?? 0);
  },
  (err: unknown) => {
    console.error(`bench:peers: ${err instanceof Error ? err.message : String(err)}`);
    cleanupSync();
    process.exit(2);
  },
);
