/**
 * pg-boss on the local PostgreSQL (the pg group). Configurations as research A.2 measured
 * them: a pool of 10 connections (`max`), the queue in the shared partition (policy
 * standard). Throughput (BOSS-B): `insert` of a batch, `work` with batchSize 100,
 * localConcurrency 4, pollingIntervalSeconds 0.5 (its minimum) and burstWhenBatchFull (fetch
 * again at once while batches come back full); a batch handler completes its batch in one
 * call. Latency (BOSS-N, its low-latency mode): `send` per job, `useListenNotify: true` with
 * the queue's `notify: true`, `work` with batchSize 1 and localConcurrency 10 (polling stays
 * on as the backstop). Completed jobs are kept (state `completed`), so "pending" counts the
 * queue's rows still created, retry or active (by SQL: getQueueStats serves cached counts).
 */
import type * as PgBossModule from 'pg-boss';
import { peerClient } from '../clients.js';
import type { JobPayload, PgJobsTarget, PgPeer } from '../pg-load.js';

const { PgBoss } = peerClient<typeof PgBossModule>('pg-boss');

const QUEUE = 'bench';
const POOL_SIZE = 10;
const BATCH_SIZE = 100;
const BATCH_CONCURRENCY = 4;
const LATENCY_CONCURRENCY = 10;
const POLLING_INTERVAL_S = 0.5;

export function createPgPeer(): PgPeer {
  return {
    label: 'pg-boss',
    settings: {
      jobs:
        `insert batches; work batchSize ${BATCH_SIZE}, localConcurrency ${BATCH_CONCURRENCY}, ` +
        `pollingIntervalSeconds ${POLLING_INTERVAL_S}, burstWhenBatchFull; pool ${POOL_SIZE} (research BOSS-B)`,
      latency:
        `send; useListenNotify + queue notify, work batchSize 1, localConcurrency ${LATENCY_CONCURRENCY}, ` +
        `pollingIntervalSeconds ${POLLING_INTERVAL_S}; pool ${POOL_SIZE} (research BOSS-N)`,
    },
    async open(scope, { url, schema, mode, count }): Promise<PgJobsTarget> {
      const notify = mode === 'latency';
      const boss = new PgBoss({
        connectionString: url,
        schema,
        max: POOL_SIZE,
        useListenNotify: notify,
        schedule: false,
      });
      boss.on('error', () => {});
      await boss.start();
      scope.add(() => boss.stop({ graceful: false, close: true, timeout: 5_000 }));
      await boss.createQueue(QUEUE, { notify });
      return {
        async addBatch(payloads) {
          await boss.insert(
            QUEUE,
            payloads.map((data) => ({ data })),
          );
        },
        async addOne(payload) {
          await boss.send(QUEUE, payload);
        },
        async startWorkers(onJob) {
          const options = notify
            ? {
                batchSize: 1,
                localConcurrency: LATENCY_CONCURRENCY,
                pollingIntervalSeconds: POLLING_INTERVAL_S,
              }
            : {
                batchSize: BATCH_SIZE,
                localConcurrency: BATCH_CONCURRENCY,
                pollingIntervalSeconds: POLLING_INTERVAL_S,
                burstWhenBatchFull: true,
              };
          await boss.work<JobPayload>(QUEUE, options, async (jobs) => {
            for (const job of jobs) onJob(job.data);
          });
        },
        // Not getQueueStats: it serves counts its monitor caches.
        pending: () =>
          count(
            `SELECT count(*) FROM "${schema}".job WHERE name = '${QUEUE}' AND state < 'completed'`,
          ),
      };
    },
  };
}
