/** Durable job counts per service and status, moved along with each committed change. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DurableCounts } from 'ferrymq-server/internal/core/durable-counts.js';

describe('durable counts', () => {
  it('move creates a service on first use and moves between statuses', () => {
    const c = new DurableCounts();
    assert.equal(c.queued('s'), 0);
    c.move('s', null, 'queued', 3);
    c.move('s', 'queued', 'running');
    assert.deepEqual(c.get('s'), {
      queued: 2,
      running: 1,
      done: 0,
      failed: 0,
      cancelled: 0,
      expired: 0,
    });
    c.move('s', 'running', null);
    assert.equal(c.get('s')!.running, 0, 'a forgotten job leaves the counts');
    assert.deepEqual([...c.services()], ['s']);
  });

  it('never counts below zero', () => {
    const c = new DurableCounts();
    c.move('s', 'done', 'failed', 5);
    assert.equal(c.get('s')!.done, 0);
    assert.equal(c.get('s')!.failed, 5);
  });

  it('set copies the counts read at open', () => {
    const c = new DurableCounts();
    const read = { queued: 4, running: 0, done: 1, failed: 0, cancelled: 0, expired: 0 };
    c.set('s', read);
    c.move('s', 'queued', 'running');
    assert.equal(read.queued, 4, 'the caller’s object is not changed');
    assert.equal(c.queued('s'), 3);
  });
});
