/**
 * BullMQ on Redis. W1/W2: `queue.add` per message (a message counts as sent when `add`
 * resolved, i.e. Redis ran the add script; this machine's Redis keeps nothing on disk), at most
 * `window` adds outstanding; one Worker with concurrency = prefetch (BullMQ has no prefetch: its
 * concurrency is the number of jobs a worker holds at once, which is what prefetch bounds);
 * a job counts as acked when the worker's 'completed' event fired (moved to completed, and
 * removed: removeOnComplete). Job data is the body as a latin1 string (JSON, ~size bytes).
 * W3: a BullMQ call is a job, so it runs as a durable call (the job stored in Redis before a
 * worker gets it, its result too): `queue.add` + 4 Workers (concurrency 1 each) +
 * `job.waitUntilFinished(queueEvents)`; there is no transient call to measure.
 * W4: BullMQ has no fan-out (a job goes to one worker), so durable W4 is skipped; live W4 is
 * Redis pub/sub on the same Redis through ioredis: PUBLISH awaited, one subscriber connection
 * each (no reconnect, so a connection Redis closed for its output buffer stays closed).
 */
import type * as BullMQ from 'bullmq';
import type { Job, Queue as QueueOf } from 'bullmq';
import type * as IORedis from 'ioredis';
import type { FanoutTarget } from '../../pubsub-load.js';
import type { Scope } from '../../workloads.js';
import { packageVersion, peerClient } from '../clients.js';
import { W3_CALL_TIMEOUT_MS, type PeersConfig } from '../config.js';
import {
  type AdapterPeer,
  type FanoutOpenOptions,
  type PeerQueue,
  type PeerRpc,
  type ServerInfo,
  w3Result,
} from '../peer.js';

const { Queue, QueueEvents, Worker } = peerClient<typeof BullMQ>('bullmq');
const { Redis } = peerClient<typeof IORedis>('ioredis');

interface BodyData {
  b: string;
}
const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: true };
/**
 * W3 keeps the last completed jobs: waitUntilFinished checks the job's state after it
 * subscribed, and a job already completed and removed would be "Missing key".
 */
const W3_JOB_OPTIONS = { removeOnComplete: { count: 1_000 }, removeOnFail: { count: 1_000 } };

function connectionFor(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url, maxRetriesPerRequest: null };
}

async function freshQueue(scope: Scope, url: string, name: string): Promise<QueueOf<BodyData>> {
  const queue = new Queue<BodyData>(name, { connection: connectionFor(url) });
  await queue.obliterate({ force: true });
  scope.add(async () => {
    try {
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
  });
  return queue;
}

const NO_FANOUT = 'BullMQ has no fan-out: a job goes to one worker';

/** W4 live: see the header. */
async function redisPubSub(scope: Scope, url: string, o: FanoutOpenOptions): Promise<FanoutTarget> {
  if (o.mode !== 'live') throw new Error(NO_FANOUT);
  const channel = `ferry-bench:${o.name}`;
  const pub = new Redis(url, { maxRetriesPerRequest: 1 });
  pub.on('error', () => {});
  scope.add(() => pub.disconnect());
  return {
    async publish(body) {
      await pub.publish(channel, body);
    },
    async startSubscribers(h) {
      for (let i = 0; i < o.subscribers; i++) {
        const sub = new Redis(url, { retryStrategy: () => null, autoResubscribe: false });
        sub.on('error', () => {});
        sub.on('end', () => h.onClosed(i, 'connection closed'));
        sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => h.onMessage(i, message));
        scope.add(() => sub.disconnect());
        await sub.subscribe(channel);
      }
    },
  };
}

export function createPeer(cfg: PeersConfig): AdapterPeer {
  const url = cfg.redisUrl;
  const concurrency = cfg.bullmqConcurrency;
  return {
    processName: 'redis-server',
    dataDir: null,
    rpc: {
      transient: { skip: 'a BullMQ call is a job, stored in Redis: measured as a durable call' },
      durable: {
        label: 'BullMQ',
        tag: 'Redis, in memory only',
        description:
          'queue.add (the job stored in Redis), 4 Workers with concurrency 1, job.waitUntilFinished(queueEvents) ' +
          '(the result stored in Redis); Redis in memory only',
      },
    },
    fanout: {
      durable: { skip: NO_FANOUT },
      live: {
        label: 'Redis pub/sub',
        tag: 'not stored',
        client: 'ioredis',
        durability:
          'nothing stored, fire-and-forget: PUBLISH answers how many subscribers it was handed to (their output ' +
          'buffers); past client-output-buffer-limit pubsub Redis closes a subscriber’s connection',
      },
    },
    openFanout: (scope, o) => redisPubSub(scope, url, o),
    async probe(): Promise<ServerInfo> {
      const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
      redis.on('error', () => {});
      try {
        await redis.connect();
        const info = await redis.info('server');
        const version = /^redis_version:(\S+)/m.exec(info)?.[1] ?? '?';
        const save = (await redis.config('GET', 'save')) as string[];
        const aof = (await redis.config('GET', 'appendonly')) as string[];
        const fsync = (await redis.config('GET', 'appendfsync')) as string[];
        const saveValue = save[1] ?? '?';
        const aofValue = aof[1] ?? '?';
        const onDisk = saveValue !== '' || aofValue === 'yes';
        return {
          version: `Redis ${version}, bullmq ${packageVersion('bullmq')}`,
          durability: onDisk
            ? `Redis save "${saveValue}", appendonly ${aofValue} (appendfsync ${fsync[1] ?? '?'})`
            : `Redis with save "" and appendonly no: nothing is written to disk; a restart loses every job`,
          tag: onDisk ? `Redis on disk (appendfsync ${fsync[1] ?? '?'})` : 'Redis, in memory only',
          settings: { save: saveValue, appendonly: aofValue, appendfsync: fsync[1] ?? null },
        };
      } finally {
        redis.disconnect();
      }
    },
    async openQueue(scope, name): Promise<PeerQueue> {
      const queue = await freshQueue(scope, url, name);
      return {
        async publish(body) {
          await queue.add('m', { b: body.toString('latin1') }, JOB_OPTIONS);
        },

        async startConsumer(_prefetch, h) {
          const worker = new Worker<BodyData>(
            name,

            async (job: Job<BodyData>) => {
              h.onMessage(Buffer.from(job.data.b, 'latin1'));
            },
            { connection: connectionFor(url), concurrency },
          );
          worker.on('completed', () => h.onAcked());
          worker.on('error', () => {});
          scope.add(() => worker.close(true));
        },
      };
    },
    async openRpc(scope, { name, workers }): Promise<PeerRpc> {
      const queue = await freshQueue(scope, url, name);
      const events = new QueueEvents(name, { connection: connectionFor(url) });
      scope.add(() => events.close());
      await events.waitUntilReady();
      for (let i = 0; i < workers; i++) {
        const worker = new Worker<BodyData, string>(
          name,

          async (job: Job<BodyData>) => w3Result(job.data.b.length).toString('latin1'),
          { connection: connectionFor(url), concurrency: 1 },
        );
        worker.on('error', () => {});
        scope.add(() => worker.close(true));
        await worker.waitUntilReady();
      }
      return {
        async call(params) {
          const job = await queue.add('call', { b: params.toString('latin1') }, W3_JOB_OPTIONS);
          const result = (await job.waitUntilFinished(events, W3_CALL_TIMEOUT_MS)) as string;
          return Buffer.from(result, 'latin1');
        },
      };
    },
  };
}
