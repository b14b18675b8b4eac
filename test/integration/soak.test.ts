/**
 * A smoke of the soak (bench/soak): a real broker process, its maximum rate measured for two
 * seconds, then a paced load at half of it for twelve, sampled every two. No timing is
 * asserted (speed is for the benchmarks): only that samples were taken, nothing failed or went
 * undelivered, and the broker's RSS stayed within the bound. Also: `npm run soak` refuses bad
 * flags with a clear message and exit 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { formatSample, formatSummary, runSoak } from '../../bench/soak/soak.js';
import { REPO_ROOT } from '../helpers/broker.js';

const SOAK_MAIN = path.join(REPO_ROOT, 'dist', 'bench', 'soak', 'main.js');
const execFileAsync = promisify(execFile);
const DURATION_MS = 12_000;
const INTERVAL_MS = 2_000;
/** Generous for a short run: the first seconds include the broker's warm-up. */
const SMOKE_MAX_RSS_GROWTH_MIB = 64;

describe('soak', () => {
  it('a short soak at half the measured rate: samples every interval, no errors, everything delivered', async (t) => {
    const result = await runSoak({
      durationMs: DURATION_MS,
      rate: undefined,
      measureMs: 2_000,
      intervalMs: INTERVAL_MS,
      maxRssGrowthMiB: SMOKE_MAX_RSS_GROWTH_MIB,
    });
    for (const s of result.samples) t.diagnostic(formatSample(s));
    for (const line of formatSummary(result).split('\n')) t.diagnostic(line);
    assert.ok(result.maxRate !== undefined && result.maxRate > 0, 'the maximum was measured');
    assert.equal(result.rate, Math.max(1, Math.floor(result.maxRate / 2)));
    assert.ok(result.samples.length >= 4, `${result.samples.length} samples`);
    for (const s of result.samples) {
      assert.ok(s.rssMiB > 0, `RSS read at ${s.atS} s`);
      assert.ok(s.delivered > 0, `deliveries in the interval ending at ${s.atS} s`);
    }
    assert.equal(result.errors, 0);
    assert.equal(result.undelivered, 0);
    assert.ok(result.delivered >= result.sent - result.behind - result.errors);
    assert.deepEqual(result.reasons, []);
    assert.equal(result.failed, false);
  });

  it('npm run soak refuses bad flags with a message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [[], /--minutes is required/],
      [['--minutes', '0'], /--minutes must be a number from 0 to 1440/],
      [['--minutes', 'ten'], /--minutes must be a number/],
      [['--minutes', '1', '--rate', '2.5'], /--rate must be an integer from 1/],
      [['--minutes', '1', '--interval-s', '0'], /--interval-s must be an integer from 1 to 3600/],
      [['--minutes', '1', '--max-rss-growth-mb', '-3'], /--max-rss-growth-mb|Unknown option/],
      [['--minutes', '1', '--fast'], /Unknown option '--fast'/],
    ];
    for (const [args, message] of cases) {
      let code = 0;
      let stderr = '';
      try {
        await execFileAsync(process.execPath, [SOAK_MAIN, ...args], { timeout: 30_000 });
      } catch (err) {
        const e = err as { code?: number; stderr?: string };
        code = typeof e.code === 'number' ? e.code : -1;
        stderr = e.stderr ?? '';
      }
      assert.equal(code, 2, `${args.join(' ')}: exit ${code}, stderr ${stderr}`);
      assert.match(stderr, message, args.join(' '));
      assert.match(stderr, /usage: npm run soak/);
    }
  });
});
