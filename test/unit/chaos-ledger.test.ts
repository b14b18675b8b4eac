/** The chaos tool's audit (bench/chaos/chaos-ledger.ts): what counts as lost, stuck, duplicated. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ledger, auditFailed, formatAudit } from '../../bench/chaos/chaos-ledger.js';

describe('chaos audit', () => {
  it('counts an accepted, undelivered item as stuck while the broker holds it, lost otherwise', () => {
    const l = new Ledger('queue');
    l.accept('a');
    l.accept('b');
    l.deliver('a');
    assert.deepEqual([l.audit(1).stuck, l.audit(1).lost], [1, 0]);
    assert.deepEqual([l.audit(0).stuck, l.audit(0).lost], [0, 1]);
    assert.equal(auditFailed([l.audit(0)]), true);
    assert.equal(auditFailed([l.audit(1)]), true);
  });

  it('reports duplicates without failing, and tells those whose ack was in flight at a kill', async () => {
    const l = new Ledger('jobs');
    let answer!: () => void;
    l.accept('x');
    l.accept('y');
    l.deliver('x'); // delivered before the producer's reply: still not missing
    l.deliver('y');
    l.settle('x', new Promise<void>((r) => (answer = r)));
    l.settle('y', Promise.resolve());
    await Promise.resolve();
    l.noteKill();
    answer();
    l.deliver('x');
    l.deliver('y');
    const row = l.audit(0);
    assert.deepEqual(
      [row.accepted, row.delivered, row.lost, row.duplicated, row.duplicatedSettleInFlight],
      [2, 2, 0, 2, 1],
    );
    assert.equal(row.deliveries, 4);
    assert.equal(auditFailed([row]), false);
    assert.match(formatAudit([row]), /\| jobs +\| +2 \| +2 \| +0 \| +0 \| +2 \| +1 \| +4 \|/);
  });
});
