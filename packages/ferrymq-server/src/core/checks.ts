/**
 * Checks of what clients send that queues, jobs and topics share: dedup and request keys,
 * headers, priority, delay and TTL. Each throws BAD_ARGUMENTS naming the field; `where`, when
 * given, prefixes the message (`message 3: priority must be …`).
 */
import { createHash } from 'node:crypto';
import { FerryError, PRIORITY_MAX, PRIORITY_MIN } from 'ferrymq/model';

export const DEDUP_KEY_MAX_LENGTH = 256;
export const HEADERS_MAX_BYTES = 64 * 1024;

export function checkKey(key: unknown, what: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > DEDUP_KEY_MAX_LENGTH) {
    throw new FerryError(
      'BAD_ARGUMENTS',
      `${what} must be a string of 1–${DEDUP_KEY_MAX_LENGTH} characters`,
    );
  }
}

/**
 * The dedup key the copies of a keyed request carry in each queue they go to (a publish's
 * durable copies, a multicast's): a re-send of the request finds its copies by it and stores
 * none again. A digest, so any request key fits the dedup key's length and none collides with
 * a key a client chose by accident.
 */
export function copyKeyOf(requestKey: string): string {
  return `ferry-request:${createHash('sha256').update(requestKey).digest('base64url')}`;
}

export function checkHeaders(headers: unknown, where: string): void {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new FerryError('BAD_ARGUMENTS', `${where}: headers must be an object of strings`);
  }
  let bytes = 0;
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string') {
      throw new FerryError('BAD_ARGUMENTS', `${where}: header ${k} must be a string`);
    }
    bytes += k.length + v.length;
  }
  if (bytes > HEADERS_MAX_BYTES) {
    throw new FerryError('BAD_ARGUMENTS', `${where}: headers exceed ${HEADERS_MAX_BYTES} bytes`);
  }
}

function badArguments(where: string | undefined, message: string): FerryError {
  return new FerryError('BAD_ARGUMENTS', where === undefined ? message : `${where}: ${message}`);
}

/** The priority (default 0), an integer 0–255. */
export function checkPriority(priority: number | undefined, where?: string): number {
  const p = priority ?? 0;
  if (!Number.isInteger(p) || p < PRIORITY_MIN || p > PRIORITY_MAX) {
    throw badArguments(where, 'priority must be an integer 0–255');
  }
  return p;
}

/** The delay (default 0), a finite number ≥ 0. */
export function checkDelayMs(delayMs: number | undefined, where?: string): number {
  const d = delayMs ?? 0;
  if (!Number.isFinite(d) || d < 0) throw badArguments(where, 'delayMs must be a number ≥ 0');
  return d;
}

/** When a TTL (finite, > 0) runs out from `now`, or null without one. */
export function expiryOf(ttlMs: number | undefined, now: number, where?: string): number | null {
  if (ttlMs === undefined) return null;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw badArguments(where, 'ttlMs must be a number > 0');
  return now + Math.round(ttlMs);
}
