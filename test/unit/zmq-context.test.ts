/** The SDK raises ZeroMQ's socket limit from the process's open-file limit (zmq-context.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { openFileLimit, raiseSocketLimit } from 'ferrymq/internal/transport/zmq-context.js';

/** libzmq's default socket limit per context. */
const ZMQ_DEFAULT_MAX_SOCKETS = 1_023;

describe('ZeroMQ context limit', () => {
  it("reads the soft open-file limit from Linux's limits table", () => {
    const table = [
      'Limit                     Soft Limit           Hard Limit           Units',
      'Max processes             63704                63704                processes',
      'Max open files            20000                1048576              files',
    ].join('\n');
    assert.equal(openFileLimit(table), 20_000);
    assert.equal(
      openFileLimit('Max open files            unlimited            unlimited            files'),
      Number.MAX_SAFE_INTEGER,
    );
    assert.equal(openFileLimit('nothing about files'), undefined);
  });

  it('raises the limit to the open files this process may have, within libzmq ceiling', () => {
    const files = openFileLimit();
    const limit = raiseSocketLimit();
    assert.equal(limit, zmq.context.maxSockets);
    if (files !== undefined && files > ZMQ_DEFAULT_MAX_SOCKETS) {
      assert.equal(limit, Math.min(files, zmq.context.maxSocketsLimit));
    } else {
      assert.ok(limit >= ZMQ_DEFAULT_MAX_SOCKETS);
    }
  });
});
