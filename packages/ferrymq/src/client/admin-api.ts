/**
 * The admin side of FerryClient: stats, the queue list, browsing messages and dead letters,
 * purging and redriving, over the {@link Connection}.
 */
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
}
