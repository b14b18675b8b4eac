/** Storage calls in flight: counted until settled, idle once the last one is. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PendingCalls } from 'ferrymq-server/internal/core/pending-calls.js';

function deferred(): {
  p: Promise<number>;
  resolve: (n: number) => void;
  reject: (e: Error) => void;
} {
  let resolve!: (n: number) => void;
  let reject!: (e: Error) => void;
  const p = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { p, resolve, reject };
}

describe('pending calls', () => {
  it('track returns the same promise and counts it until it settles', async () => {
    const calls = new PendingCalls();
    const a = deferred();
    const b = deferred();
    assert.equal(calls.track(a.p), a.p);
    calls.track(b.p).catch(() => {});
    assert.equal(calls.pending, 2);
    a.resolve(1);
    await a.p;
    assert.equal(calls.pending, 1);
    b.reject(new Error('store failed'));
    await b.p.catch(() => {});
    assert.equal(calls.pending, 0, 'a failed call counts as settled');
  });

  it('idle resolves only once the last call settles', async () => {
    const calls = new PendingCalls();
    await calls.idle();
    const a = deferred();
    const b = deferred();
    void calls.track(a.p);
    void calls.track(b.p);
    let idle = false;
    const waiting = calls.idle().then(() => (idle = true));
    a.resolve(1);
    await a.p;
    await Promise.resolve();
    assert.equal(idle, false);
    b.resolve(2);
    await waiting;
    assert.equal(idle, true);
    assert.equal(calls.pending, 0);
  });
});
