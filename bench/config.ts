/** Bench settings: defaults, `--quick`, and BENCH_* environment variables (which win). */
import os from 'node:os';

const WORKLOAD_IDS = [
  'ceilings',
  'w1',
  'w1-paced',
  'w2',
  'w3',
  'w3-durable',
  'w3-submit',
  'fanout',
  'snapshot',
  'curve',
] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

export interface BenchConfig {
  quick: boolean;
  /** W1 and W1-paced message count (and the PUSH/PULL ceiling's). */
  count: number;
  /** W2 backlog size. */
  w2Count: number;
  /** Message size, bytes. */
  size: number;
  runs: number;
  /** Broker --sync policy: always | batch:<ms> | off. */
  sync: string;
  /** Most unconfirmed sends (W1, W1-paced). */
  window: number;
  /** Most unconfirmed sends while W2 produces. */
  w2Window: number;
  prefetch: number;
  /** W1-paced offered rate, msgs/s, and timer tick, ms. */
  rate: number;
  tickMs: number;
  /** W1-paced: measured messages (after the warm-up). */
  pacedCount: number;
  /** W1-paced: unmeasured warm-up at the same rate, ms. */
  warmupMs: number;
  /** DEALER/ROUTER round trips measured (after 1,000 warm-up). */
  rttCount: number;
  /** W3: sequential synchronous calls measured (after a warm-up of W3_WARMUP_CALLS). */
  w3Count: number;
  /** W3 and W3-submit: workers, each its own connection, one job at a time. */
  w3Workers: number;
  /** W3-submit: durable jobs submitted (at most `window` unconfirmed). */
  submitCount: number;
  /** Fan-out: messages published. */
  fanoutCount: number;
  /** Fan-out: live and durable subscribers (each its own connection). */
  fanoutLive: number;
  fanoutDurable: number;
  /** Snapshot: retained keys a new subscriber takes. */
  snapshotKeys: number;
  /** 4 KiB append + fdatasync operations. */
  fsyncCount: number;
  /** Hard limit per run of a workload, ms (W2 has its own setting, same default). */
  timeoutMs: number;
  w2TimeoutMs: number;
  /** Before each run, wait up to this long (ms) for the machine to be quiet. */
  quietWaitMs: number;
  /** Parent folder of the temporary data dirs. */
  dir: string;
  only: WorkloadId[];
  /** Extra node arguments for the broker child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
  brokerNodeArgs: string[];
}

export const ENV_HELP: [string, string][] = [
  ['BENCH_N', 'W1 / W1-paced / PUSH-PULL message count (default 100000; --quick 10000)'],
  ['BENCH_W2_N', 'W2 backlog size (default 1000000; --quick 50000)'],
  ['BENCH_SIZE', 'message size in bytes, ≥ 24 (default 100)'],
  ['BENCH_RUNS', 'repetitions of every measurement (default 3; --quick 1)'],
  ['BENCH_SYNC', 'broker sync policy: always | batch:<ms> | off (default always)'],
  ['BENCH_WINDOW', 'most unconfirmed sends in W1 / W1-paced (default 1000)'],
  ['BENCH_W2_WINDOW', 'most unconfirmed sends while W2 produces (default BENCH_WINDOW)'],
  ['BENCH_PREFETCH', 'consumer prefetch (default 1000)'],
  ['BENCH_RATE', 'W1-paced offered rate, msgs/s (default 10000)'],
  ['BENCH_TICK_MS', 'W1-paced send tick, ms (default 1)'],
  ['BENCH_PACED_N', 'W1-paced measured messages (default BENCH_N; --quick 20000)'],
  ['BENCH_WARMUP_MS', 'W1-paced unmeasured warm-up at the same rate, ms (default 1000)'],
  ['BENCH_RTT_N', 'DEALER/ROUTER round trips (default 20000; --quick 2000)'],
  ['BENCH_W3_N', 'W3 sequential synchronous calls (default 20000; --quick 2000)'],
  ['BENCH_W3_WORKERS', 'W3 / W3-submit workers (default 4)'],
  ['BENCH_FANOUT_N', 'fan-out messages published (default 100000; --quick 10000)'],
  ['BENCH_FANOUT_LIVE', 'fan-out live subscribers (default 10)'],
  ['BENCH_FANOUT_DURABLE', 'fan-out durable subscribers (default 10)'],
  ['BENCH_SNAPSHOT_KEYS', 'snapshot: retained keys (default 100000; --quick 10000)'],
  ['BENCH_SUBMIT_N', 'W3-submit durable jobs (default 20000; --quick 2000)'],
  ['BENCH_FSYNC_N', '4 KiB append + fdatasync operations (default 1000; --quick 200)'],
  ['BENCH_TIMEOUT_S', 'hard limit per run of a workload, s (default 300)'],
  ['BENCH_W2_TIMEOUT_S', 'hard limit per W2 run (produce + drain), s (default 300)'],
  [
    'BENCH_QUIET_S',
    'before each run, wait up to this long for other processes to use < 10 % of a core (default 60; 0 = off)',
  ],
  ['BENCH_DIR', 'parent of the temporary data dirs (default the OS temp dir)'],
  ['BENCH_ONLY', `comma list of ${WORKLOAD_IDS.join(', ')} (default all)`],
  ['BENCH_BROKER_NODE_ARGS', 'extra node flags for the broker child, e.g. --cpu-prof'],
  [
    'BENCH_BROKER_CLI',
    "another build's packages/ferrymq-server/dist/cli/main.js to run as the broker (A/B runs)",
  ],
  [
    'BENCH_CHART',
    'where the SVG chart goes (default docs/benchmarks/ferry.svg; --quick: next to the JSON lines)',
  ],
];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}`);
  return n;
}

export function loadBenchConfig(argv: string[], env: NodeJS.ProcessEnv): BenchConfig {
  const quick = argv.includes('--quick');
  const unknown = argv.filter((a) => a !== '--quick');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]}`);
  const count = int(env, 'BENCH_N', quick ? 10_000 : 100_000);
  const window = int(env, 'BENCH_WINDOW', 1_000);
  const sync = env['BENCH_SYNC'] ?? 'always';
  if (!/^(always|off|batch:\d+)$/.test(sync)) {
    throw new Error('BENCH_SYNC must be always, off or batch:<ms>');
  }
  const only = (env['BENCH_ONLY'] ?? WORKLOAD_IDS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const id of only) {
    if (!(WORKLOAD_IDS as readonly string[]).includes(id)) {
      throw new Error(`BENCH_ONLY: unknown workload ${id} (${WORKLOAD_IDS.join(', ')})`);
    }
  }
  return {
    quick,
    count,
    w2Count: int(env, 'BENCH_W2_N', quick ? 50_000 : 1_000_000),
    size: int(env, 'BENCH_SIZE', 100, 24),
    runs: int(env, 'BENCH_RUNS', quick ? 1 : 3),
    sync,
    window,
    w2Window: int(env, 'BENCH_W2_WINDOW', window),
    prefetch: int(env, 'BENCH_PREFETCH', 1_000),
    rate: int(env, 'BENCH_RATE', 10_000),
    tickMs: int(env, 'BENCH_TICK_MS', 1),
    pacedCount: int(env, 'BENCH_PACED_N', quick ? 20_000 : count),
    warmupMs: int(env, 'BENCH_WARMUP_MS', 1_000, 0),
    rttCount: int(env, 'BENCH_RTT_N', quick ? 2_000 : 20_000),
    fsyncCount: int(env, 'BENCH_FSYNC_N', quick ? 200 : 1_000),
    w3Count: int(env, 'BENCH_W3_N', quick ? 2_000 : 20_000),
    w3Workers: int(env, 'BENCH_W3_WORKERS', 4),
    submitCount: int(env, 'BENCH_SUBMIT_N', quick ? 2_000 : 20_000),
    fanoutCount: int(env, 'BENCH_FANOUT_N', quick ? 10_000 : 100_000),
    fanoutLive: int(env, 'BENCH_FANOUT_LIVE', 10, 0),
    fanoutDurable: int(env, 'BENCH_FANOUT_DURABLE', 10, 0),
    snapshotKeys: int(env, 'BENCH_SNAPSHOT_KEYS', quick ? 10_000 : 100_000),
    timeoutMs: int(env, 'BENCH_TIMEOUT_S', 300) * 1000,
    w2TimeoutMs: int(env, 'BENCH_W2_TIMEOUT_S', 300) * 1000,
    quietWaitMs: int(env, 'BENCH_QUIET_S', 60, 0) * 1000,
    dir: env['BENCH_DIR'] ?? os.tmpdir(),
    only: only as WorkloadId[],
    brokerNodeArgs: (env['BENCH_BROKER_NODE_ARGS'] ?? '').split(/\s+/).filter((s) => s !== ''),
  };
}
