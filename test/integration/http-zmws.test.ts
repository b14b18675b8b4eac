/**
 * The HTTP ZMWS routes with the ZMWS ZeroMQ dialect on: a raw ZMWS worker (from the frame
 * tables) serves `GET /SYNC-STR-REV?str=…` as ZMWS's gateway did, and `/SERVER-WORKERS`
 * answers the dialect's own listing (with the worker's heartbeat expiry).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startBroker, waitFor } from '../helpers/broker.js';
import { req, startWorker, type Loose } from '../helpers/http.js';
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
  it('ZMWS routes: async job, SYNC- with query, JSON and form parameters, SERVER-WORKERS, jsonp', async () => {
    const zb = await startBroker(
      { zmws: 'true', 'zmws-client': 'tcp://127.0.0.1:*', 'zmws-worker': 'tcp://127.0.0.1:*' },
      { http: '127.0.0.1:0' },
    );
    const b = zb;
    const base = zb.server.httpUrl!;
    const get = (path: string) => req(base, 'GET', path);
    try {
      const seen: unknown[] = [];
      const w = startWorker(b.server, 'STR-REV', (p) => {
        seen.push(p);
        return String((p as { str: string }).str)
          .split('')
          .reverse()
          .join('');
      });
      try {
        const sync = await req(base, 'GET', '/SYNC-STR-REV?str=Hello,+world');
        assert.equal(sync.status, 200);
        assert.equal(sync.headers.get('content-type'), 'application/javascript');
        assert.equal(sync.headers.get('access-control-allow-origin'), '*');
        assert.match(sync.text, /^PARAM-JSON: "dlrow ,olleH"\nCOMPLETE: STR-REV \[[0-9a-f]{32}\]$/);
        assert.deepEqual(seen[0], { str: 'Hello, world' });

        const json = await req(base, 'POST', '/SYNC-STR-REV', { body: { str: 'abc' } });
        assert.match(json.text, /^PARAM-JSON: "cba"\nCOMPLETE: STR-REV/);
        const form = await req(base, 'POST', '/SYNC-STR-REV', {
          raw: 'str=xyz',
          contentType: 'application/x-www-form-urlencoded',
        });
        assert.match(form.text, /^PARAM-JSON: "zyx"\n/);

        const async = await req(base, 'GET', '/STR-REV?str=q');
        const m = /^JOB: ([0-9a-f]{32}) STR-REV$/.exec(async.text);
        assert.ok(m, async.text);
        const done = await get(`/v1/jobs/${m[1]}?wait=10000`);
        assert.equal(done.body.result, 'q');

        const workers = await req(base, 'GET', '/SERVER-WORKERS');
        const list = JSON.parse(workers.text) as Loose[];
        assert.ok(list.some((x) => x.service === 'STR-REV' && typeof x.workerid === 'string'));
        const mine = list.find((x) => x.service === 'STR-REV');
        assert.deepEqual([mine.protocol, mine.running, mine.hb], ['test', 0, null]);
        const hist = JSON.parse((await req(base, 'GET', '/SERVER-HIST')).text) as Loose[];
        assert.ok(hist.some((j) => j.jobid === m[1] && j.status === 'done'));
        assert.equal(typeof hist[0].completedat, 'number');
        assert.deepEqual(JSON.parse((await req(base, 'GET', '/SERVER-ACTIVE')).text), []);
        assert.ok(Array.isArray(JSON.parse((await req(base, 'GET', '/SERVER-JOBS')).text)));

        const jsonp = await req(base, 'GET', '/STR-REV?str=z&jsonp=cb');
        assert.match(jsonp.text, /^cb\("JOB: [0-9a-f]{32} STR-REV"\);$/);
        const badJsonp = await req(base, 'GET', '/STR-REV?jsonp=alert(1)');
        assert.equal(badJsonp.body.code, 'BAD_ARGUMENTS');
      } finally {
        w.close();
      }
      assert.equal((await req(base, 'GET', '/SYNC-NEVER-SEEN?x=1')).text, 'FAIL: NEVER-SEEN');
      assert.match(
        (await req(base, 'GET', '/NEVER-SEEN?x=1')).text,
        /^JOB: [0-9a-f]{32} NEVER-SEEN$/,
      );
      assert.equal((await req(base, 'GET', '/bad%20name')).text, 'FAIL: bad name');
      // A worker's failure: FAIL with its reason.
      const f = startWorker(b.server, 'h.zfail', () => {
        throw new Error('no such file');
      });
      try {
        const failed = await req(base, 'GET', '/SYNC-h.zfail?x=1');
        assert.match(
          failed.text,
          /^PARAM-JSON: ".*no such file"\nFAIL: h\.zfail \[[0-9a-f]{32}\]$/,
        );
      } finally {
        f.close();
      }
      assert.equal(
        (await req(base, 'POST', '/X', { raw: '{nope', contentType: 'text/plain' })).body.code,
        'BAD_JSON',
      );
      // Forms are a ZMWS convention, scoped to its routes: REST still takes JSON only.
      const form = await req(base, 'POST', '/v1/queues/z.form/messages', {
        raw: 'body=x',
        contentType: 'application/x-www-form-urlencoded',
      });
      assert.deepEqual([form.status, form.body.code], [415, 'UNSUPPORTED_MEDIA_TYPE']);
      const proto = await req(base, 'POST', '/X', {
        raw: '{"__proto__":{}}',
        contentType: 'text/plain',
      });
      assert.equal(proto.body.code, 'JSON_FORBIDDEN_KEY');
      // A known path with a method ZMWS does not take.
      const put = await req(base, 'PUT', '/STR-REV');
      assert.deepEqual([put.status, put.headers.get('allow')], [405, 'GET, HEAD, POST']);
    } finally {
      await zb.stop();
    }
  });
});
