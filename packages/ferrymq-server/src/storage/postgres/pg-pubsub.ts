/**
 * Pub/sub's tables in the PostgreSQL store: the publish sequence, retained values, durable
 * subscriptions and confirmations. Every call runs inside the store's group commit.
 */
import type {
  ConfirmationRow,
  DurableSubscriptionRow,
  PubSubState,
  PubSubStorage,
  RetainedChange,
  RetainedRow,
} from '../types.js';
import type { PgSession, PgWriteLevel } from './pg-writer.js';

type Run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel) => Promise<T>;

export class PgPubSubStorage implements PubSubStorage {
  constructor(private readonly run: Run) {}
  load(): Promise<PubSubState> {
    throw new Error('not built yet');
  }
  record(_seq: number, _change: RetainedChange): Promise<void> {
    throw new Error('not built yet');
  }
  retained(_prefix: string, _now: number): Promise<RetainedRow[]> {
    throw new Error('not built yet');
  }
  expired(_now: number, _max: number): Promise<string[]> {
    throw new Error('not built yet');
  }
  nextExpiry(): Promise<number | null> {
    throw new Error('not built yet');
  }
  saveSubscription(_row: DurableSubscriptionRow): Promise<void> {
    throw new Error('not built yet');
  }
  deleteSubscription(_name: string): Promise<boolean> {
    throw new Error('not built yet');
  }
  confirm(_rows: ConfirmationRow[]): Promise<void> {
    throw new Error('not built yet');
  }
  confirmations(_prefix: string): Promise<ConfirmationRow[]> {
    throw new Error('not built yet');
  }
}
