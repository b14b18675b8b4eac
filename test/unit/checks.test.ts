/** The checks queues, jobs and topics share: keys, headers, priority, delay, TTL. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from 'ferrymq/model';
import {
  DEDUP_KEY_MAX_LENGTH,
  HEADERS_MAX_BYTES,
  checkDelayMs,
  checkHeaders,
  checkKey,
  checkPriority,
  expiryOf,
} from 'ferrymq-server/internal/core/checks.js';

function refuses(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FerryError);
    assert.equal(err.code, 'BAD_ARGUMENTS');
    assert.equal(err.message, message);
    return true;
  });
}

describe('shared checks', () => {
  it('keys are strings of 1 to the maximum length', () => {
    checkKey('k', 'dedupKey');
    checkKey('x'.repeat(DEDUP_KEY_MAX_LENGTH), 'dedupKey');
    const msg = `dedupKey must be a string of 1–${DEDUP_KEY_MAX_LENGTH} characters`;
    refuses(() => checkKey('', 'dedupKey'), msg);
    refuses(() => checkKey('x'.repeat(DEDUP_KEY_MAX_LENGTH + 1), 'dedupKey'), msg);
    refuses(() => checkKey(7, 'dedupKey'), msg);
  });

  it('headers are an object of strings within the byte limit', () => {
    checkHeaders({ a: 'b' }, 'job');
    refuses(() => checkHeaders([], 'job'), 'job: headers must be an object of strings');
    refuses(() => checkHeaders(null, 'job'), 'job: headers must be an object of strings');
    refuses(() => checkHeaders({ a: 1 }, 'message 0'), 'message 0: header a must be a string');
    refuses(
      () => checkHeaders({ k: 'v'.repeat(HEADERS_MAX_BYTES) }, 'job'),
      `job: headers exceed ${HEADERS_MAX_BYTES} bytes`,
    );
  });

  it('priority defaults to 0 and is an integer 0–255; where prefixes the message', () => {
    assert.equal(checkPriority(undefined), 0);
    assert.equal(checkPriority(255), 255);
    refuses(() => checkPriority(256), 'priority must be an integer 0–255');
    refuses(() => checkPriority(1.5, 'message 2'), 'message 2: priority must be an integer 0–255');
    refuses(() => checkPriority(-1), 'priority must be an integer 0–255');
  });

  it('delay defaults to 0 and is a finite number ≥ 0', () => {
    assert.equal(checkDelayMs(undefined), 0);
    assert.equal(checkDelayMs(12.5), 12.5);
    refuses(() => checkDelayMs(-1), 'delayMs must be a number ≥ 0');
    refuses(() => checkDelayMs(Infinity, 'message 1'), 'message 1: delayMs must be a number ≥ 0');
  });

  it('a TTL gives the rounded expiry time, none gives null', () => {
    assert.equal(expiryOf(undefined, 1_000), null);
    assert.equal(expiryOf(10.6, 1_000), 1_011);
    refuses(() => expiryOf(0, 1_000), 'ttlMs must be a number > 0');
    refuses(
      () => expiryOf(Number.NaN, 1_000, 'message 0'),
      'message 0: ttlMs must be a number > 0',
    );
  });
});
