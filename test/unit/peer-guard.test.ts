/** The peer guard of the ROUTER endpoints: invalid frames counted, a peer dropped, then back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeerGuard } from 'ferrymq-server/internal/transport/peer-guard.js';

describe('peer guard', () => {
  it('drops a peer after the limit within the window, ignores it, then takes it back', () => {
    let now = 1_000;
    const g = new PeerGuard({ invalidLimit: 3, windowMs: 100, coolDownMs: 500, now: () => now });
    g.invalid('a');
    g.invalid('a');
    assert.equal(g.ignores('a'), false, 'two invalid frames: still served');
    assert.ok(g.answers('a'));
    g.invalid('a');
    assert.equal(g.ignores('a'), true, 'the third drops it');
    assert.equal(g.answers('a'), false, 'nothing is sent to a dropped peer');
    assert.equal(g.ignores('b'), false, 'other peers are not affected');
    assert.deepEqual(g.stats, {
      invalidFrames: 3,
      peersDropped: 1,
      ignoredFrames: 1,
      droppedNow: 1,
      messagesIn: 0,
      messagesOut: 0,
    });
    now += 500;
    assert.equal(g.ignores('a'), false, 'served again after the cool-down');
    assert.equal(g.stats.droppedNow, 0);
  });

  it('forgets invalid frames older than the window', () => {
    let now = 0;
    const g = new PeerGuard({ invalidLimit: 2, windowMs: 100, coolDownMs: 500, now: () => now });
    g.invalid('a');
    now += 101;
    g.invalid('a');
    assert.equal(g.ignores('a'), false, 'one per window never reaches the limit');
    g.invalid('a');
    assert.equal(g.ignores('a'), true);
    assert.equal(g.stats.peersDropped, 1);
  });
});
