/**
 * One seed for everything random in a test file, so that a failure can be replayed.
 *
 * FERRY_TEST_SEED=<integer> replays; without it each test file (node --test runs each in its
 * own process) draws a fresh seed. The seed is printed only when something fails: fast-check
 * states it in its failure message (`seed: …`), `seeded` adds it to the message of whatever
 * a test throws, and a test file that used it and exits failing prints it on stderr.
 *
 * Property tests pass `fcOptions(numRuns)` to `fc.assert`; tests that only need random
 * numbers, bytes or ids take a `prng(label)`: a deterministic generator from the seed.
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';

const SEED_VARIABLE = 'FERRY_TEST_SEED';
let seed: number | undefined;

/** The seed of this test process: FERRY_TEST_SEED, or a fresh one (printed if the file fails). */
export function testSeed(): number {
  if (seed !== undefined) return seed;
  const raw = process.env[SEED_VARIABLE]?.trim();
  if (raw) {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) {
      throw new Error(`${SEED_VARIABLE} must be a 32-bit integer, got ${JSON.stringify(raw)}`);
    }
    seed = n;
  } else {
    seed = randomInt(2 ** 31);
  }
  const used = seed;
  const file = process.argv[1] ? path.relative(process.cwd(), process.argv[1]) : '<test file>';
  process.on('exit', (code) => {
    if (code !== 0) {
      console.error(`${file} drew its random input from ${SEED_VARIABLE}=${used}; replay:`);
      console.error(`  ${SEED_VARIABLE}=${used} node --test ${file}`);
    }
  });
  return seed;
}

/** Options for `fc.assert`: the test seed and a number of runs. */
export function fcOptions(numRuns: number): { seed: number; numRuns: number } {
  return { seed: testSeed(), numRuns };
}

/** A deterministic generator of random numbers, bytes and ids. */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** n random bytes. */
  bytes(n: number): Buffer;
}

/**
 * A generator seeded from the test seed and `label`: the same label gives the same sequence
 * for the same seed, whatever else the file draws or in which order its tests run.
 */
export function prng(label: string): Prng {
  // FNV-1a of the label, mixed into the seed; then mulberry32 (small, fast, well spread).
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  let state = (testSeed() ^ h) >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

/**
 * Wraps a test function: whatever it throws has the seed added to its message (and stack,
 * which is what the spec reporter prints), so the failing assertion says how to replay it.
 */
export function seeded<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args) => {
    const s = testSeed();
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof Error) {
        const old = err.message;
        const now = `${old} [replay: ${SEED_VARIABLE}=${s}]`;
        err.message = now;
        if (err.stack?.includes(old)) err.stack = err.stack.replace(old, () => now);
      }
      throw err;
    }
  };
}
