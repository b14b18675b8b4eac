/**
 * A short run of the fuzz harness (bench/fuzz, `npm run fuzz`), with a fixed seed: every
 * ZeroMQ endpoint of every dialect and the HTTP gateway flooded with hostile input while a
 * healthy Ferry client pings. The broker must survive every flood, keep answering the healthy
 * client during and after it, and count what its peer guards saw. The long run (≥ 1,000,000
 * messages per endpoint) and its last result are in docs/operations.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FUZZ_OPTIONS, FUZZ_TARGETS, runFuzz } from '../../bench/fuzz/fuzz.js';

const FUZZ_TEST_SEED = 20_261_203;
const FUZZ_TEST_FRAMES = 1_000;
/** Endpoints served by a ROUTER, whose peer guard counts invalid frames. */
const GUARDED = [
  'ferry',
  'mdp',
  'zmws-client',
  'zmws-worker',
  'pzq-receive',
  'pzq-monitor',
  'clone-snapshot',
];

describe('fuzz harness (short run)', { timeout: 300_000 }, () => {
  it('every endpoint survives a seeded flood while a healthy client is answered', async () => {
    const report = await runFuzz({
      ...DEFAULT_FUZZ_OPTIONS,
      seed: FUZZ_TEST_SEED,
      frames: FUZZ_TEST_FRAMES,
      baselinePings: 20,
      log: (line) => process.stdout.write(`# ${line}\n`),
    });
    assert.deepEqual(
      report.targets.map((t) => t.target),
      [...FUZZ_TARGETS],
    );
    /** The counters are per dialect, cumulative: each flood must move its dialect's. */
    const invalidSoFar = new Map<string, number>();
    for (const t of report.targets) {
      const what = `${t.target} (seed ${report.seed})`;
      assert.equal(t.sent, FUZZ_TEST_FRAMES, `${what}: every message sent`);
      assert.ok(t.brokerAlive, `${what}: the broker survived`);
      // Every round trip of the healthy client completed (a lost one throws in runFuzz), and it
      // got at least one answer while the flood was being sent.
      assert.ok(
        t.duringFlood.count >= 1,
        `${what}: the healthy client was answered during the flood`,
      );
      if (t.target === 'http') {
        assert.equal(t.replies, t.sent, `${what}: every HTTP request answered`);
        assert.equal(t.serverErrors, 0, `${what}: no 5xx for hostile requests`);
      }
      if (GUARDED.includes(t.target)) {
        const before = invalidSoFar.get(t.dialect) ?? 0;
        assert.ok(t.invalidFrames > before, `${what}: invalid frames counted (${t.invalidFrames})`);
        assert.ok(t.peersDropped >= 1, `${what}: flooding peers dropped (${t.peersDropped})`);
      }
      invalidSoFar.set(t.dialect, t.invalidFrames);
    }
  });
});
