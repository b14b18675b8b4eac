/**
 * NATS JetStream through the `nats` client: a file-storage stream with work-queue retention
 * (an acked message is removed, as in a queue), `js.publish` awaiting each PubAck (a message
 * counts as sent when its PubAck arrives), a durable pull consumer with explicit acks and
 * max_ack_pending = prefetch, consumed with `consume({ max_messages: prefetch })`.
 * W3: NATS core request/reply (not JetStream: nothing stored), 4 subscribers in a queue group,
 * each on a connection of its own.
 */
import fs from 'node:fs';
import {
  AckPolicy,
  connect,
  RetentionPolicy,
  StorageType,
  type NatsConnection,
  type JetStreamManager,
} from 'nats';
import type { Scope } from '../workloads.js';
import { W3_CALL_TIMEOUT_MS } from './config.js';
import type { Peer, PeerQueue, PeerRpc, ServerInfo } from './peer.js';
import { w3Result } from './peer.js';

const NATS_CONFIG = '/etc/nats-server.conf';
const NATS_STORE_DIR = '/var/lib/nats-server';
const DURABLE_NAME = 'bench';

async function open(scope: Scope, url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, name: 'ferry-bench-peers' });
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

/** The sync_interval set in the server's config file, if any. */
function configuredSyncInterval(): string | null {
  try {
    const m = /^\s*sync_interval\s*[:=]?\s*(\S+)/m.exec(fs.readFileSync(NATS_CONFIG, 'utf8'));
    return m?.[1] ?? null;
  } catch {
    return null;
  }
}

export function jetstreamPeer(url: string): Peer {
  return {
    id: 'jetstream',
    name: 'NATS JetStream',
    processName: 'nats-server',
    dataDir: NATS_STORE_DIR,
    rpcDescription:
      'NATS core request/reply (nothing stored), 4 subscribers in one queue group, each on its own connection',
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
      const nc = await open(scope, url);
      const jsm = await nc.jetstreamManager();
      const subject = `bench.${name}`;
      await deleteStream(jsm, name);
      scope.add(async () => {
        const nc2 = await connect({ servers: url });
        try {
          await deleteStream(await nc2.jetstreamManager(), name);
        } finally {
          await nc2.close();
        }
      });
      await jsm.streams.add({
        name,
        subjects: [subject],
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
        num_replicas: 1,
      });
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
              h.onMessage(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
              m.ack();
              h.onAcked();
            }
          })().catch(() => {});
        },
      };
    },
    async openRpc(scope, name, workers): Promise<PeerRpc> {
      const subject = `bench.rpc.${name}`;
      for (let i = 0; i < workers; i++) {
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
          return Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
        },
      };
    },
  };
}
