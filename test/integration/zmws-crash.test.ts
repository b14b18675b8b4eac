/**
 * ZMWS over a broker killed with SIGKILL: an async job whose `JOB: <id>` reply the client got
 * is stored, and runs on a ZMWS worker after the restart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { freePort, spawnBroker, tmpDir, waitFor } from '../helpers/broker.js';
import { texts } from '../helpers/zmq-inbox.js';
import { RawZmwsWorker } from '../helpers/zmws-peers.js';

const JOBS = 20;

describe('ZMWS crash safety (kill -9)', { timeout: 60_000 }, () => {
  it('every accepted JOB: survives a SIGKILL and runs after the restart', async () => {
    const dataDir = tmpDir();
    const [port, clientPort, workerPort] = [await freePort(), await freePort(), await freePort()];
    const client = `tcp://127.0.0.1:${clientPort}`;
    const workerEp = `tcp://127.0.0.1:${workerPort}`;
    const args = [
      '--data',
      dataDir,
      '--bind',
      `tcp://127.0.0.1:${port}`,
      '--zmws',
      '--zmws-client',
      client,
      '--zmws-worker',
      workerEp,
    ];
    let broker = await spawnBroker(args);
    let worker: RawZmwsWorker | undefined;
    const req = new zmq.Request({ linger: 0, receiveTimeout: 5_000 });
    try {
      req.connect(client);
      const ids: string[] = [];
      for (let i = 0; i < JOBS; i++) {
        await req.send([`PARAM-JSON: {"n":${i}}`, 'JOB: AFTER-CRASH']);
        const [accepted] = texts(await req.receive());
        const m = /^JOB: ([0-9a-f]{32}) AFTER-CRASH$/.exec(accepted!);
        assert.ok(m, accepted);
        ids.push(m[1]!);
      }
      broker.child.kill('SIGKILL');
      assert.equal((await broker.exited).signal, 'SIGKILL');
      broker = await spawnBroker(args);
      const ran = new Set<string>();
      worker = new RawZmwsWorker(
        workerEp,
        'AFTER-CRASH',
        { heartbeatMs: 1_000, handler: (_p, jobId) => (ran.add(jobId), '"ok"') },
        'CRSH-0001',
      );
      await waitFor(() => ids.every((id) => ran.has(id)), 'every accepted job run', {
        timeoutMs: 20_000,
      });
    } finally {
      req.close();
      worker?.close();
      broker.child.kill('SIGKILL');
      await broker.exited;
    }
  });
});
