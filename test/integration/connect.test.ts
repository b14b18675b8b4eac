/**
 * connect(): nothing at the endpoint fails fast with UNREACHABLE (not after the 30 s request
 * timeout), a malformed endpoint or option with CONFIG_INVALID naming the expected form, and a
 * broker that is there just works — also when it restarts after the first session.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, FerryError, type ConnectOptions } from 'ferrymq';
import { freePort, startBroker, TestResources, waitFor } from '../helpers/broker.js';

/** Far below the 30 s the SDK used to wait: the bound of the wait, not a timing assertion. */
const FAIL_FAST_BOUND_MS = 5_000;

const res = new TestResources();
after(() => res.closeAll());

/** Resolves with what `connect` rejects with, or fails the test if it does not within the bound. */
async function rejection(endpoints: unknown, options?: ConnectOptions): Promise<FerryError> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`connect did not fail within ${FAIL_FAST_BOUND_MS} ms`)),
      FAIL_FAST_BOUND_MS,
    );
  });
  try {
    const c = await Promise.race([connect(endpoints as string, options), bound]);
    await c.close({ timeoutMs: 0 });
    assert.fail(`connect(${JSON.stringify(endpoints)}) succeeded`);
  } catch (err) {
    assert.ok(err instanceof FerryError, `not a FerryError: ${String(err)}`);
    return err;
  } finally {
    clearTimeout(timer);
  }
}

describe('connect', () => {
  it('answers UNREACHABLE, well before the request timeout, when nothing listens', async () => {
    const port = await freePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const err = await rejection(endpoint);
    assert.equal(err.code, 'UNREACHABLE');
    assert.match(err.message, new RegExp(`nothing answers at ${endpoint}`));
    assert.match(err.message, /ferry start/, 'it says how to start a broker');
  });

  it('answers UNREACHABLE when none of several endpoints answers', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const err = await rejection([`tcp://127.0.0.1:${p1}`, `tcp://127.0.0.1:${p2}`]);
    assert.equal(err.code, 'UNREACHABLE');
    assert.match(err.message, new RegExp(`${p1}.*${p2}`));
  });

  it('answers UNREACHABLE for a host name that does not resolve', async () => {
    const err = await rejection('tcp://no-such-host.invalid:7400');
    assert.equal(err.code, 'UNREACHABLE');
  });

  it('answers CONFIG_INVALID with the expected form for a malformed endpoint', async () => {
    const cases: unknown[] = [
      '127.0.0.1:7400',
      'localhost:7400',
      'tcp://127.0.0.1',
      'tcp://127.0.0.1:0',
      'tcp://127.0.0.1:99999',
      'tcp://127.0.0.1:7400/x',
      'http://127.0.0.1:7480',
      '',
      [],
      [42],
      null,
    ];
    for (const endpoint of cases) {
      const err = await rejection(endpoint);
      assert.equal(err.code, 'CONFIG_INVALID', `${JSON.stringify(endpoint)}: ${err.message}`);
      if (typeof endpoint === 'string' || (Array.isArray(endpoint) && endpoint.length === 0)) {
        assert.match(err.message, /tcp:\/\/host:port/, `${JSON.stringify(endpoint)}`);
      }
    }
  });

  it('answers CONFIG_INVALID for bad client options, naming the option', async () => {
    const b = await res.broker();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ heartbeatMs: 5 }, /heartbeatMs/],
      [{ heartbeatMs: 'fast' }, /heartbeatMs/],
      [{ requestTimeoutMs: -1 }, /requestTimeoutMs/],
      [{ connectTimeoutMs: 0 }, /connectTimeoutMs/],
      [{ maxBatchMessages: 1.5 }, /maxBatchMessages/],
      [{ ackFlushAt: 0 }, /ackFlushAt/],
      [{ name: '' }, /name/],
      [{ heartbeat: 100 }, /unknown client option "heartbeat"/],
    ];
    for (const [options, names] of cases) {
      const err = await rejection(b.endpoint, options);
      assert.equal(err.code, 'CONFIG_INVALID', JSON.stringify(options));
      assert.match(err.message, names);
    }
  });

  it('connects to a broker that is there, and fails over past one that is not', async () => {
    const b = await res.broker();
    const c = await connect(b.endpoint, { heartbeatMs: 100 });
    try {
      assert.ok(await c.send('connect-ok', 'x'));
    } finally {
      await c.close();
    }
    const dead = `tcp://127.0.0.1:${await freePort()}`;
    const c2 = await connect([dead, b.endpoint], { heartbeatMs: 100 });
    try {
      assert.equal(c2.endpoint, b.endpoint);
      assert.ok(await c2.send('connect-ok', 'y'));
    } finally {
      await c2.close();
    }
  });

  it('after a first session, a broker that goes away is waited for, not UNREACHABLE', async () => {
    const port = await freePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const b1 = await startBroker({ bind: endpoint });
    const c = await connect(endpoint, { heartbeatMs: 100 });
    try {
      await c.send('connect-later', 'before');
      await b1.stop();
      const during = c.send('connect-later', 'during'); // waits for the broker to come back
      const b2 = await startBroker({ bind: endpoint, data: b1.dataDir });
      res.brokers.push(b2);
      assert.ok(await during);
      await waitFor(
        async () => (await b2.server.broker.queueStats('connect-later')).depth === 2,
        'both messages stored',
      );
      assert.ok(c.counters.reconnects >= 1);
    } finally {
      await c.close({ timeoutMs: 500 });
    }
  });
});
