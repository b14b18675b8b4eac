/**
 * `npm run chaos -- [--cycles N] [--seed S] [--data-dir DIR] [--drain-timeout-ms MS]`: kill -9
 * cycles of a real broker under mixed load, then the audit table (chaos.ts). Exits 1 on any
 * lost or stuck item, 2 on a bad command line; duplicates are reported, not failures.
 */
import { formatAudit } from './chaos-ledger.js';
import { CHAOS_USAGE, ChaosUsageError, parseChaosArgs, runChaos } from './chaos.js';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

async function main(): Promise<number> {
  let options;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof ChaosUsageError)) throw err;
    console.error(`chaos: ${err.message}\n${CHAOS_USAGE}`);
    return EXIT_USAGE;
  }
  console.log(`chaos: ${options.cycles} kill -9 cycles, seed ${options.seed}`);
  const result = await runChaos({ ...options, log: (line) => console.log(line) });
  console.log('');
  console.log(formatAudit(result.rows));
  const restarts = result.consumerRestarts;
  if (restarts.queue + restarts.pubsub > 0) {
    console.log(
      `consuming loops ended by the SDK and started again: queue ${restarts.queue}, ` +
        `pubsub ${restarts.pubsub} (${result.consumerErrors.join(', ')})`,
    );
  }
  console.log('');
  console.log(
    `${result.cycles} cycles in ${(result.durationMs / 1000).toFixed(1)} s, seed ${result.seed}; ` +
      (result.drained ? 'everything owed arrived' : 'the drain timed out'),
  );
  if (result.failed) {
    console.log(`FAILED: items were lost or stuck (data folder kept: ${result.dataDir})`);
    return EXIT_FAILED;
  }
  console.log('passed: nothing lost, nothing stuck (duplicates are allowed: at least once)');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(EXIT_FAILED);
  },
);
