/**
 * PZQ and ZMWS peers in Python (pyzmq, test/fixtures/*_roundtrip.py), written from the frame
 * tables, against a real broker: a second, independent implementation of each client side.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { testSeed } from '../helpers/seed.js';

const PYTHON = '/usr/bin/python3';
const PY_TIMEOUT_MS = 60_000;
const PZQ_MESSAGES = 1_000;
const ZMWS_ROUND_TRIPS = 500;

function runPython(script: string, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      [path.join(REPO_ROOT, 'test', 'fixtures', script), ...args],
      {
        timeout: PY_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        // The fixtures draw their random ids from the test seed.
        env: { ...process.env, FERRY_TEST_SEED: String(testSeed()) },
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${script} failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!));
      },
    );
  });
}

describe('PZQ and ZMWS from Python (pyzmq)', { timeout: 120_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startBroker({
      pzq: 'true',
      'pzq-receive': 'tcp://127.0.0.1:*',
      'pzq-send': 'tcp://127.0.0.1:*',
      zmws: 'true',
      'zmws-client': 'tcp://127.0.0.1:*',
      'zmws-worker': 'tcp://127.0.0.1:*',
    });
  });
  after(async () => broker.stop());

  test(`PZQ: ${PZQ_MESSAGES} messages produced one by one with ACKs, consumed, acked`, async (t) => {
    const ep = broker.server.pzqEndpoints!;
    const started = Date.now();
    const out = (await runPython('pzq_roundtrip.py', [
      ep.receive,
      ep.send,
      ep.monitor,
      String(PZQ_MESSAGES),
    ])) as {
      acked: number;
      consumed: number;
      before: Record<string, number>;
      after: Record<string, number>;
    };
    assert.equal(out.acked, PZQ_MESSAGES);
    assert.equal(out.consumed, PZQ_MESSAGES);
    assert.equal(out.before['messages'], PZQ_MESSAGES);
    assert.equal(out.before['messages_inflight'], 0);
    assert.equal(out.after['messages'], 0);
    t.diagnostic(`${PZQ_MESSAGES} messages in ${Date.now() - started} ms`);
  });

  test(`ZMWS: ${ZMWS_ROUND_TRIPS} SYNC round trips, an async job, SERVER-WORKERS`, async () => {
    const ep = broker.server.zmwsEndpoints!;
    const out = (await runPython('zmws_roundtrip.py', [
      ep.client,
      ep.worker,
      'PY-REV',
      String(ZMWS_ROUND_TRIPS),
    ])) as { replies: number; served: number; async: string; workers: { service: string }[] };
    assert.equal(out.replies, ZMWS_ROUND_TRIPS);
    assert.match(out.async, /^JOB: [0-9a-f]{32} PY-REV$/);
    assert.ok(out.workers.some((w) => w.service === 'PY-REV'));
    const id = out.async.split(' ')[1]!;
    // The worker was gone before the async job ran (or ran it); either way it is stored.
    await waitFor(async () => (await broker.server.jobs.get(id)) !== null, 'the async job stored');
  });
});
