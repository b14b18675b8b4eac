/**
 * The admin side of FerryClient: stats, the queue list, browsing messages and dead letters,
 * purging and redriving, over the {@link Connection}.
 */
import type { QueuePolicy, QueuePolicyChanges } from '../model/queues.js';
import type { FerryStats } from '../model/stats.js';
import { splitMessages, type Json } from '../protocol/codec.js';
import type { Connection } from './connection.js';

export interface PeekedMessage {
  id: string;
  state: string;
  attempts: number;
  priority: number;
  enqueuedAt: number;
  notBefore: number;
  headers?: Record<string, string>;
  expiresAt?: number;
  dedupKey?: string;
  deadReason?: string;
  body: Buffer;
  frames: Buffer[];
}

/** What deleting a queue removed. */
export interface DeleteQueueOutcome {
  deleted: string;
  /** Messages deleted with it (0 unless forced). */
  messages: number;
}

/** A queue's policy: in force, and the values set at runtime. */
export interface QueuePolicyInfo {
  queue: string;
  policy: QueuePolicy;
  overrides: Partial<QueuePolicy>;
}

/** Admin requests. @internal */
export class AdminApi {
  constructor(private readonly conn: Connection) {}

  async stats(queue?: string): Promise<FerryStats> {
    const reply = await this.conn.request('STATS', queue === undefined ? {} : { queue });
    return reply.args as unknown as FerryStats;
  }

  async queues(): Promise<string[]> {
    const reply = await this.conn.request('QUEUES', {});
    return reply.args['queues'] as string[];
  }

  /** PEEK or DLQ_LIST: the messages with their bodies. */
  async browse(command: 'PEEK' | 'DLQ_LIST', args: Json): Promise<PeekedMessage[]> {
    const reply = await this.conn.request(command, args);
    const specs = reply.args['messages'] as Json[];
    const decoded = splitMessages(specs, reply.payload);
    return decoded.map((d, i) => {
      const { frames: _n, ...meta } = specs[i]! as Json & { frames: number };
      return { ...(meta as unknown as PeekedMessage), body: d.frames[0]!, frames: d.frames };
    });
  }

  async purge(queue: string, options: { dead?: boolean }): Promise<number> {
    const reply = await this.conn.request('PURGE', { queue, ...options });
    return Number(reply.args['purged']);
  }

  async redrive(queue: string, options: { ids?: string[]; limit?: number }): Promise<number> {
    const reply = await this.conn.request('DLQ_REDRIVE', { queue, ...options });
    return Number(reply.args['redriven']);
  }

  async deleteQueue(queue: string, options: { force?: boolean }): Promise<DeleteQueueOutcome> {
    const args: Json = { queue };
    if (options.force !== undefined) args['force'] = options.force;
    const reply = await this.conn.request('QUEUE_DELETE', args);
    return { deleted: String(reply.args['deleted']), messages: Number(reply.args['messages']) };
  }

  async pauseQueue(queue: string): Promise<void> {
    await this.conn.request('QUEUE_PAUSE', { queue });
  }

  async resumeQueue(queue: string): Promise<void> {
    await this.conn.request('QUEUE_RESUME', { queue });
  }

  async queuePolicy(
    queue: string,
    change: { policy?: QueuePolicyChanges; reset?: boolean },
  ): Promise<QueuePolicyInfo> {
    const reply = await this.conn.request('QUEUE_POLICY', { queue, ...change });
    return reply.args as unknown as QueuePolicyInfo;
  }
}
