/**
 * The HTTP ZMWS routes with the ZMWS ZeroMQ dialect on: a raw ZMWS worker (from the frame
 * tables) serves `GET /SYNC-STR-REV?str=…` as ZMWS's gateway did, and `/SERVER-WORKERS`
 * answers the dialect's own listing (with the worker's heartbeat expiry).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startBroker, waitFor } from '../helpers/broker.js';
import { req, type Loose } from '../helpers/http.js';
import { RawZmwsWorker } from '../helpers/zmws-peers.js';

describe('HTTP ZMWS routes with ZMWS workers', () => {
  it('a ZMWS worker serves an HTTP SYNC- request; SERVER-WORKERS is the dialect listing', async () => {
    const b = await startBroker(
      { zmws: 'true', 'zmws-client': 'tcp://127.0.0.1:*', 'zmws-worker': 'tcp://127.0.0.1:*' },
      { http: '127.0.0.1:0' },
    );
    const w = new RawZmwsWorker(
      b.server.zmwsEndpoints!.worker,
      'STR-REV',
      {
        heartbeatMs: 1_000,
        handler: (p) =>
          JSON.stringify((JSON.parse(p) as { str: string }).str.split('').reverse().join('')),
      },
      '2880-D208',
    );
    try {
      const base = b.server.httpUrl!;
      await waitFor(() => b.server.jobs.hasWorkers('STR-REV'), 'the ZMWS worker registered');
      const r = await req(base, 'GET', '/SYNC-STR-REV?str=Hello,+world');
      assert.match(r.text, /^PARAM-JSON: "dlrow ,olleH"\nCOMPLETE: STR-REV \[[0-9a-f]{32}\]$/);
      const workers = JSON.parse((await req(base, 'GET', '/SERVER-WORKERS')).text) as Loose[];
      const mine = workers.find((x) => x.workerid === '2880-D208');
      assert.ok(mine, JSON.stringify(workers));
      assert.equal(mine.service, 'STR-REV');
      assert.ok(mine.hb > Date.now() / 1000, 'hb is the purge time, in the future');
      const async = await req(base, 'GET', '/STR-REV?str=abc');
      const id = /^JOB: ([0-9a-f]{32}) STR-REV$/.exec(async.text)?.[1];
      assert.ok(id, async.text);
      const done = await req(base, 'GET', `/v1/jobs/${id}?wait=10000`);
      assert.equal(done.body.result, 'cba');
    } finally {
      w.close();
      await b.stop();
    }
  });
});
