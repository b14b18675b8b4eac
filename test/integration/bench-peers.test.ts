/**
 * `npm run bench:peers` as a user runs it (the compiled script, a child process): a peer that
 * is not reachable is skipped with a line saying so, never a failure; a bad setting stops it
 * with exit code 2 and a message naming the setting (no load: every peer is pointed at a
 * closed loopback port, Ferry is left out). W3 on Ferry, a few calls: the transient and the
 * durable call rows, each with the broker's counts per call. With the peers on this machine
 * (RabbitMQ, NATS, Redis answering, their adapters compiled by `npm run prebench:peers`), the
 * same with their transient and durable rows and issue 13's W3 targets; skipped, saying so,
 * where they are not. The PostgreSQL group (BENCH_ONLY=pg): skipped with a line when
 * PostgreSQL does not answer; against the local PostgreSQL (which must answer: this fails,
 * never skips, without it), a few jobs, messages and calls per row, every Ferry row with the
 * brokers' counts per operation, graphile-worker's and pg-boss' rows where their adapters are
 * compiled.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tmpDir } from '../helpers/broker.js';
import { checkListening } from '../../bench/peers/load-peer.js';

const SCRIPT = fileURLToPath(new URL('../../bench/peers/run.js', import.meta.url));
const RUN_TIMEOUT_MS = 60_000;
/** W3 runs: a few calls per row, two brokers started (transient, durable), ms. */
const W3_RUN_TIMEOUT_MS = 120_000;
const W3_CALLS = 40;
const PEER_PORTS = [5672, 4222, 6379];
const PEER_CONNECT_TIMEOUT_MS = 1_000;
/** The PostgreSQL group with a few jobs, messages and calls per row (14 runs), ms. */
const PG_RUN_TIMEOUT_MS = 240_000;
const PG_URL = process.env['FERRY_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432/test';

interface JsonLine {
  kind: string;
  system?: string;
  group?: string;
  row?: string;
  ok?: boolean;
  skipped?: string | null;
  metrics?: Record<string, number>;
  target?: string;
  measured?: string;
}

/** The JSON lines the run named, removed (with its Markdown tables) once read. */
function takeJsonLines(out: string): JsonLine[] {
  const jsonl = /JSON lines: (\S+)/.exec(out)?.[1];
  assert.ok(jsonl, 'the JSON lines file is named');
  const file = path.resolve(jsonl);
  try {
    return fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as JsonLine);
  } finally {
    fs.rmSync(file, { force: true });
    fs.rmSync(file.replace(/\.jsonl$/, '.md'), { force: true });
  }
}

/** The measured run of `row` in the W3 group of `kind` (transient or durable). */
function w3Run(lines: JsonLine[], kind: string, row: string): JsonLine {
  const r = lines.find((l) => l.kind === 'run' && l.group === `W3 ${kind} 100 B` && l.row === row);
  assert.ok(r, `a W3 ${kind} run of ${row}`);
  assert.equal(r.ok, true, `${row} (${kind}) ran`);
  return r;
}

function spawnW3(env: Record<string, string>, dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--quick'], {
    env: {
      ...process.env,
      BENCH_QUIET_S: '0',
      BENCH_ONLY: 'w3',
      BENCH_W3_N: String(W3_CALLS),
      BENCH_FERRY_SYNCS: 'always',
      BENCH_CHART: path.join(dir, 'chart.svg'),
      ...env,
    },
    encoding: 'utf8',
    timeout: W3_RUN_TIMEOUT_MS,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function runBench(env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--quick'], {
    env: { ...process.env, BENCH_QUIET_S: '0', ...env },
    encoding: 'utf8',
    timeout: RUN_TIMEOUT_MS,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('npm run bench:peers', () => {
  it('skips a peer that does not answer, with a line saying so, and exits 0', () => {
    const dir = tmpDir('ferry-bench-skip-');
    try {
      const r = runBench({
        BENCH_SYSTEMS: 'rabbitmq,jetstream,bullmq',
        BENCH_ONLY: 'w1',
        // Port 1–3 on loopback: nothing listens there.
        BENCH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1',
        BENCH_NATS_URL: '127.0.0.1:2',
        BENCH_REDIS_URL: 'redis://127.0.0.1:3',
        BENCH_CHART: path.join(dir, 'chart.svg'),
      });
      assert.equal(r.status, 0, r.out);
      for (const name of ['RabbitMQ', 'NATS JetStream', 'BullMQ']) {
        assert.match(r.out, new RegExp(`${name}: not reachable \\(.*\\) — skipped`));
      }
      assert.match(r.out, /0 failed run\(s\)/);
      const jsonl = /JSON lines: (\S+)/.exec(r.out)?.[1];
      assert.ok(jsonl, 'the JSON lines file is named');
      const lines = fs
        .readFileSync(path.resolve(jsonl), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; system?: string });
      assert.deepEqual(
        lines.filter((l) => l.kind === 'skip').map((l) => l.system),
        ['rabbitmq', 'jetstream', 'bullmq'],
      );
      assert.ok(fs.readFileSync(path.join(dir, 'chart.svg'), 'utf8').startsWith('<svg'));
      fs.rmSync(path.resolve(jsonl), { force: true });
      fs.rmSync(path.resolve(jsonl).replace(/\.jsonl$/, '.md'), { force: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('measures W3 transient and durable calls on Ferry, with broker counts per call', () => {
    const dir = tmpDir('ferry-bench-w3-');
    try {
      const r = spawnW3({ BENCH_SYSTEMS: 'ferry' }, dir);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /^W3 transient calls: /m);
      assert.match(r.out, /^W3 durable calls \(job queues\): /m);
      assert.match(r.out, /^Ferry call .* not stored \(a call\)$/m);
      assert.match(r.out, /^Ferry durable always .* job \+ result, fsync’d before ack$/m);
      assert.match(r.out, /per op: .* fsyncs, .* commits, .* SQL statements, .* ZeroMQ messages/);
      const lines = takeJsonLines(r.out);
      const transient = w3Run(lines, 'transient', 'Ferry call').metrics!;
      const durable = w3Run(lines, 'durable', 'Ferry durable always').metrics!;
      // A durable call under `always` is answered after an fsync, one call at a time.
      assert.ok(durable['fsyncsPerOp']! >= 1, `durable fsyncs per call ${durable['fsyncsPerOp']}`);
      assert.ok(
        durable['commitsPerOp']! >= 1,
        `durable commits per call ${durable['commitsPerOp']}`,
      );
      assert.ok(durable['sqlPerOp']! > transient['sqlPerOp']!, 'a durable call runs more SQL');
      // Call, job, result, answer: at least 4 ZeroMQ messages either way.
      assert.ok(
        transient['zmqPerOp']! >= 4,
        `transient messages per call ${transient['zmqPerOp']}`,
      );
      assert.ok(durable['zmqPerOp']! >= 4, `durable messages per call ${durable['zmqPerOp']}`);
      assert.ok(transient['fsyncsPerOp']! < 1, 'a transient call waits for no fsync');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('measures the peers’ transient and durable calls beside Ferry’s, with the W3 targets', async (t) => {
    const adapters = fileURLToPath(new URL('../../bench/peers/adapters/', import.meta.url));
    const missing: string[] = [];
    for (const id of ['rabbitmq', 'jetstream', 'bullmq']) {
      if (!fs.existsSync(path.join(adapters, `${id}.js`))) missing.push(`the ${id} adapter`);
    }
    for (const port of PEER_PORTS) {
      await checkListening('127.0.0.1', port, PEER_CONNECT_TIMEOUT_MS).catch(() =>
        missing.push(`127.0.0.1:${port}`),
      );
    }
    if (missing.length > 0) {
      t.skip(`no ${missing.join(', ')} (npm run prebench:peers, and the peers running)`);
      return;
    }
    const dir = tmpDir('ferry-bench-w3-peers-');
    try {
      const r = spawnW3({}, dir);
      assert.equal(r.status, 0, r.out);
      const lines = takeJsonLines(r.out);
      for (const row of ['Ferry call', 'RabbitMQ RPC', 'NATS core']) w3Run(lines, 'transient', row);
      for (const row of [
        'Ferry durable always',
        'RabbitMQ RPC confirmed',
        'NATS JetStream jobs',
        'BullMQ',
      ]) {
        w3Run(lines, 'durable', row);
      }
      const bullmqTransient = lines.find(
        (l) => l.kind === 'summary' && l.group === 'W3 transient 100 B' && l.system === 'bullmq',
      );
      assert.match(bullmqTransient?.skipped ?? '', /a BullMQ call is a job/);
      const targets = lines.filter((l) => l.kind === 'target').map((l) => l.target);
      assert.deepEqual(targets, [
        'W3 transient: Ferry call p50 ≤ RabbitMQ RPC p50',
        'W3 transient: Ferry call calls/s ≥ 0.9× NATS core calls/s',
        'W3 durable: Ferry durable always p50 ≤ NATS JetStream jobs p50',
        'W3 durable: Ferry durable always ≤ 1 fsync per call',
      ]);
      assert.match(r.out, /^Targets \(100 B, medians of this run\):$/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('skips the PostgreSQL group, saying so, when PostgreSQL does not answer', () => {
    const dir = tmpDir('ferry-bench-pg-skip-');
    try {
      const r = runBench({
        BENCH_SYSTEMS: 'ferry',
        BENCH_ONLY: 'pg',
        BENCH_PG_URL: 'postgres://postgres@127.0.0.1:1/test',
        BENCH_CHART: path.join(dir, 'chart.svg'),
      });
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /^PostgreSQL group: PostgreSQL at \S+ not reachable \(.*\) — skipped$/m);
      const lines = takeJsonLines(r.out);
      assert.deepEqual(
        lines.filter((l) => l.kind === 'skip').map((l) => l.system),
        ['postgres'],
      );
      assert.equal(lines.filter((l) => l.kind === 'run').length, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the PostgreSQL group on the local PostgreSQL, with Ferry’s counts per op', async (t) => {
    const dir = tmpDir('ferry-bench-pg-');
    try {
      const r = spawnSync(process.execPath, [SCRIPT, '--quick'], {
        env: {
          ...process.env,
          BENCH_QUIET_S: '0',
          BENCH_SYSTEMS: 'ferry',
          BENCH_ONLY: 'pg',
          BENCH_PG_URL: PG_URL,
          BENCH_PG_JOBS: '300',
          BENCH_PG_BATCH: '100',
          BENCH_PG_RATE: '50',
          BENCH_PG_PACED_S: '1',
          BENCH_PG_W1_N: '300',
          BENCH_PG_CALLS: '20',
          BENCH_CHART: path.join(dir, 'chart.svg'),
        },
        encoding: 'utf8',
        timeout: PG_RUN_TIMEOUT_MS,
      });
      const out = `${r.stdout}${r.stderr}`;
      assert.doesNotMatch(out, /PostgreSQL group: .* skipped/, 'PostgreSQL must answer');
      const lines = takeJsonLines(out);
      const runs = lines.filter((l) => l.kind === 'run');
      const ran = (group: string, row: string): JsonLine => {
        const x = runs.find((l) => l.group === group && l.row === row);
        assert.ok(x, `a ${group} run of ${row}`);
        assert.equal(x.ok, true, `${group}: ${row} ran`);
        return x;
      };
      for (const row of ['Ferry SQLite (baseline)', 'Ferry PG, 1 broker']) {
        const jobs = ran('PG jobs', row).metrics!;
        assert.ok(jobs['processPerSec']! > 0 && jobs['enqueuePerSec']! > 0);
        assert.ok(jobs['sqlPerOp']! > 0, `${row}: SQL statements per job`);
        assert.ok(
          jobs['commitsPerOp']! > 0 && jobs['commitsPerOp']! < 1,
          `${row}: commits per job`,
        );
        ran('PG latency', row);
      }
      for (const row of [
        'Ferry SQLite (baseline)',
        'Ferry PG, 1 broker',
        'Ferry PG, 2 brokers A→B',
      ]) {
        assert.ok(ran('PG queue 1/2 brokers', row).metrics!['sqlPerOp']! > 0);
      }
      const durable = ran('PG calls 1/2 brokers', 'Ferry PG, 1 broker, durable call').metrics!;
      const transient = ran('PG calls 1/2 brokers', 'Ferry PG, 1 broker, call').metrics!;
      assert.ok(durable['commitsPerOp']! >= 1, 'a durable call commits its job and its result');
      // A stored call costs at least its insert and its finish (2 statements); what a
      // transient one shows is the shared store's background reads (counters, the publish
      // relay), a few a second whatever the load.
      assert.ok(
        transient['sqlPerOp']! < 1,
        `a call with its worker on the same broker is not stored (${transient['sqlPerOp']} SQL/call)`,
      );
      assert.ok(durable['sqlPerOp']! >= 2, 'a durable call stores its job and its result');
      assert.match(out, /^ {2}Ferry PG, 1 broker ÷ Ferry SQLite \(baseline\): /m);
      // graphile-worker and pg-boss: where bench/peers' clients and adapters are in place.
      const adapters = fileURLToPath(new URL('../../bench/peers/adapters/', import.meta.url));
      if (!fs.existsSync(path.join(adapters, 'pg-boss.js'))) {
        t.diagnostic('graphile-worker / pg-boss adapters not compiled (npm run prebench:peers)');
        return;
      }
      for (const row of ['graphile-worker', 'pg-boss']) ran('PG jobs', row);
      ran('PG latency', 'graphile-worker');
      ran('PG latency', 'pg-boss (notify)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops on a bad setting with exit code 2, naming it', () => {
    const r = runBench({ BENCH_SIZES: '100,10' });
    assert.equal(r.status, 2, r.out);
    assert.match(r.out, /BENCH_SIZES must be a comma list of integers ≥ 24/);
  });
});
