/**
 * graphile-worker on the local PostgreSQL (the pg group). Configurations as research A.2
 * measured them (GW-B for throughput, GW-A for latency): a `run()` worker pool with
 * concurrency 10 and a pool of 12 connections, pollInterval 2000 ms (its default; new jobs
 * wake it through LISTEN/NOTIFY, one NOTIFY per add_jobs call). Throughput also turns on its
 * batching: `localQueue { size: 200 }` (one fetch locks up to 200 jobs) and
 * `completeJobBatchDelay: 0` (completions of one tick deleted in one statement). The producer
 * is `makeWorkerUtils` (pool 10): `addJobs` for a batch, `addJob` for a single add. Completed
 * jobs are deleted, so "pending" is the rows left in `_private_jobs`.
 */
import type * as GraphileWorker from 'graphile-worker';
import { peerClient } from '../clients.js';
import type { JobPayload, PgJobsMode, PgJobsTarget, PgPeer } from '../pg-load.js';

const { Logger, makeWorkerUtils, run } = peerClient<typeof GraphileWorker>('graphile-worker');

const TASK = 'bench';
const CONCURRENCY = 10;
const MAX_POOL_SIZE = 12;
const PRODUCER_POOL_SIZE = 10;
const POLL_INTERVAL_MS = 2_000;
const LOCAL_QUEUE_SIZE = 200;

const silent = new Logger(() => () => {});

export function createPgPeer(): PgPeer {
  return {
    label: 'graphile-worker',
    settings: {
      jobs:
        `addJobs batches; run() concurrency ${CONCURRENCY}, maxPoolSize ${MAX_POOL_SIZE}, pollInterval ${POLL_INTERVAL_MS} ms, ` +
        `localQueue.size ${LOCAL_QUEUE_SIZE}, completeJobBatchDelay 0 (research GW-B)`,
      latency: `addJob; run() concurrency ${CONCURRENCY}, maxPoolSize ${MAX_POOL_SIZE}, pollInterval ${POLL_INTERVAL_MS} ms, LISTEN/NOTIFY (research GW-A)`,
    },
    async open(scope, { url, schema, mode, count }): Promise<PgJobsTarget> {
      const utils = await makeWorkerUtils({
        connectionString: url,
        schema,
        maxPoolSize: PRODUCER_POOL_SIZE,
        logger: silent,
      });
      scope.add(() => utils.release());
      await utils.migrate();
      return {
        async addBatch(payloads) {
          await utils.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
        },
        async addOne(payload) {
          await utils.addJob(TASK, payload);
        },
        async startWorkers(onJob) {
          const runner = await run({
            connectionString: url,
            schema,
            concurrency: CONCURRENCY,
            maxPoolSize: MAX_POOL_SIZE,
            pollInterval: POLL_INTERVAL_MS,
            noHandleSignals: true,
            logger: silent,
            taskList: {
              [TASK]: (payload) => {
                onJob(payload as JobPayload);
              },
            },
            ...(mode === ('jobs' satisfies PgJobsMode)
              ? {
                  preset: {
                    worker: { localQueue: { size: LOCAL_QUEUE_SIZE }, completeJobBatchDelay: 0 },
                  },
                }
              : {}),
          });
          scope.add(() => runner.stop());
        },
        pending: () => count(`SELECT count(*) FROM "${schema}"._private_jobs`),
      };
    },
  };
}
