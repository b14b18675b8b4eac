/**
 * NATS JetStream through the `nats` client: a file-storage stream with work-queue retention
 * (an acked message is removed, as in a queue), `js.publish` awaiting each PubAck (a message
 * counts as sent when its PubAck arrives), a durable pull consumer with explicit acks and
 * max_ack_pending = prefetch, consumed with `consume({ max_messages: prefetch })`.
 * W3 transient: NATS core request/reply (not JetStream: nothing stored), 4 subscribers in a
 * queue group, each on a connection of its own.
 * W3 durable, JetStream as a job queue: the caller `js.publish`es the job (awaiting its PubAck)
 * to a file-storage work-queue stream, with its reply subject in a header; 4 workers, each on a
 * connection of its own, pull from one durable consumer (explicit acks, max_ack_pending =
 * workers), publish the result over core NATS to that subject (not stored) and ack the job.
 * W4 durable: a file-storage stream with interest retention (a message is removed once every
 * consumer acked it) and one durable pull consumer per subscriber, each on its own connection.
 * W4 live: NATS core publish/subscribe, nothing stored; a publish counts as confirmed when the
 * server answered a flush (PING/PONG) sent after it, one flush per event-loop turn.
 */
import fs from 'node:fs';
import type * as Nats from 'nats';
import type { NatsConnection, JetStreamManager } from 'nats';
import type { FanoutTarget } from '../../pubsub-load.js';
import type { Scope } from '../../workloads.js';
import { peerClient } from '../clients.js';
import { W3_CALL_TIMEOUT_MS, type PeersConfig } from '../config.js';
import {
  PendingReplies,
  type AdapterPeer,
  type FanoutOpenOptions,
  type PeerQueue,
  type PeerRpc,
  type RpcOpenOptions,
  type ServerInfo,
  w3Result,
} from '../peer.js';

const { AckPolicy, connect, createInbox, headers, RetentionPolicy, StorageType } =
  peerClient<typeof Nats>('nats');

const NATS_CONFIG = '/etc/nats-server.conf';
const NATS_STORE_DIR = '/var/lib/nats-server';
const DURABLE_NAME = 'bench';
/** W3 durable: the header carrying the subject a job's result goes to. */
const REPLY_HEADER = 'Ferry-Bench-Reply-To';

/** `reconnect: false` makes a connection the server closed (a slow consumer) stay closed. */
async function open(scope: Scope, url: string, reconnect = true): Promise<NatsConnection> {
  const nc = await connect({ servers: url, name: 'ferry-bench-peers', reconnect });
  scope.add(() => nc.close());
  return nc;
}

async function deleteStream(jsm: JetStreamManager, name: string): Promise<void> {
  try {
    await jsm.streams.delete(name);
  } catch {
    /* not there */
  }
}

/** Deletes the stream now and when the scope closes (on a connection of its own). */
async function cleanStream(
  scope: Scope,
  jsm: JetStreamManager,
  url: string,
  name: string,
): Promise<void> {
  await deleteStream(jsm, name);
  scope.add(async () => {
    const nc2 = await connect({ servers: url });
    try {
      await deleteStream(await nc2.jetstreamManager(), name);
    } finally {
      await nc2.close();
    }
  });
}

/**
 * A new file-storage R1 stream `name` on subject `subject` (an old one of that name deleted
 * first, and again when the scope closes), with the connection that made it.
 */
async function freshStream(
  scope: Scope,
  url: string,
  o: { name: string; subject: string; retention: Nats.RetentionPolicy },
): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await open(scope, url);
  const jsm = await nc.jetstreamManager();
  await cleanStream(scope, jsm, url, o.name);
  await jsm.streams.add({
    name: o.name,
    subjects: [o.subject],
    storage: StorageType.File,
    retention: o.retention,
    num_replicas: 1,
  });
  return { nc, jsm };
}

function bodyOf(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Calls `h.onClosed(i, …)` once the connection is closed for good. */
function watchClosed(nc: NatsConnection, i: number, onClosed: (i: number, r: string) => void) {
  void nc.closed().then((err) => onClosed(i, err ? err.message : 'connection closed'));
}

/** W4 durable: see the header. */
async function jetstreamFanout(
  scope: Scope,
  url: string,
  o: FanoutOpenOptions,
): Promise<FanoutTarget> {
  const subject = `bench.${o.name}`;
  const retention = RetentionPolicy.Interest;
  const { nc, jsm } = await freshStream(scope, url, { name: o.name, subject, retention });
  // Before the first publish: with interest retention a message nobody is interested in is gone.
  for (let i = 0; i < o.subscribers; i++) {
    await jsm.consumers.add(o.name, {
      durable_name: `${DURABLE_NAME}${i}`,
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: o.prefetch,
    });
  }
  const js = nc.jetstream();
  return {
    async publish(body) {
      await js.publish(subject, body);
    },
    async startSubscribers(h) {
      for (let i = 0; i < o.subscribers; i++) {
        const sc = await open(scope, url);
        watchClosed(sc, i, h.onClosed);
        const consumer = await sc.jetstream().consumers.get(o.name, `${DURABLE_NAME}${i}`);
        const messages = await consumer.consume({ max_messages: o.prefetch });
        scope.add(() => messages.stop());
        void (async () => {
          for await (const m of messages) {
            h.onMessage(i, bodyOf(m.data));
            m.ack();
          }
        })().catch((err: unknown) => h.onClosed(i, String(err)));
      }
    },
  };
}

/** W4 live: see the header. */
async function natsCoreFanout(
  scope: Scope,
  url: string,
  o: FanoutOpenOptions,
): Promise<FanoutTarget> {
  const nc = await open(scope, url);
  const subject = `bench.${o.name}`;
  /** The flush covering every publish of the current event-loop turn, once one was made. */
  let turnFlush: Promise<void> | null = null;
  return {
    publish(body) {
      nc.publish(subject, body);
      turnFlush ??= new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          turnFlush = null;
          nc.flush().then(resolve, reject);
        });
      });
      return turnFlush;
    },
    async startSubscribers(h) {
      for (let i = 0; i < o.subscribers; i++) {
        const sc = await open(scope, url, false);
        watchClosed(sc, i, h.onClosed);
        sc.subscribe(subject, {
          callback: (err, m) => {
            if (err) h.onClosed(i, err.message);
            else h.onMessage(i, bodyOf(m.data));
          },
        });
        await sc.flush();
      }
    },
  };
}

/** W3 transient: see the header. */
async function natsCoreRpc(scope: Scope, url: string, o: RpcOpenOptions): Promise<PeerRpc> {
  const subject = `bench.rpc.${o.name}`;
  for (let i = 0; i < o.workers; i++) {
    const wc = await open(scope, url);
    wc.subscribe(subject, {
      queue: 'workers',
      callback: (err, m) => {
        if (!err) m.respond(w3Result(m.data.byteLength));
      },
    });
    await wc.flush();
  }
  const nc = await open(scope, url);
  return {
    async call(params) {
      const m = await nc.request(subject, params, { timeout: W3_CALL_TIMEOUT_MS });
      return bodyOf(m.data);
    },
  };
}

/** W3 durable, JetStream as a job queue: see the header. */
async function jetstreamJobs(scope: Scope, url: string, o: RpcOpenOptions): Promise<PeerRpc> {
  const subject = `bench.jobs.${o.name}`;
  const retention = RetentionPolicy.Workqueue;
  const { nc, jsm } = await freshStream(scope, url, { name: o.name, subject, retention });
  await jsm.consumers.add(o.name, {
    durable_name: DURABLE_NAME,
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: o.workers,
  });
  for (let i = 0; i < o.workers; i++) {
    const wc = await open(scope, url);
    const consumer = await wc.jetstream().consumers.get(o.name, DURABLE_NAME);
    const jobs = await consumer.consume({ max_messages: 1 });
    scope.add(() => jobs.stop());
    void (async () => {
      for await (const m of jobs) {
        const replyTo = m.headers?.get(REPLY_HEADER) ?? '';
        if (replyTo !== '') wc.publish(replyTo, w3Result(m.data.byteLength));
        m.ack();
      }
    })().catch(() => {});
  }
  const inbox = createInbox();
  const replies = new PendingReplies();
  nc.subscribe(`${inbox}.*`, {
    callback: (err, m) => {
      if (!err) replies.settle(m.subject.slice(inbox.length + 1), bodyOf(m.data));
    },
  });
  await nc.flush();
  const js = nc.jetstream();
  return {
    async call(params) {
      const { id, reply } = replies.expect();
      const h = headers();
      h.set(REPLY_HEADER, `${inbox}.${id}`);
      const [, result] = await Promise.all([js.publish(subject, params, { headers: h }), reply]);
      return result;
    },
  };
}

/** JetStream's acknowledgement, in a few words (the tables' durability column). */
function syncTag(): string {
  return `not fsync’d (every ${configuredSyncInterval() ?? '2 min'})`;
}

/** The sync_interval set in the server's config file, if any. */
function configuredSyncInterval(): string | null {
  try {
    const m = /^\s*sync_interval\s*[:=]?\s*(\S+)/m.exec(fs.readFileSync(NATS_CONFIG, 'utf8'));
    return m?.[1] ?? null;
  } catch {
    return null;
  }
}

export function createPeer(cfg: PeersConfig): AdapterPeer {
  const url = cfg.natsUrl;
  return {
    processName: 'nats-server',
    dataDir: NATS_STORE_DIR,
    rpc: {
      transient: {
        label: 'NATS core',
        tag: 'not stored',
        description:
          'NATS core request/reply (nothing stored), 4 subscribers in one queue group, each on its own connection',
      },
      durable: {
        label: 'NATS JetStream jobs',
        tag: `job stored, ${syncTag()}`,
        description:
          'JetStream as a job queue: js.publish of the job to a file-storage work-queue stream (R1), PubAck awaited; ' +
          '4 workers pull from one durable consumer (explicit ack after replying), the result over core NATS (not ' +
          `stored); the PubAck comes once the job is written to the OS, not fsync’d (sync_interval ${configuredSyncInterval() ?? 'default, 2 min'})`,
      },
    },
    fanout: {
      durable: {
        label: 'NATS JetStream',
        tag: syncTag(),
        client: 'nats',
        durability:
          'file storage, R1, interest retention (a message is removed once every consumer acked it), one durable ' +
          'pull consumer per subscriber, explicit acks, max_ack_pending = prefetch; the PubAck comes once the message is ' +
          `written to the OS, not fsync’d (sync_interval ${configuredSyncInterval() ?? 'default, 2 min'})`,
      },
      live: {
        label: 'NATS core',
        tag: 'not stored',
        client: 'nats',
        durability:
          'nothing stored, at most once: a publish counts as confirmed when the server answered a flush (PING/PONG) ' +
          'sent after it, i.e. read it; a subscriber that falls behind is cut off as a slow consumer',
      },
    },
    openFanout: (scope, o) =>
      o.mode === 'durable' ? jetstreamFanout(scope, url, o) : natsCoreFanout(scope, url, o),
    async probe(): Promise<ServerInfo> {
      const nc = await connect({ servers: url, name: 'ferry-bench-probe' });
      try {
        const jsm = await nc.jetstreamManager();
        const account = await jsm.getAccountInfo();
        const sync = configuredSyncInterval();
        return {
          version: nc.info?.version ?? '?',
          durability:
            'file storage, R1; a PubAck is sent once the message is written to the OS, not fsync’d: ' +
            `the store is fsync’d every sync_interval (${sync ?? 'not set in ' + NATS_CONFIG + ', so the default, 2 min'})`,
          tag: syncTag(),
          settings: {
            storage: 'file',
            retention: 'workqueue',
            replicas: 1,
            syncInterval: sync ?? 'default (2 min)',
            jetstreamApiLevel: account.api,
          },
        };
      } finally {
        await nc.close();
      }
    },
    async openQueue(scope, name): Promise<PeerQueue> {
      const subject = `bench.${name}`;
      const retention = RetentionPolicy.Workqueue;
      const { nc, jsm } = await freshStream(scope, url, { name, subject, retention });
      const js = nc.jetstream();
      return {
        async publish(body) {
          await js.publish(subject, body);
        },
        async startConsumer(prefetch, h) {
          await jsm.consumers.add(name, {
            durable_name: DURABLE_NAME,
            ack_policy: AckPolicy.Explicit,
            max_ack_pending: prefetch,
          });
          const consumer = await js.consumers.get(name, DURABLE_NAME);
          const messages = await consumer.consume({ max_messages: prefetch });
          scope.add(() => messages.stop());
          void (async () => {
            for await (const m of messages) {
              h.onMessage(bodyOf(m.data));
              m.ack();
              h.onAcked();
            }
          })().catch(() => {});
        },
      };
    },
    openRpc: (scope, o) =>
      o.kind === 'durable' ? jetstreamJobs(scope, url, o) : natsCoreRpc(scope, url, o),
  };
}
