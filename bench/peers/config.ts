/**
 * `bench:peers` settings: defaults, `--quick`, and BENCH_* environment variables (which win).
 * The Ferry-side settings (window, prefetch, W1 count, W2 count, timeouts, quiet wait, data
 * dir) are the ones `npm run bench` reads (bench/config.ts), so both benches agree.
 */
import { loadBenchConfig, type BenchConfig } from '../config.js';

const PEER_WORKLOAD_IDS = ['ceilings', 'w1', 'w1-paced', 'w2', 'w3', 'w4', 'pg'] as const;
export type PeerWorkloadId = (typeof PEER_WORKLOAD_IDS)[number];

const SYSTEM_IDS = ['ferry', 'rabbitmq', 'jetstream', 'bullmq'] as const;
export type SystemId = (typeof SYSTEM_IDS)[number];
/** The other brokers: every system but Ferry. */
export type PeerId = Exclude<SystemId, 'ferry'>;

/** Message sizes of a default run, bytes. */
const DEFAULT_SIZES_BYTES = [100, 1024];
/** W2 backlog for the peers (Ferry's is BENCH_W2_N, 1,000,000): keeps the run under ~25 min. */
const DEFAULT_PEER_W2_COUNT = 200_000;
const QUICK_PEER_W2_COUNT = 20_000;
/**
 * W1-paced against the peers: an offered rate every system here sustains at 100 B (BullMQ, the
 * slowest, tops out at 5,000–9,000 msgs/s in W1), so the latencies compare a message's trip,
 * not a backlog. Measured messages after the warm-up (BENCH_WARMUP_MS, 1 s).
 */
const DEFAULT_PEERS_RATE_PER_SEC = 2_000;
const DEFAULT_PEERS_PACED_COUNT = 20_000;
const QUICK_PEERS_PACED_COUNT = 4_000;
/** W3: sequential calls, workers, params/result size. */
const DEFAULT_W3_CALLS = 20_000;
const QUICK_W3_CALLS = 1_000;
const DEFAULT_W3_WORKERS = 4;
export const W3_PAYLOAD_BYTES = 100;
/** W3: one call's time limit, ms. */
export const W3_CALL_TIMEOUT_MS = 10_000;
/** W4 fan-out: messages per size, subscribers. */
const DEFAULT_W4_COUNT = 20_000;
const QUICK_W4_COUNT = 2_000;
const DEFAULT_W4_SUBSCRIBERS = 10;
/**
 * W4: once every publish is confirmed, a run ends after this long without a new delivery at any
 * subscriber (the missing ones count as lost), s.
 */
const DEFAULT_W4_SETTLE_S = 5;
/**
 * Ferry's sync policies: `always` (its default; RabbitMQ also fsyncs before confirming),
 * `batch:1000` (acknowledged once written to the OS, fsync'd every second; JetStream acks
 * before fsync and syncs every 2 minutes by default) and `off` (never fsync'd; Redis here keeps
 * nothing on disk at all).
 */
const DEFAULT_FERRY_SYNCS = ['always', 'batch:1000', 'off'];
/**
 * W2 (the longest workload: 1,000,000 messages per Ferry run) runs Ferry with `always` and
 * `off` only, the two ends; `batch:1000` lies between them (it is `off` plus a timer fsync).
 */
const DEFAULT_W2_FERRY_SYNCS = ['always', 'off'];
/** Before each run, wait up to this long for a quiet machine, s (`npm run bench`: 60). */
const DEFAULT_PEERS_QUIET_S = 20;
/** BullMQ worker concurrency in W1/W2: jobs in progress at once, as close to prefetch as it gets. */
const DEFAULT_BULLMQ_CONCURRENCY = 1_000;

/**
 * The PostgreSQL group (`pg`, bench/peers/pg-group.ts): job queues on one local PostgreSQL,
 * each system in a schema of its own that the run creates and drops. Counts are scaled so the
 * whole group takes a few minutes on 2 cores (research A.2 ran 100,000 jobs per system).
 */
const PG_SYSTEM_IDS = ['ferry', 'graphile-worker', 'pg-boss'] as const;
export type PgSystemId = (typeof PG_SYSTEM_IDS)[number];
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const DEFAULT_PG_JOBS = 20_000;
const QUICK_PG_JOBS = 2_000;
/** Jobs per enqueue call (addJobs / insert), and Ferry submits in flight together. */
const DEFAULT_PG_BATCH = 1_000;
/** Paced latency: single adds at this rate, for this long (after 1 s of warm-up). */
const DEFAULT_PG_RATE_PER_SEC = 100;
const DEFAULT_PG_PACED_S = 10;
const QUICK_PG_PACED_S = 2;
/** Two brokers on one store: W1-like messages, and sequential calls. */
const DEFAULT_PG_W1_COUNT = 20_000;
const QUICK_PG_W1_COUNT = 2_000;
const DEFAULT_PG_CALLS = 1_000;
const QUICK_PG_CALLS = 100;

const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const DEFAULT_NATS_URL = '127.0.0.1:4222';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

interface PgBenchConfig {
  url: string;
  systems: PgSystemId[];
  /** Jobs enqueued, then processed, per system. */
  jobs: number;
  batch: number;
  /** Paced single adds: rate, jobs/s, and measured jobs (rate × BENCH_PG_PACED_S). */
  rate: number;
  pacedCount: number;
  w1Count: number;
  calls: number;
}

export interface PeersConfig {
  quick: boolean;
  /** The Ferry bench's settings (its `size` and `sync` are overridden per measurement). */
  base: BenchConfig;
  sizes: number[];
  ferrySyncs: string[];
  /** The subset of ferrySyncs W2 runs. */
  w2FerrySyncs: string[];
  systems: SystemId[];
  only: PeerWorkloadId[];
  peerW2Count: number;
  /** W1-paced (first size only): offered rate, msgs/s, and measured messages. */
  pacedRate: number;
  pacedCount: number;
  w3Calls: number;
  w3Workers: number;
  w4Count: number;
  w4Subscribers: number;
  w4SettleMs: number;
  bullmqConcurrency: number;
  amqpUrl: string;
  natsUrl: string;
  redisUrl: string;
  pg: PgBenchConfig;
}

export const PEERS_ENV_HELP: [string, string][] = [
  ['BENCH_SIZES', 'comma list of message sizes, bytes, each ≥ 24 (default 100,1024)'],
  ['BENCH_RUNS', 'repetitions of every measurement (default 3; --quick 1)'],
  ['BENCH_N', 'W1 messages per system (default 100000; --quick 10000)'],
  [
    'BENCH_W2_N',
    "Ferry's W2 backlog at the first size (default 1000000; --quick 50000); other sizes use BENCH_PEERS_W2_N",
  ],
  ['BENCH_PEERS_W2_N', `the peers' W2 backlog (default ${DEFAULT_PEER_W2_COUNT}; --quick 20000)`],
  [
    'BENCH_PEERS_RATE',
    `W1-paced offered rate for every system, msgs/s (default ${DEFAULT_PEERS_RATE_PER_SEC})`,
  ],
  [
    'BENCH_PEERS_PACED_N',
    `W1-paced measured messages, after BENCH_WARMUP_MS of warm-up (default ${DEFAULT_PEERS_PACED_COUNT}; --quick ${QUICK_PEERS_PACED_COUNT})`,
  ],
  ['BENCH_W3_N', `W3 sequential calls (default ${DEFAULT_W3_CALLS}; --quick 1000)`],
  ['BENCH_W3_WORKERS', `W3 workers (default ${DEFAULT_W3_WORKERS})`],
  [
    'BENCH_W4_N',
    `W4 fan-out messages per size (default ${DEFAULT_W4_COUNT}; --quick ${QUICK_W4_COUNT})`,
  ],
  ['BENCH_W4_SUBSCRIBERS', `W4 subscribers, a connection each (default ${DEFAULT_W4_SUBSCRIBERS})`],
  [
    'BENCH_W4_SETTLE_S',
    `W4: after the last publish is confirmed, end a run after this long with no new delivery; what is missing counts as lost (default ${DEFAULT_W4_SETTLE_S})`,
  ],
  ['BENCH_FERRY_SYNCS', `Ferry's sync policies (default ${DEFAULT_FERRY_SYNCS.join(',')})`],
  [
    'BENCH_W2_FERRY_SYNCS',
    `Ferry's sync policies in W2 (default ${DEFAULT_W2_FERRY_SYNCS.join(',')}, those of BENCH_FERRY_SYNCS)`,
  ],
  ['BENCH_SYSTEMS', `comma list of ${SYSTEM_IDS.join(', ')} (default all)`],
  ['BENCH_ONLY', `comma list of ${PEER_WORKLOAD_IDS.join(', ')} (default all)`],
  ['BENCH_BULLMQ_CONCURRENCY', `BullMQ worker concurrency in W1/W2 (default 1000)`],
  ['BENCH_WINDOW', 'most unconfirmed sends (default 1000)'],
  ['BENCH_PREFETCH', 'consumer prefetch (default 1000)'],
  ['BENCH_TIMEOUT_S', 'hard limit per run of W1 / W3 / a ceiling, s (default 300)'],
  ['BENCH_W2_TIMEOUT_S', 'hard limit per W2 run, s (default 300)'],
  [
    'BENCH_QUIET_S',
    `before each run, wait up to this long for other processes to use < 10 % of a core (default ${DEFAULT_PEERS_QUIET_S}; 0 = off)`,
  ],
  ['BENCH_PG_URL', `the PostgreSQL of the pg group (default ${DEFAULT_PG_URL})`],
  ['BENCH_PG_SYSTEMS', `pg group: comma list of ${PG_SYSTEM_IDS.join(', ')} (default all)`],
  [
    'BENCH_PG_JOBS',
    `pg group: jobs enqueued then processed per system (default ${DEFAULT_PG_JOBS}; --quick ${QUICK_PG_JOBS})`,
  ],
  ['BENCH_PG_BATCH', `pg group: jobs per enqueue batch (default ${DEFAULT_PG_BATCH})`],
  ['BENCH_PG_RATE', `pg group: paced single adds, jobs/s (default ${DEFAULT_PG_RATE_PER_SEC})`],
  [
    'BENCH_PG_PACED_S',
    `pg group: seconds of paced adds measured (default ${DEFAULT_PG_PACED_S}; --quick ${QUICK_PG_PACED_S})`,
  ],
  [
    'BENCH_PG_W1_N',
    `pg group: messages of the one/two-broker queue run (default ${DEFAULT_PG_W1_COUNT}; --quick ${QUICK_PG_W1_COUNT})`,
  ],
  [
    'BENCH_PG_CALLS',
    `pg group: sequential calls of the one/two-broker call run (default ${DEFAULT_PG_CALLS}; --quick ${QUICK_PG_CALLS})`,
  ],
  ['BENCH_AMQP_URL', `RabbitMQ (default ${DEFAULT_AMQP_URL})`],
  ['BENCH_NATS_URL', `NATS (default ${DEFAULT_NATS_URL})`],
  ['BENCH_REDIS_URL', `Redis for BullMQ (default ${DEFAULT_REDIS_URL})`],
];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}`);
  return n;
}

function list<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[]): T[] {
  const items = (env[name] ?? allowed.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const id of items) {
    if (!(allowed as readonly string[]).includes(id)) {
      throw new Error(`${name}: unknown ${id} (${allowed.join(', ')})`);
    }
  }
  return items as T[];
}

export function loadPeersConfig(argv: string[], env: NodeJS.ProcessEnv): PeersConfig {
  const quick = argv.includes('--quick');
  const unknown = argv.filter((a) => a !== '--quick');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]}`);
  // BENCH_ONLY names this bench's workloads, not the Ferry bench's.
  const baseEnv = {
    ...env,
    BENCH_ONLY: undefined,
    BENCH_QUIET_S: env['BENCH_QUIET_S'] ?? String(DEFAULT_PEERS_QUIET_S),
  };
  const base = loadBenchConfig(quick ? ['--quick'] : [], baseEnv);
  const sizes = (env['BENCH_SIZES'] ?? DEFAULT_SIZES_BYTES.join(','))
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(Number);
  if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 24)) {
    throw new Error('BENCH_SIZES must be a comma list of integers ≥ 24');
  }
  const ferrySyncs = (env['BENCH_FERRY_SYNCS'] ?? DEFAULT_FERRY_SYNCS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of ferrySyncs) {
    if (!/^(always|off|batch:\d+)$/.test(s)) {
      throw new Error('BENCH_FERRY_SYNCS: each must be always, off or batch:<ms>');
    }
  }
  const w2Given = env['BENCH_W2_FERRY_SYNCS'];
  const w2FerrySyncs = (w2Given ?? DEFAULT_W2_FERRY_SYNCS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of w2FerrySyncs) {
    // The default names policies BENCH_FERRY_SYNCS may leave out; a value given is checked.
    if (w2Given !== undefined && !ferrySyncs.includes(s)) {
      throw new Error(
        `BENCH_W2_FERRY_SYNCS: ${s} is not one of BENCH_FERRY_SYNCS (${ferrySyncs.join(', ')})`,
      );
    }
  }
  return {
    quick,
    base,
    sizes,
    ferrySyncs,
    w2FerrySyncs: w2FerrySyncs.filter((s) => ferrySyncs.includes(s)),
    systems: list(env, 'BENCH_SYSTEMS', SYSTEM_IDS),
    only: list(env, 'BENCH_ONLY', PEER_WORKLOAD_IDS),
    peerW2Count: int(env, 'BENCH_PEERS_W2_N', quick ? QUICK_PEER_W2_COUNT : DEFAULT_PEER_W2_COUNT),
    pacedRate: int(env, 'BENCH_PEERS_RATE', DEFAULT_PEERS_RATE_PER_SEC),
    pacedCount: int(
      env,
      'BENCH_PEERS_PACED_N',
      quick ? QUICK_PEERS_PACED_COUNT : DEFAULT_PEERS_PACED_COUNT,
    ),
    w3Calls: int(env, 'BENCH_W3_N', quick ? QUICK_W3_CALLS : DEFAULT_W3_CALLS),
    w3Workers: int(env, 'BENCH_W3_WORKERS', DEFAULT_W3_WORKERS),
    w4Count: int(env, 'BENCH_W4_N', quick ? QUICK_W4_COUNT : DEFAULT_W4_COUNT),
    w4Subscribers: int(env, 'BENCH_W4_SUBSCRIBERS', DEFAULT_W4_SUBSCRIBERS),
    w4SettleMs: int(env, 'BENCH_W4_SETTLE_S', DEFAULT_W4_SETTLE_S) * 1000,
    bullmqConcurrency: int(env, 'BENCH_BULLMQ_CONCURRENCY', DEFAULT_BULLMQ_CONCURRENCY),
    amqpUrl: env['BENCH_AMQP_URL'] ?? DEFAULT_AMQP_URL,
    natsUrl: env['BENCH_NATS_URL'] ?? DEFAULT_NATS_URL,
    redisUrl: env['BENCH_REDIS_URL'] ?? DEFAULT_REDIS_URL,
    pg: loadPgConfig(quick, env),
  };
}

function loadPgConfig(quick: boolean, env: NodeJS.ProcessEnv): PgBenchConfig {
  const url = env['BENCH_PG_URL'] ?? DEFAULT_PG_URL;
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new Error('BENCH_PG_URL must be a postgres:// URL');
  }
  const rate = int(env, 'BENCH_PG_RATE', DEFAULT_PG_RATE_PER_SEC);
  const seconds = int(env, 'BENCH_PG_PACED_S', quick ? QUICK_PG_PACED_S : DEFAULT_PG_PACED_S);
  return {
    url,
    systems: list(env, 'BENCH_PG_SYSTEMS', PG_SYSTEM_IDS),
    jobs: int(env, 'BENCH_PG_JOBS', quick ? QUICK_PG_JOBS : DEFAULT_PG_JOBS),
    batch: int(env, 'BENCH_PG_BATCH', DEFAULT_PG_BATCH),
    rate,
    pacedCount: rate * seconds,
    w1Count: int(env, 'BENCH_PG_W1_N', quick ? QUICK_PG_W1_COUNT : DEFAULT_PG_W1_COUNT),
    calls: int(env, 'BENCH_PG_CALLS', quick ? QUICK_PG_CALLS : DEFAULT_PG_CALLS),
  };
}
