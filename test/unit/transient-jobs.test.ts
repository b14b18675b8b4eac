/** Transient jobs in memory: live until final, then among the most recent finished ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from 'ferrymq-server/internal/core/job-state.js';
import {
  RECENT_TRANSIENT_MAX,
  TransientJobs,
} from 'ferrymq-server/internal/core/transient-jobs.js';

const job = (id: string): Job => ({ id }) as Job;

describe('transient jobs', () => {
  it('a job is live until retired, then recent; get finds either', () => {
    const t = new TransientJobs();
    const a = job('a');
    t.add(a);
    assert.equal(t.getLive('a'), a);
    assert.ok(t.isLive('a'));
    assert.equal(t.getRecent('a'), undefined);
    assert.equal(t.get('a'), a);
    assert.deepEqual(t.liveJobs(), [a]);
    t.retire(a);
    assert.equal(t.getLive('a'), undefined);
    assert.ok(!t.isLive('a'));
    assert.equal(t.getRecent('a'), a);
    assert.equal(t.get('a'), a);
    assert.deepEqual(t.liveJobs(), []);
  });

  it('forgetRecent drops a finished job only', () => {
    const t = new TransientJobs();
    const a = job('a');
    t.add(a);
    assert.equal(t.forgetRecent('a'), false, 'a live job is not forgotten this way');
    assert.ok(t.isLive('a'));
    t.retire(a);
    assert.equal(t.forgetRecent('a'), true);
    assert.equal(t.get('a'), undefined);
  });

  it('keeps at most RECENT_TRANSIENT_MAX finished jobs, evicting the oldest first', () => {
    const t = new TransientJobs();
    for (let i = 0; i < RECENT_TRANSIENT_MAX + 2; i++) {
      const j = job(`j${i}`);
      t.add(j);
      t.retire(j);
    }
    assert.equal(t.get('j0'), undefined);
    assert.equal(t.get('j1'), undefined);
    assert.ok(t.get('j2'));
    assert.ok(t.get(`j${RECENT_TRANSIENT_MAX + 1}`));
  });
});
