/**
 * The gateway's life cycle: a client that leaves a long poll takes nothing with it, a broker
 * closing with polls and event streams open closes promptly, a taken HTTP port is refused
 * with ADDRESS_IN_USE, and `ferry start` prints and serves its gateway (or not, --no-http).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort, runCli, spawnBroker, startBroker, tmpDir, waitFor } from '../helpers/broker.js';
import { req } from '../helpers/http.js';
import { FerryError } from 'ferrymq/model';

describe('HTTP gateway life cycle', () => {
  it('a client leaving a long poll cancels it: the next message stays ready', async () => {
    const b = await startBroker({}, { http: '127.0.0.1:0' });
    try {
      const base = b.server.httpUrl!;
      const ac = new AbortController();
      const poll = fetch(`${base}/v1/queues/l.leave/consume?wait=30000`, {
        method: 'POST',
        signal: ac.signal,
      }).catch(() => undefined);
      const consumers = async () =>
        (await req(base, 'GET', '/v1/queues/l.leave')).body?.consumers as number | undefined;
      await waitFor(async () => (await consumers()) === 1, 'the poll is waiting');
      ac.abort();
      await poll;
      await waitFor(async () => (await consumers()) === 0, 'the poll is gone');
      await req(base, 'POST', '/v1/queues/l.leave/messages', { body: { body: 'x' } });
      const s = (await req(base, 'GET', '/v1/queues/l.leave')).body;
      assert.deepEqual([s.ready, s.leased], [1, 0]);
    } finally {
      await b.stop();
    }
  });

  it('closes promptly with a long poll and an event stream open', async () => {
    const b = await startBroker({}, { http: '127.0.0.1:0' });
    const base = b.server.httpUrl!;
    const poll = fetch(`${base}/v1/queues/l.close/consume?wait=60000`, { method: 'POST' }).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      () => ({ status: 0, body: 'closed' }),
    );
    const stream = await fetch(`${base}/v1/events/stats`);
    assert.equal(stream.status, 200);
    const streamEnd = stream.text().then(
      () => 'ended',
      () => 'cut',
    );
    await waitFor(
      async () => (await req(base, 'GET', '/v1/queues/l.close')).body?.consumers === 1,
      'the poll is waiting',
    );
    const t0 = Date.now();
    await b.stop();
    assert.ok(Date.now() - t0 < 5_000, `closed in ${Date.now() - t0} ms`);
    assert.deepEqual(await poll, { status: 200, body: '{"messages":[]}' }, 'the poll was answered');
    assert.equal(await streamEnd, 'ended', 'the stream ended cleanly');
  });

  it('refuses a taken HTTP port with ADDRESS_IN_USE and frees the data folder', async () => {
    const port = await freePort();
    const a = await startBroker({}, { http: `127.0.0.1:${port}` });
    try {
      const dataDir = tmpDir();
      await assert.rejects(
        startBroker({ data: dataDir }, { http: `127.0.0.1:${port}` }),
        (e: unknown) => e instanceof FerryError && e.code === 'ADDRESS_IN_USE',
      );
      const again = await startBroker({ data: dataDir });
      await again.stop();
    } finally {
      await a.stop();
    }
  });

  it('ferry start serves the gateway where --http says, and none with --no-http', async () => {
    const port = await freePort();
    const b = await spawnBroker([
      '--data',
      tmpDir(),
      '--bind',
      'tcp://127.0.0.1:*',
      '--http',
      `127.0.0.1:${port}`,
    ]);
    try {
      const r = await req(`http://127.0.0.1:${port}`, 'GET', '/v1/stats');
      assert.equal(r.status, 200);
      assert.equal(r.body.broker.queues, 0);
    } finally {
      b.child.kill('SIGTERM');
      await b.exited;
    }
    const both = await runCli(['start', '--http', '127.0.0.1:1', '--no-http']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /CONFIG_INVALID/);
    const help = await runCli(['start', '--help']);
    assert.match(help.stdout, /--no-http/);
    assert.match(help.stdout, /--http-body-limit/);
  });
});
