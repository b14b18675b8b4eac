/**
 * `bench:peers` W3, the parts every system shares: the timing loop (warm-up first, then the
 * measured calls, with hooks around exactly those, where Ferry takes its broker counters) and
 * the replies matched to their calls by id (the peers' durable calls).
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { W3_CALL_TIMEOUT_MS } from '../../bench/peers/config.js';
import { PendingReplies, sequentialCalls, w3TotalCalls } from '../../bench/peers/peer.js';

const SIZE_BYTES = 100;

describe('bench:peers W3 calls', () => {
  it('runs the warm-up, then the measured calls between the start and end hooks', async () => {
    const calls = 20;
    const events: string[] = [];
    let made = 0;
    const r = await sequentialCalls(
      (params) => {
        made++;
        events.push('call');
        return Promise.resolve(Buffer.alloc(params.length));
      },
      {
        calls,
        size: SIZE_BYTES,
        onProgress: () => {},
        measured: {
          start: () => Promise.resolve(void events.push('start')),
          end: () => Promise.resolve(void events.push('end')),
        },
      },
    );
    const warmup = w3TotalCalls(calls) - calls;
    assert.ok(warmup >= 1, 'at least one warm-up call');
    assert.equal(made, calls + warmup);
    assert.equal(events.indexOf('start'), warmup, 'start after the warm-up, before call 1');
    assert.equal(events.lastIndexOf('end'), events.length - 1, 'end after the last call');
    assert.equal(events.filter((e) => e === 'start' || e === 'end').length, 2);
    assert.equal(r.details['calls'], calls);
    assert.equal(r.details['warmupCalls'], warmup);
    assert.ok((r.metrics['callsPerSec'] ?? 0) > 0);
  });

  it('fails a run whose replies are of the wrong size', async () => {
    await assert.rejects(
      sequentialCalls(() => Promise.resolve(Buffer.alloc(1)), {
        calls: 3,
        size: SIZE_BYTES,
        onProgress: () => {},
      }),
      /replies of the wrong size/,
    );
  });

  it('resolves each reply by its id, drops one nobody waits for, times out a lost one', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const replies = new PendingReplies();
      const a = replies.expect();
      const b = replies.expect();
      assert.notEqual(a.id, b.id);
      replies.settle(b.id, Buffer.from('b'));
      replies.settle(a.id, Buffer.from('a'));
      replies.settle('no-such-call', Buffer.from('x'));
      assert.equal((await a.reply).toString(), 'a');
      assert.equal((await b.reply).toString(), 'b');
      const lost = replies.expect();
      mock.timers.tick(W3_CALL_TIMEOUT_MS);
      await assert.rejects(lost.reply, new RegExp(`no reply to call ${lost.id} in`));
      // A reply after the time limit is dropped, not delivered twice.
      replies.settle(lost.id, Buffer.from('late'));
    } finally {
      mock.timers.reset();
    }
  });
});
