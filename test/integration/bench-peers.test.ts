/**
 * `npm run bench:peers` as a user runs it (the compiled script, a child process): a peer that
 * is not reachable is skipped with a line saying so, never a failure; a bad setting stops it
 * with exit code 2 and a message naming the setting. No load is run (every peer is pointed at
 * a closed loopback port, Ferry is left out).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tmpDir } from '../helpers/broker.js';

const SCRIPT = fileURLToPath(new URL('../../bench/peers/run.js', import.meta.url));
const RUN_TIMEOUT_MS = 60_000;

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

  it('stops on a bad setting with exit code 2, naming it', () => {
    const r = runBench({ BENCH_SIZES: '100,10' });
    assert.equal(r.status, 2, r.out);
    assert.match(r.out, /BENCH_SIZES must be a comma list of integers ≥ 24/);
  });
});
