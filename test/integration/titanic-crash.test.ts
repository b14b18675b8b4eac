/**
 * Titanic across a broker crash: `ferry start --mdp` runs as a child process, takes Titanic
 * requests (each answered 200 only once stored), is killed with SIGKILL, and restarted on the
 * same data folder and ports; a worker that connects afterwards serves every request, and
 * `titanic.reply` returns each result.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { spawnBroker, tmpDir, waitFor, type ChildBroker } from '../helpers/broker.js';
import { RawPeer, RawWorker, clientRequestV1, texts, type Frame } from '../helpers/mdp-peers.js';

const REQUESTS = 20;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function titanic(c: RawPeer, service: string, ...body: Frame[]): Promise<string[]> {
  await c.send(clientRequestV1(service, ...body));
  const reply = texts(await c.receive(`an answer from ${service}`, 10_000));
  assert.deepEqual(reply.slice(0, 3), ['', 'MDPC01', service]);
  return reply.slice(3);
}

describe('Titanic across a SIGKILL of the broker', { timeout: 90_000 }, () => {
  it('every request answered 200 is served after the restart', async () => {
    const data = tmpDir();
    const mdpEndpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = [
      '--data',
      data,
      '--bind',
      `tcp://127.0.0.1:${await freePort()}`,
      '--mdp',
      mdpEndpoint,
    ];
    let broker: ChildBroker | undefined = await spawnBroker(args);
    const ids: string[] = [];
    try {
      const c = await RawPeer.connect(mdpEndpoint);
      try {
        for (let i = 0; i < REQUESTS; i++) {
          const [status, id] = await titanic(c, 'titanic.request', 'crash-echo', `job ${i}`);
          assert.equal(status, '200');
          ids.push(id!);
        }
        assert.deepEqual(await titanic(c, 'titanic.reply', ids[0]!), ['300']);
      } finally {
        c.close();
      }
      broker.child.kill('SIGKILL');
      assert.equal((await broker.exited).signal, 'SIGKILL');
      broker = await spawnBroker(args);
      const worker = await RawWorker.start(mdpEndpoint, 'crash-echo', {
        handler: (body) => [Buffer.from(`done: ${body[0]!.toString()}`)],
      });
      const c2 = await RawPeer.connect(mdpEndpoint);
      try {
        await waitFor(() => worker.served >= REQUESTS, `${REQUESTS} requests served`, {
          timeoutMs: 30_000,
        });
        for (const [i, id] of ids.entries()) {
          assert.deepEqual(await titanic(c2, 'titanic.reply', id), ['200', `done: job ${i}`]);
        }
        assert.deepEqual(await titanic(c2, 'titanic.close', ids[0]!), ['200']);
        assert.deepEqual(await titanic(c2, 'titanic.reply', ids[0]!), ['400']);
      } finally {
        c2.close();
        await worker.close();
      }
    } finally {
      if (broker && broker.child.exitCode === null && broker.child.signalCode === null) {
        broker.child.kill('SIGTERM');
        await broker.exited;
      }
    }
  });
});
