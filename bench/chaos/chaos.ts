/**
 * The chaos run: a real broker process (`ferry start`) under the mixed load of chaos-load.ts
 * is killed with SIGKILL and restarted on the same data folder and port, cycle after cycle, at
 * seeded random points; then the load stops, everything still owed is drained, and each kind
 * is audited for lost, duplicated and stuck items (chaos-ledger.ts). `npm run chaos` runs it
 * from main.ts; test/integration/chaos.test.ts runs a short one.
 */
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connect } from 'ferrymq';
import {
  freePort,
  killHard,
  spawnBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
} from '../../test/helpers/broker.js';
import { auditFailed, type AuditRow } from './chaos-ledger.js';
import { ChaosLoad } from './chaos-load.js';

const DEFAULT_CYCLES = 10;
const MAX_CYCLES = 1_000;
/** Each cycle the broker runs for a random time in this range before the kill. */
const MIN_UP_MS = 300;
const MAX_UP_MS = 1_500;
/** Every kind must have had something accepted in a cycle before its kill (the load flows). */
const PROGRESS_TIMEOUT_MS = 60_000;
const DEFAULT_DRAIN_TIMEOUT_MS = 120_000;
const MAX_DRAIN_TIMEOUT_MS = 3_600_000;
const BROKER_HEARTBEAT_MS = 200;
const STOP_TIMEOUT_MS = 10_000;

export interface ChaosOptions {
  cycles: number;
  seed: number;
  /** An empty or new folder; a fresh temporary one when undefined (removed if the run passes). */
  dataDir: string | undefined;
  drainTimeoutMs: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface ChaosResult {
  seed: number;
  cycles: number;
  rows: AuditRow[];
  /** Everything owed arrived before the drain timeout. */
  drained: boolean;
  failed: boolean;
  durationMs: number;
  dataDir: string;
  /** Consuming loops the SDK ended with an error, started again (per kind), and the errors. */
  consumerRestarts: { queue: number; pubsub: number };
  consumerErrors: string[];
}

/** A bad command line: main.ts prints it with the usage and exits with 2. */
export class ChaosUsageError extends Error {}

export const CHAOS_USAGE = `usage: npm run chaos -- [--cycles N] [--seed S] [--data-dir DIR] [--drain-timeout-ms MS]
  --cycles N             kill -9 cycles (1-${MAX_CYCLES}, default ${DEFAULT_CYCLES})
  --seed S               seed of the kill points (32-bit integer, default random)
  --data-dir DIR         the broker's data folder, new or empty (default: a temporary one)
  --drain-timeout-ms MS  how long to wait for everything owed after the last cycle
                         (default ${DEFAULT_DRAIN_TIMEOUT_MS})`;

function intOption(
  raw: string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ChaosUsageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

/** Reads the command line; throws ChaosUsageError on anything it does not understand. */
export function parseChaosArgs(argv: string[]): ChaosOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        cycles: { type: 'string' },
        seed: { type: 'string' },
        'data-dir': { type: 'string' },
        'drain-timeout-ms': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new ChaosUsageError(err instanceof Error ? err.message : String(err));
  }
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const dataDir = str('data-dir');
  if (dataDir !== undefined) {
    if (dataDir.trim() === '') throw new ChaosUsageError('--data-dir must not be empty');
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
      throw new ChaosUsageError(`--data-dir ${dataDir} is not empty (the audit needs a new store)`);
    }
  }
  return {
    cycles: intOption(str('cycles'), 'cycles', 1, MAX_CYCLES, DEFAULT_CYCLES),
    seed: intOption(str('seed'), 'seed', 0, 2 ** 32 - 1, Math.floor(Math.random() * 2 ** 32)),
    dataDir,
    drainTimeoutMs: intOption(
      str('drain-timeout-ms'),
      'drain-timeout-ms',
      1,
      MAX_DRAIN_TIMEOUT_MS,
      DEFAULT_DRAIN_TIMEOUT_MS,
    ),
  };
}

/** mulberry32: a small seeded generator of floats in [0, 1) for the kill points. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Ends a broker the polite way (SIGTERM), or with SIGKILL if it does not stop in time. */
async function stopBroker(b: ChildBroker): Promise<void> {
  b.child.kill('SIGTERM');
  const timer = setTimeout(() => b.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await b.exited;
  clearTimeout(timer);
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  const started = Date.now();
  const random = seededRandom(options.seed);
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? tmpDir('ferry-chaos-');
  fs.mkdirSync(dataDir, { recursive: true });
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const args = ['--data', dataDir, '--bind', endpoint, '--heartbeat', String(BROKER_HEARTBEAT_MS)];
  let broker = await spawnBroker(args);
  const load = new ChaosLoad();
  let passed = false;
  try {
    await load.start(endpoint);
    const ledgers = [load.queue, load.jobs, load.pubsub];
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      const before = ledgers.map((l) => l.accepted.size);
      const upMs = MIN_UP_MS + Math.floor(random() * (MAX_UP_MS - MIN_UP_MS));
      await delay(upMs);
      await waitFor(
        () => ledgers.every((l, i) => l.accepted.size > before[i]!),
        `every kind accepted something in cycle ${cycle}`,
        { timeoutMs: PROGRESS_TIMEOUT_MS, intervalMs: 20 },
      );
      load.noteKill();
      await killHard(broker);
      broker = await spawnBroker(args);
      log(
        `cycle ${cycle}/${options.cycles}: killed after ${upMs} ms; accepted so far: ` +
          ledgers.map((l) => `${l.kind} ${l.accepted.size}`).join(', '),
      );
    }
    await load.stopProducing();
    const admin = await connect(endpoint, { heartbeatMs: 200, requestTimeoutMs: 30_000 });
    try {
      log('draining');
      const drained = await load.drain(admin, Date.now() + options.drainTimeoutMs);
      const rows = await load.audit(admin);
      const failed = auditFailed(rows) || !drained;
      passed = !failed;
      return {
        seed: options.seed,
        cycles: options.cycles,
        rows,
        drained,
        failed,
        durationMs: Date.now() - started,
        dataDir,
        consumerRestarts: { ...load.consumerRestarts },
        consumerErrors: [...load.consumerErrors],
      };
    } finally {
      await admin.close({ timeoutMs: 500 }).catch(() => {});
    }
  } finally {
    await load.close();
    await stopBroker(broker);
    // A failing run keeps its folder for a look; a passing temporary one is removed.
    if (ownDir && passed) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
