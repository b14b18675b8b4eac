/**
 * `npm run soak -- --minutes N [--rate R] [--interval-s S] [--measure-s S]
 * [--max-rss-growth-mb M]`: a steady load on a real broker for N minutes, sampling its RSS and
 * the latency every few seconds (soak.ts). Exits 1 on errors or RSS growth past the bound, 2
 * on a bad command line.
 */
import { parseArgs } from 'node:util';
import { formatSummary, runSoak, type SoakOptions } from './soak.js';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const MAX_MINUTES = 24 * 60;
const DEFAULT_INTERVAL_S = 5;
const DEFAULT_MEASURE_S = 5;
const DEFAULT_MAX_RSS_GROWTH_MIB = 32;
const MAX_RATE = 1_000_000;

const USAGE = `usage: npm run soak -- --minutes N [--rate R] [--interval-s S] [--measure-s S] [--max-rss-growth-mb M]
  --minutes N             how long to soak (0 < N <= ${MAX_MINUTES}, decimals allowed)
  --rate R                messages per second (default: half the maximum measured first)
  --measure-s S           seconds to measure the maximum rate (1-60, default ${DEFAULT_MEASURE_S})
  --interval-s S          seconds between samples (1-3600, default ${DEFAULT_INTERVAL_S})
  --max-rss-growth-mb M   fail if the broker's largest RSS grows more than M MiB from the
                          first half of the run to the second (1-65536, default ${DEFAULT_MAX_RSS_GROWTH_MIB})`;

class UsageError extends Error {}

function num(
  raw: string | undefined,
  name: string,
  min: number,
  max: number,
  integer: boolean,
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const pattern = integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  if (!pattern.test(raw.trim()) || !Number.isFinite(n) || n < min || n > max || n === 0) {
    const kind = integer ? 'an integer' : 'a number';
    throw new UsageError(`--${name} must be ${kind} from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function parse(argv: string[]): SoakOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        minutes: { type: 'string' },
        rate: { type: 'string' },
        'interval-s': { type: 'string' },
        'measure-s': { type: 'string' },
        'max-rss-growth-mb': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const minutes = num(values['minutes'], 'minutes', 0, MAX_MINUTES, false);
  if (minutes === undefined) throw new UsageError('--minutes is required');
  return {
    durationMs: Math.round(minutes * 60_000),
    rate: num(values['rate'], 'rate', 1, MAX_RATE, true),
    measureMs: (num(values['measure-s'], 'measure-s', 1, 60, true) ?? DEFAULT_MEASURE_S) * 1000,
    intervalMs:
      (num(values['interval-s'], 'interval-s', 1, 3600, true) ?? DEFAULT_INTERVAL_S) * 1000,
    maxRssGrowthMiB:
      num(values['max-rss-growth-mb'], 'max-rss-growth-mb', 1, 65536, true) ??
      DEFAULT_MAX_RSS_GROWTH_MIB,
  };
}

async function main(): Promise<number> {
  let options: SoakOptions;
  try {
    options = parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`soak: ${err.message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const result = await runSoak({ ...options, log: (line) => console.log(line) });
  console.log('');
  console.log(formatSummary(result));
  return result.failed ? EXIT_FAILED : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(EXIT_FAILED);
  },
);
