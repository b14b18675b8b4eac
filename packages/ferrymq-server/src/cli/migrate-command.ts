/**
 * `ferry migrate --from <data folder> --to postgres://… [--store-schema s] [--json]`: copies a
 * stopped SQLite broker's data folder into an empty PostgreSQL schema
 * (storage/migrate-sqlite-to-postgres.ts) and prints what it copied. Refuses a folder a running
 * broker holds (DATA_DIR_LOCKED), before and once more just before committing.
 * docs/operations.md "Moving from SQLite to PostgreSQL".
 */
import type { Command } from 'commander';
import { FerryError } from 'ferrymq/model';
import { fail, subcommand } from './cli-support.js';
import { printJson, printTable } from './output.js';
import { coerceStore, coerceStoreSchema } from '../server/config-store.js';
import { lockOwner } from '../server/data-dir-lock.js';
import { DEFAULT_PG_SCHEMA, redactUrl } from '../storage/postgres/pg-schema.js';
import type { MigrationSummary } from '../storage/migrate-sqlite-to-postgres.js';

interface MigrateFlags {
  from: string;
  to: string;
  storeSchema?: string;
  json?: boolean;
}

/** DATA_DIR_LOCKED while a live broker holds the folder's lock. */
function refuseLocked(dataDir: string): void {
  const owner = lockOwner(dataDir);
  if (owner !== null) {
    throw new FerryError(
      'DATA_DIR_LOCKED',
      `data folder ${dataDir} is in use by a running broker (pid ${owner}); stop it first`,
    );
  }
}

/** The summary as `kind  count` rows, the kinds with nothing left out. */
function summaryRows(s: MigrationSummary): string[][] {
  const rows: [string, number][] = [
    ['queues', s.queues],
    ['queue settings', s.queueSettings],
    ['messages ready', s.messages.ready],
    ['  of them leases released', s.messages.releasedLeases],
    ['messages scheduled', s.messages.scheduled],
    ['messages dead', s.messages.dead],
    ['large bodies', s.messages.largeBodies],
    ['message bytes', s.messages.bytes],
    ['dedup keys', s.keys.dedup],
    ['request keys', s.keys.request],
    ['job dedup keys', s.keys.jobDedup],
    ['keys left behind', s.keys.skipped],
    ['jobs queued', s.jobs.queued],
    ['  of them running before', s.jobs.requeued],
    ['jobs done', s.jobs.done],
    ['jobs failed', s.jobs.failed],
    ['jobs cancelled', s.jobs.cancelled],
    ['jobs expired', s.jobs.expired],
    ['job partials', s.partials],
    ['publish sequence', s.pubsub.publishSeq],
    ['retained topics', s.pubsub.retained],
    ['durable subscriptions', s.pubsub.subscriptions],
    ['confirmations', s.pubsub.confirmations],
  ];
  return rows.map(([kind, n]) => [kind, String(n)]);
}

export function registerMigrate(program: Command): void {
  subcommand(
    program,
    'migrate',
    "copy a stopped broker's SQLite data folder into an empty PostgreSQL store",
  )
    .requiredOption('--from <folder>', 'the SQLite data folder (ferry start --data); read only')
    .requiredOption('--to <url>', 'postgres://user@host:port/db of the store to fill')
    .option('--store-schema <schema>', `PostgreSQL schema to fill (default ${DEFAULT_PG_SCHEMA})`)
    .option('--json', 'print the summary as JSON')
    .action(async (o: MigrateFlags) => {
      let url: string;
      let schema: string;
      try {
        url = coerceStore(o.to, '--to');
        schema = coerceStoreSchema(o.storeSchema ?? DEFAULT_PG_SCHEMA, '--store-schema');
      } catch (err) {
        fail(`CONFIG_INVALID: ${(err as Error).message}`);
      }
      refuseLocked(o.from);
      // Loaded here: the other commands need none of the stores' modules.
      const { migrateSqliteToPostgres } = await import('../storage/migrate-sqlite-to-postgres.js');
      const summary = await migrateSqliteToPostgres({
        dataDir: o.from,
        target: { url, schema },
        beforeCommit: () => refuseLocked(o.from),
      });
      const to = { url: redactUrl(url), schema };
      if (o.json === true) {
        printJson({ from: o.from, to, ...summary });
        return;
      }
      process.stdout.write(`migrated ${o.from} to ${to.url} (schema ${schema})\n`);
      printTable(['kind', 'count'], summaryRows(summary));
    });
}
