/**
 * RabbitMQ through amqplib: a durable classic queue, persistent messages, publisher confirms
 * on a ConfirmChannel (a message counts as sent when its confirm arrives), a consumer with
 * prefetch and one basic.ack per message. W3: requests to a durable queue with 4 worker
 * channels (prefetch 1 each), replies over direct reply-to (`amq.rabbitmq.reply-to`) —
 * transient: persistent requests, no publisher confirm; durable: the same on a ConfirmChannel,
 * a call returning once both its request's confirm and its reply arrived.
 * W4: a fanout exchange, one queue per subscriber, each consumed on a connection of its own —
 * durable: durable exchange, durable classic queues, persistent messages, one ack per message;
 * live: non-durable exchange, exclusive server-named queues, transient messages, noAck.
 */
import type * as Amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { FanoutTarget } from '../../pubsub-load.js';
import type { Scope } from '../../workloads.js';
import { peerClient } from '../clients.js';
import type { PeersConfig } from '../config.js';
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

const amqp = peerClient<typeof Amqp>('amqplib');

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/** A persistent message's confirm, in a few words (the tables' durability column). */
const CONFIRM_TAG = 'fsync’d before confirm, or consumed';
const RABBITMQ_DATA_DIR = '/var/lib/rabbitmq/mnesia';
/** Queue arguments: a classic queue, stated explicitly (not the server's default type). */
const CLASSIC_QUEUE = { durable: true, arguments: { 'x-queue-type': 'classic' } };

/** TCP_NODELAY: without it, Nagle + delayed ACKs add ~40 ms to each lone W3 request. */
const SOCKET_OPTIONS = { noDelay: true };

async function open(scope: Scope, url: string): Promise<ChannelModel> {
  const conn = await amqp.connect(url, SOCKET_OPTIONS);
  conn.on('error', () => {}); // surfaced through the pending operations instead
  scope.add(() => conn.close());
  return conn;
}

/** Deletes the queues and exchanges now and when the scope closes (on a connection of its own). */
async function cleanUp(
  scope: Scope,
  conn: ChannelModel,
  url: string,
  names: { queues: string[]; exchanges?: string[] },
): Promise<void> {
  /** One channel per delete: a delete the server refuses closes its channel. */
  const attempt = async (c: ChannelModel, del: (ch: Channel) => Promise<unknown>) => {
    const ch = await c.createChannel();
    ch.on('error', () => {});
    try {
      await del(ch);
      await ch.close();
    } catch {
      /* not there */
    }
  };
  const remove = async (c: ChannelModel): Promise<void> => {
    for (const q of names.queues) await attempt(c, (ch) => ch.deleteQueue(q));
    for (const x of names.exchanges ?? []) await attempt(c, (ch) => ch.deleteExchange(x));
  };
  await remove(conn);
  scope.add(async () => {
    const c = await amqp.connect(url);
    try {
      await remove(c);
    } finally {
      await c.close();
    }
  });
}

/** W4: see the header. */
async function openFanout(scope: Scope, url: string, o: FanoutOpenOptions): Promise<FanoutTarget> {
  const durable = o.mode === 'durable';
  const exchange = o.name;
  const queues = durable ? Array.from({ length: o.subscribers }, (_, i) => `${o.name}-${i}`) : []; // live: server-named, gone with their connection
  const conn = await open(scope, url);
  await cleanUp(scope, conn, url, { queues, exchanges: [exchange] });
  const pub: ConfirmChannel = await conn.createConfirmChannel();
  await pub.assertExchange(exchange, 'fanout', { durable });
  for (const q of queues) {
    await pub.assertQueue(q, CLASSIC_QUEUE);
    await pub.bindQueue(q, exchange, '');
  }
  return {
    publish(body) {
      return new Promise<void>((resolve, reject) => {
        pub.publish(exchange, '', body, { persistent: durable }, (err: unknown) =>
          err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
        );
      });
    },
    async startSubscribers(h) {
      for (let i = 0; i < o.subscribers; i++) {
        const c = await open(scope, url);
        c.on('close', () => h.onClosed(i, 'connection closed'));
        const ch = await c.createChannel();
        let queue = queues[i] ?? '';
        if (durable) {
          await ch.prefetch(o.prefetch);
        } else {
          queue = (await ch.assertQueue('', { exclusive: true, durable: false })).queue;
          await ch.bindQueue(queue, exchange, '');
        }
        await ch.consume(
          queue,
          (msg) => {
            if (msg === null) {
              h.onClosed(i, 'consumer cancelled by the server');
              return;
            }
            h.onMessage(i, msg.content);
            if (durable) ch.ack(msg);
          },
          { noAck: !durable },
        );
      }
    },
  };
}

/** W3's workers: a channel each with prefetch 1, replying to `replyTo` then acking. */
async function startRpcWorkers(conn: ChannelModel, name: string, workers: number): Promise<void> {
  for (let i = 0; i < workers; i++) {
    const ch = await conn.createChannel();
    await ch.assertQueue(name, CLASSIC_QUEUE);
    await ch.prefetch(1);
    await ch.consume(name, (msg) => {
      if (msg === null) return;
      const result = w3Result(msg.content.length);
      ch.sendToQueue(msg.properties.replyTo as string, result, {
        correlationId: msg.properties.correlationId as string,
      });
      ch.ack(msg);
    });
  }
}

/** W3 transient: see the header. */
async function unconfirmedRpc(scope: Scope, url: string, o: RpcOpenOptions): Promise<PeerRpc> {
  const name = o.name;
  const conn = await open(scope, url);
  await cleanUp(scope, conn, url, { queues: [name] });
  await startRpcWorkers(conn, name, o.workers);
  const client = await conn.createChannel();
  let next = 0;
  const waiting = new Map<string, (b: Buffer) => void>();
  await client.consume(
    DIRECT_REPLY_TO,
    (msg) => {
      if (msg === null) return;
      const id = msg.properties.correlationId as string;
      waiting.get(id)?.(msg.content);
      waiting.delete(id);
    },
    { noAck: true },
  );
  return {
    call(params) {
      const id = String(next++);
      return new Promise<Buffer>((resolve) => {
        waiting.set(id, resolve);
        client.sendToQueue(name, params, {
          persistent: true,
          replyTo: DIRECT_REPLY_TO,
          correlationId: id,
        });
      });
    },
  };
}

/** W3 durable: see the header. */
async function confirmedRpc(scope: Scope, url: string, o: RpcOpenOptions): Promise<PeerRpc> {
  const conn = await open(scope, url);
  await cleanUp(scope, conn, url, { queues: [o.name] });
  await startRpcWorkers(conn, o.name, o.workers);
  const client: ConfirmChannel = await conn.createConfirmChannel();
  const replies = new PendingReplies();
  await client.consume(
    DIRECT_REPLY_TO,
    (msg) => {
      if (msg !== null) replies.settle(msg.properties.correlationId as string, msg.content);
    },
    { noAck: true },
  );
  return {
    async call(params) {
      const { id, reply } = replies.expect();
      const confirmed = new Promise<void>((resolve, reject) => {
        client.sendToQueue(
          o.name,
          params,
          { persistent: true, replyTo: DIRECT_REPLY_TO, correlationId: id },
          (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
        );
      });
      const [, result] = await Promise.all([confirmed, reply]);
      return result;
    },
  };
}

export function createPeer(cfg: PeersConfig): AdapterPeer {
  const url = cfg.amqpUrl;
  return {
    processName: 'beam.smp',
    dataDir: RABBITMQ_DATA_DIR,
    rpc: {
      transient: {
        label: 'RabbitMQ RPC',
        tag: 'persistent, not confirmed',
        description:
          'persistent requests on a durable classic queue (no publisher confirms: the reply is the confirmation), 4 consumer channels with prefetch 1, replies via direct reply-to',
      },
      durable: {
        label: 'RabbitMQ RPC confirmed',
        tag: CONFIRM_TAG,
        description:
          'the same RPC with publisher confirms: persistent requests on a durable classic queue, a call returns once ' +
          'its request was confirmed and its reply (direct reply-to, not stored) arrived; RabbitMQ confirms a ' +
          'persistent message once persisted to disk (the message store fsyncs in batches) or once consumed and ' +
          'acked, which with an idle worker usually comes first: a request may never reach the disk',
      },
    },
    fanout: {
      durable: {
        label: 'RabbitMQ',
        tag: CONFIRM_TAG,
        client: 'amqplib',
        durability:
          'durable fanout exchange → one durable classic queue per subscriber, persistent messages; the publisher ' +
          'confirm comes once every queue has the message persisted to disk (the message store fsyncs in batches) ' +
          'or consumed and acked; prefetch as the others, one ack per message',
      },
      live: {
        label: 'RabbitMQ transient',
        tag: 'in memory only',
        client: 'amqplib',
        durability:
          'non-durable fanout exchange → one exclusive, server-named, non-durable queue per subscriber; transient ' +
          'messages (in memory, lost on a restart); the publisher confirm comes once the message is routed to every ' +
          'queue; consumers with noAck (auto-ack on sending, so prefetch does not apply)',
      },
    },
    openFanout: (scope, o) => openFanout(scope, url, o),
    async probe(): Promise<ServerInfo> {
      const conn = await amqp.connect(url);
      try {
        const props = conn.connection.serverProperties as unknown as Record<string, unknown>;
        const version = String(props['version'] ?? '?');
        return {
          version,
          durability:
            'durable classic queue, persistent messages (delivery mode 2), publisher confirms: a message is confirmed once ' +
            'persisted to disk (the message store fsyncs in batches), or once every queue it went to has had it consumed ' +
            'and acked, which with a fast consumer (W1) can come before it reached the disk',
          tag: CONFIRM_TAG,
          settings: { product: props['product'], queueType: 'classic', persistent: true },
        };
      } finally {
        await conn.close();
      }
    },
    async openQueue(scope, name): Promise<PeerQueue> {
      const conn = await open(scope, url);
      await cleanUp(scope, conn, url, { queues: [name] });
      const pub: ConfirmChannel = await conn.createConfirmChannel();
      await pub.assertQueue(name, CLASSIC_QUEUE);
      const sub: Channel = await conn.createChannel();
      return {
        publish(body) {
          return new Promise<void>((resolve, reject) => {
            pub.sendToQueue(name, body, { persistent: true }, (err: unknown) =>
              err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
            );
          });
        },
        async startConsumer(prefetch, h) {
          await sub.prefetch(prefetch);
          await sub.consume(
            name,
            (msg) => {
              if (msg === null) return;
              h.onMessage(msg.content);
              sub.ack(msg);
              h.onAcked();
            },
            { noAck: false },
          );
        },
      };
    },
    openRpc: (scope, o) =>
      o.kind === 'durable' ? confirmedRpc(scope, url, o) : unconfirmedRpc(scope, url, o),
  };
}
