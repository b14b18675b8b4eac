/** The chaos tool's audit (bench/chaos/chaos-ledger.ts): what counts as lost, stuck, duplicated. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ledger, auditFailed, formatAudit } from '../../bench/chaos/chaos-ledger.js';

describe('chaos audit', () => {
  it('counts an accepted, undelivered item as stuck while the broker holds it, lost otherwise', () => {
    const l = new Ledger('queue');
    l.accept('a');
    l.accept('b');
    l.deliver('a', '1');
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
    l.accept('z');
    l.deliver('x', '1'); // delivered before the producer's reply: still not missing
    l.deliver('y', '2');
    l.deliver('z', '3');
    l.settle('x', new Promise<void>((r) => (answer = r)));
    l.settle('y', Promise.resolve());
    await Promise.resolve();
    l.noteKill();
    answer();
    l.deliver('x', '1'); // redelivered: its ack was in flight at the kill
    l.deliver('y', '2'); // redelivered: its ack had been answered
    l.deliver('z', '4'); // a second copy under another id: stored twice
    const row = l.audit(0);
    assert.deepEqual(
      [
        row.accepted,
        row.delivered,
        row.lost,
        row.duplicated,
        row.duplicatedSettleInFlight,
        row.duplicatedStoredTwice,
      ],
      [3, 3, 0, 3, 1, 1],
    );
    assert.equal(row.deliveries, 6);
    assert.equal(auditFailed([row]), false);
    assert.match(formatAudit([row]), /\| jobs +\| +3 \| +3 \| +0 \| +0 \| +3 \| +1 \| +1 \| +6 \|/);
  });
});
