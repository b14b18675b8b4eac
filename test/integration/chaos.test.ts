/**
 * A short chaos run (bench/chaos): a real broker process under mixed load — a queue with an
 * acking consumer, durable jobs with a worker, a durable pub/sub subscription — killed with
 * SIGKILL three times at seeded random points and restarted on the same folder; then the
 * audit. Nothing accepted may be lost or stuck; duplicates are reported (at least once).
 * Also: the `npm run chaos` command line refuses bad flags with a clear message and exit 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { formatAudit } from '../../bench/chaos/chaos-ledger.js';
import { runChaos } from '../../bench/chaos/chaos.js';
import { REPO_ROOT, tmpDir } from '../helpers/broker.js';
import { seeded, testSeed } from '../helpers/seed.js';

const CYCLES = 3;
const DRAIN_TIMEOUT_MS = 90_000;
const CHAOS_MAIN = path.join(REPO_ROOT, 'dist', 'bench', 'chaos', 'main.js');
const execFileAsync = promisify(execFile);

async function chaosCli(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await execFileAsync(process.execPath, [CHAOS_MAIN, ...args], { timeout: 30_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '' };
  }
}

describe('chaos (kill -9 cycles under mixed load)', () => {
  it(
    `${CYCLES} cycles: nothing accepted is lost or stuck, for queues, jobs and durable subscriptions`,
    seeded(async (t) => {
      const result = await runChaos({
        cycles: CYCLES,
        seed: testSeed() >>> 0,
        dataDir: undefined,
        drainTimeoutMs: DRAIN_TIMEOUT_MS,
      });
      for (const line of formatAudit(result.rows).split('\n')) t.diagnostic(line);
      assert.deepEqual(
        result.rows.map((r) => r.kind),
        ['queue', 'jobs', 'pubsub'],
      );
      for (const r of result.rows) {
        assert.ok(r.accepted > 0, `${r.kind}: nothing was accepted`);
        assert.equal(r.lost, 0, `${r.kind}: ${r.lost} lost`);
        assert.equal(r.stuck, 0, `${r.kind}: ${r.stuck} stuck`);
        assert.equal(r.delivered, r.accepted, `${r.kind}: not everything arrived`);
      }
      assert.ok(result.drained, 'the drain timed out');
      assert.equal(result.failed, false);
    }),
  );

  it('npm run chaos refuses bad flags with a message and exit code 2', async () => {
    const full = tmpDir();
    fs.writeFileSync(path.join(full, 'ferry.db'), 'old data');
    const cases: [string[], RegExp][] = [
      [['--cycles', 'many'], /--cycles must be an integer from 1 to 1000, got "many"/],
      [['--cycles', '0'], /--cycles must be an integer from 1 to 1000/],
      [['--seed=-1'], /--seed must be an integer from 0 to 4294967295/],
      [['--seed', '4294967296'], /--seed must be an integer from 0/],
      [['--drain-timeout-ms', '1.5'], /--drain-timeout-ms must be an integer/],
      [['--bogus'], /Unknown option '--bogus'/],
      [['--cycles'], /--cycles/],
      [['extra'], /positional/i],
      [['--data-dir', full], /is not empty/],
    ];
    for (const [args, message] of cases) {
      const r = await chaosCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.match(r.stderr, /usage: npm run chaos/);
    }
  });
});
