/**
 * `npm run fuzz`: floods every endpoint of every dialect and the HTTP gateway with seeded
 * hostile input while a healthy client is measured (fuzz.ts). Prints its seed first; the same
 * seed replays the same input.
 *
 *   npm run fuzz -- [--seed N] [--frames N] [--endpoint NAME[,NAME…]] [--peer-frames N]
 *
 * Exits 1 if the broker died or stopped answering the healthy client.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { killAllBrokers } from '../broker.js';
import { DEFAULT_FUZZ_OPTIONS, FUZZ_TARGETS, runFuzz, type FuzzTarget } from './fuzz.js';

function int(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be an integer ≥ 0`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      frames: { type: 'string' },
      endpoint: { type: 'string' },
      'peer-frames': { type: 'string' },
      'baseline-pings': { type: 'string' },
    },
  });
  const seed = int(values.seed, 'seed', randomInt(2 ** 31));
  const targets = (values.endpoint?.split(',') ?? [...FUZZ_TARGETS]).map((t) => {
    if (!(FUZZ_TARGETS as readonly string[]).includes(t)) {
      throw new Error(`--endpoint ${t}: not one of ${FUZZ_TARGETS.join(', ')}`);
    }
    return t as FuzzTarget;
  });
  const frames = int(values.frames, 'frames', DEFAULT_FUZZ_OPTIONS.frames);
  console.log(
    `fuzz seed ${seed} (replay: npm run fuzz -- --seed ${seed}), ${frames} messages per endpoint`,
  );
  const report = await runFuzz({
    ...DEFAULT_FUZZ_OPTIONS,
    seed,
    frames,
    targets,
    peerFrames: int(values['peer-frames'], 'peer-frames', DEFAULT_FUZZ_OPTIONS.peerFrames),
    baselinePings: int(
      values['baseline-pings'],
      'baseline-pings',
      DEFAULT_FUZZ_OPTIONS.baselinePings,
    ),
    log: (line) => console.log(line),
  });
  const dead = report.targets.filter((t) => !t.brokerAlive);
  if (dead.length > 0) {
    console.error(`the broker died during: ${dead.map((t) => t.target).join(', ')} (seed ${seed})`);
    process.exitCode = 1;
  }
}

process.on('exit', killAllBrokers);
main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  killAllBrokers();
  process.exitCode = 1;
});
