/**
 * RabbitMQ through amqplib: a durable classic queue, persistent messages, publisher confirms
 * on a ConfirmChannel (a message counts as sent when its confirm arrives), a consumer with
 * prefetch and one basic.ack per message. W3: requests to a durable queue with 4 worker
 * channels (prefetch 1 each), replies over direct reply-to (`amq.rabbitmq.reply-to`).
 */
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { Scope } from '../workloads.js';
import type { Peer, PeerQueue, PeerRpc, ServerInfo } from './peer.js';
import { w3Result } from './peer.js';

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
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

/** Deletes the queue now and when the scope closes (on a connection of its own). */
async function cleanQueue(scope: Scope, conn: ChannelModel, url: string, name: string) {
  const ch = await conn.createChannel();
  await ch.deleteQueue(name);
  await ch.close();
  scope.add(async () => {
    const c = await amqp.connect(url);
    try {
      const ch2 = await c.createChannel();
      await ch2.deleteQueue(name);
    } finally {
      await c.close();
    }
  });
}

export function rabbitmqPeer(url: string): Peer {
  return {
    id: 'rabbitmq',
    name: 'RabbitMQ',
    processName: 'beam.smp',
    dataDir: RABBITMQ_DATA_DIR,
    rpcDescription:
      'persistent requests on a durable classic queue (no publisher confirms: the reply is the confirmation), 4 consumer channels with prefetch 1, replies via direct reply-to',
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
          settings: { product: props['product'], queueType: 'classic', persistent: true },
        };
      } finally {
        await conn.close();
      }
    },
    async openQueue(scope, name): Promise<PeerQueue> {
      const conn = await open(scope, url);
      await cleanQueue(scope, conn, url, name);
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
    async openRpc(scope, name, workers): Promise<PeerRpc> {
      const conn = await open(scope, url);
      await cleanQueue(scope, conn, url, name);
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
    },
  };
}
