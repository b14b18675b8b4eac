/**
 * `bench:peers` checks a peer's port before it loads the peer's adapter (and client): the host
 * and port read from each kind of URL the settings take, and a closed port reported as not
 * reachable without loading anything.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { loadPeersConfig } from '../../bench/peers/config.js';
import { checkListening, connectPeer, endpointOf } from '../../bench/peers/load-peer.js';

/** Port 1 on loopback: nothing listens there. */
const CLOSED_PORT = 1;

describe('bench:peers endpoints', () => {
  it('reads host and port from AMQP, Redis and NATS URLs, with the default port when none', () => {
    assert.deepEqual(endpointOf('amqp://guest:guest@127.0.0.1:5672', 1), {
      host: '127.0.0.1',
      port: 5672,
    });
    assert.deepEqual(endpointOf('redis://localhost', 6379), { host: 'localhost', port: 6379 });
    assert.deepEqual(endpointOf('127.0.0.1:4222', 1), { host: '127.0.0.1', port: 4222 });
    assert.deepEqual(endpointOf('nats://a.example:4223,nats://b.example:4224', 1), {
      host: 'a.example',
      port: 4223,
    });
    assert.deepEqual(endpointOf('amqp://[::1]:5673', 1), { host: '::1', port: 5673 });
    assert.throws(() => endpointOf('amqp://', 1), /names no host/);
  });

  it('reports an open port as listening, and a closed one as not reachable', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await checkListening('127.0.0.1', (server.address() as net.AddressInfo).port, 1_000);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await assert.rejects(checkListening('127.0.0.1', CLOSED_PORT, 1_000), /ECONNREFUSED/);
    const cfg = loadPeersConfig([], { BENCH_AMQP_URL: `amqp://127.0.0.1:${CLOSED_PORT}` });
    const r = await connectPeer('rabbitmq', cfg);
    assert.ok('why' in r, 'skipped');
    assert.match(r.why, /^not reachable \(.*ECONNREFUSED.*\)$/);
  });
});
