/**
 * Enqueue on the PostgreSQL store: a batch of messages (several queues at once) in one
 * statement on the usual path; dedup keys and a request key add a claim statement first, so
 * that two brokers storing the same key at once store it once. Used by pg-storage.ts.
 */
import { FerryError } from 'ferrymq/model';
import { packFrames } from '../frames-codec.js';
import type { EnqueueItem, EnqueueOutcome, EnqueueRequestKey } from '../types.js';
import {
  SQL_CLAIM_KEYS,
  SQL_CLAIM_REQUEST,
  SQL_ENQUEUE,
  SQL_KEY_IDS,
  SQL_REQUEST_IDS,
  SQL_SET_REQUEST_IDS,
  STATE_LEASED,
  STATE_READY,
  STATE_SCHEDULED,
  queueScope,
} from './pg-queue-sql.js';
import type { PgSession } from './pg-writer.js';

/**
 * How often a statement is run again for items it could not settle because another broker
 * changed the same rows at that moment (a queue created, a key swept): each run sees what the
 * previous one waited for, so one more is enough; a few more for safety.
 */
const RACE_RETRIES = 3;

/** What the caller counts once the call committed. */
export interface EnqueueResult {
  outcome: EnqueueOutcome;
  stored: number;
}

/** Stores `items` (see Storage.enqueue) for node `nodeId`, inside the current transaction. */
export async function enqueueInto(
  db: PgSession,
  nodeId: string,
  items: EnqueueItem[],
  request: EnqueueRequestKey | undefined,
): Promise<EnqueueResult> {
  const now = items[0]?.enqueuedAt ?? Date.now();
  if (request) {
    const prior = await claimRequest(db, request, now);
    if (prior !== null) {
      const ids = prior === '' ? [] : prior.split(',');
      return { outcome: { ids, duplicate: ids.map(() => true), replayed: true }, stored: 0 };
    }
  }
  const ids = new Array<string>(items.length);
  const duplicate = new Array<boolean>(items.length).fill(false);
  let preIds: (number | null)[] | undefined;
  if (items.some((it) => it.dedupKey !== null)) {
    preIds = await claimKeys(db, items, ids, duplicate);
  }
  const toStore: number[] = [];
  for (let i = 0; i < items.length; i++) if (!duplicate[i]) toStore.push(i);
  await insertMessages(db, nodeId, items, toStore, preIds, ids, now);
  if (request) await db.run(SQL_SET_REQUEST_IDS, [request.key, ids.join(',')]);
  return { outcome: { ids, duplicate, replayed: false }, stored: toStore.length };
}

/** Claims the request key: null when claimed (a new request), else the first request's ids. */
async function claimRequest(
  db: PgSession,
  request: EnqueueRequestKey,
  now: number,
): Promise<string | null> {
  for (let attempt = 0; attempt <= RACE_RETRIES; attempt++) {
    const claimed = await db.rows(SQL_CLAIM_REQUEST, [request.key, request.until, now]);
    if (claimed.length > 0) return null;
    // Taken (by an earlier request, or another broker that just committed it).
    const prior = await db.rows<{ ids: string }>(SQL_REQUEST_IDS, [request.key]);
    if (prior[0]) return prior[0].ids;
    // Swept between the two statements: claim again.
  }
  throw new FerryError('STORAGE_ERROR', `request key "${request.key}" kept changing; try again`);
}

/**
 * Claims the items' dedup keys and gives every item an id in item order. Fills `ids` and
 * `duplicate` for the items whose key was taken (or repeated earlier in the batch); returns
 * the ids the other items are stored under.
 */
async function claimKeys(
  db: PgSession,
  items: EnqueueItem[],
  ids: string[],
  duplicate: boolean[],
): Promise<(number | null)[]> {
  const preIds = new Array<number | null>(items.length).fill(null);
  /** Per item repeating a key earlier in the batch: the index of that first item. */
  const firstOf = new Map<number, number>();
  const seen = new Map<string, number>();
  let pending: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (it.dedupKey === null) {
      pending.push(i);
      continue;
    }
    const k = `${queueScope(it.queue)}\u0000${it.dedupKey}`;
    const first = seen.get(k);
    if (first === undefined) {
      seen.set(k, i);
      pending.push(i);
    } else firstOf.set(i, first);
  }
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > RACE_RETRIES) {
      throw new FerryError('STORAGE_ERROR', 'dedup keys kept changing while storing; try again');
    }
    const scopes: (string | null)[] = [];
    const keys: (string | null)[] = [];
    const untils: number[] = [];
    const nows: number[] = [];
    for (const i of pending) {
      const it = items[i]!;
      scopes.push(it.dedupKey === null ? null : queueScope(it.queue));
      keys.push(it.dedupKey);
      untils.push(it.dedupUntil);
      nows.push(it.enqueuedAt);
    }
    const rows = await db.rows<{ ord: number; id: number; fresh: boolean }>(SQL_CLAIM_KEYS, [
      scopes,
      keys,
      untils,
      nows,
    ]);
    const taken: number[] = [];
    for (const r of rows) {
      const i = pending[r.ord - 1]!;
      if (r.fresh) preIds[i] = r.id;
      else taken.push(i);
    }
    pending = [];
    if (taken.length === 0) break;
    const held = await db.rows<{ scope: string; key: string; ids: string }>(SQL_KEY_IDS, [
      taken.map((i) => queueScope(items[i]!.queue)),
      taken.map((i) => items[i]!.dedupKey),
    ]);
    const byKey = new Map(held.map((h) => [`${h.scope}\u0000${h.key}`, h.ids]));
    for (const i of taken) {
      const prior = byKey.get(`${queueScope(items[i]!.queue)}\u0000${items[i]!.dedupKey}`);
      if (prior === undefined)
        pending.push(i); // swept meanwhile: claim it again
      else {
        ids[i] = prior;
        duplicate[i] = true;
      }
    }
  }
  for (const [i, first] of firstOf) {
    duplicate[i] = true;
    ids[i] = duplicate[first] ? ids[first]! : String(preIds[first]);
  }
  return preIds;
}

/** Inserts items `which` (with ids from `preIds` when given); fills their `ids`. */
async function insertMessages(
  db: PgSession,
  nodeId: string,
  items: EnqueueItem[],
  which: number[],
  preIds: (number | null)[] | undefined,
  ids: string[],
  now: number,
): Promise<void> {
  let pending = which;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > RACE_RETRIES) {
      throw new FerryError('STORAGE_ERROR', 'queues kept changing while storing; try again');
    }
    const n = pending.length;
    const cols = {
      queue: new Array<string>(n),
      state: new Array<number>(n),
      priority: new Array<number>(n),
      notBefore: new Array<number>(n),
      expiresAt: new Array<number | null>(n),
      attempts: new Array<number>(n),
      enqueuedAt: new Array<number>(n),
      size: new Array<number>(n),
      nframes: new Array<number>(n),
      headers: new Array<string | null>(n),
      dedupKey: new Array<string | null>(n),
      leasedBy: new Array<string | null>(n),
      body: new Array<Buffer>(n),
      preId: new Array<number | null>(n),
    };
    for (let j = 0; j < n; j++) {
      const i = pending[j]!;
      const it = items[i]!;
      let size = 0;
      for (const f of it.frames) size += f.length;
      const scheduled = it.notBefore > it.enqueuedAt;
      const leased = it.leased === true && !scheduled;
      cols.queue[j] = it.queue;
      cols.state[j] = scheduled ? STATE_SCHEDULED : leased ? STATE_LEASED : STATE_READY;
      cols.priority[j] = it.priority;
      cols.notBefore[j] = it.notBefore;
      cols.expiresAt[j] = it.expiresAt;
      cols.attempts[j] = leased ? 1 : 0;
      cols.enqueuedAt[j] = it.enqueuedAt;
      cols.size[j] = size;
      cols.nframes[j] = it.frames.length;
      cols.headers[j] = it.headers ? JSON.stringify(it.headers) : null;
      cols.dedupKey[j] = it.dedupKey;
      cols.leasedBy[j] = leased ? nodeId : null;
      cols.body[j] = packFrames(it.frames);
      cols.preId[j] = preIds?.[i] ?? null;
    }
    const rows = await db.rows<{ ord: number; id: number }>(SQL_ENQUEUE, [
      cols.queue,
      cols.state,
      cols.priority,
      cols.notBefore,
      cols.expiresAt,
      cols.attempts,
      cols.enqueuedAt,
      cols.size,
      cols.nframes,
      cols.headers,
      cols.dedupKey,
      cols.leasedBy,
      cols.body,
      cols.preId,
      now,
    ]);
    const done = new Set<number>();
    for (const r of rows) {
      const i = pending[r.ord - 1]!;
      ids[i] = String(r.id);
      done.add(i);
    }
    // Items whose queue another broker created after this statement began: once more.
    pending = pending.filter((i) => !done.has(i));
  }
}
