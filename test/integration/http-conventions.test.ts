/**
 * The gateway's conventions against a real broker: liveness and readiness (also while
 * draining), no ZMWS catch-all without --zmws, 405 with Allow, errors that name the field and
 * the allowed values, `.` and `..` refused as names over HTTP and the Ferry protocol, no
 * prototype pollution, and the OpenAPI version from package.json.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FerryError } from 'ferrymq/model';
import {
  REPO_ROOT,
  TestResources,
  startBroker,
  waitFor,
  type TestBroker,
} from '../helpers/broker.js';
import { req } from '../helpers/http.js';

/** A request whose path is sent as written (fetch would resolve `.` and `..` segments). */
function rawRequest(
  base: string,
  method: string,
  rawPath: string,
): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: url.hostname, port: url.port, method, path: rawPath, timeout: 10_000 },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.end();
  });
}

describe('HTTP conventions', () => {
  const res = new TestResources();
  let b: TestBroker;
  let base: string;

  before(async () => {
    b = await startBroker({}, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
  });
  after(async () => {
    await b.stop();
    await res.closeAll();
  });

  it('/healthz is 200; /readyz is 200 with its checks while running', async () => {
    const h = await req(base, 'GET', '/healthz');
    assert.deepEqual([h.status, h.body], [200, { status: 'ok' }]);
    const r = await req(base, 'GET', '/readyz');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'ready');
    const names = (r.body.checks as { name: string; ok: boolean }[]).map((c) => [c.name, c.ok]);
    assert.deepEqual(names, [
      ['gateway open', true],
      ['endpoints bound', true],
      ['store writable', true],
    ]);
  });

  it('without --zmws there is no catch-all: GET /health is 404 and stores no job', async () => {
    for (const p of ['/health', '/SYNC-health', '/SERVER-JOBS']) {
      const r = await req(base, 'GET', p);
      assert.deepEqual([r.status, r.body.code], [404, 'ROUTE_NOT_FOUND'], p);
    }
    assert.equal((await req(base, 'POST', '/health', { body: {} })).status, 404);
    const jobs = await req(base, 'GET', '/v1/jobs?limit=100');
    assert.deepEqual(jobs.body.jobs ?? jobs.body, [], 'no job was stored');
  });

  it('a known path with another method: 405, Allow lists the methods it takes', async () => {
    const r = await req(base, 'PUT', '/v1/queues/c.q/messages');
    assert.equal(r.status, 405);
    assert.equal(r.body.code, 'METHOD_NOT_ALLOWED');
    assert.equal(r.headers.get('allow'), 'DELETE, GET, HEAD, POST');
    assert.match(r.body.message, /takes DELETE, GET, HEAD, POST/);
    const ready = await req(base, 'POST', '/readyz');
    assert.deepEqual([ready.status, ready.headers.get('allow')], [405, 'GET, HEAD']);
  });

  it('schema errors name the field and list what is allowed', async () => {
    const state = await req(base, 'GET', '/v1/queues/c.q/messages?state=inflight');
    assert.equal(state.body.code, 'BAD_ARGUMENTS');
    assert.equal(state.body.field, 'querystring.state');
    assert.match(
      state.body.message,
      /querystring\.state must be one of: ready, leased, scheduled, dead/,
    );
    const unknown = await req(base, 'POST', '/v1/queues/c.q/messages', { body: { bdy: 'x' } });
    assert.equal(unknown.body.field, 'body.bdy');
    assert.match(unknown.body.message, /unknown field "bdy"; allowed fields: body, frames, json,/);
    const deep = await req(base, 'POST', '/v1/queues/c.q/batch', {
      body: { messages: [{ body: 'x', priority: 999 }] },
    });
    assert.equal(deep.body.field, 'body.messages[0].priority');
    assert.match(deep.body.message, /body\.messages\[0\]\.priority must be <= 255/);
    const missing = await req(base, 'POST', '/v1/leases/1.1/extend', { body: {} });
    assert.equal(missing.body.field, 'body.ms');
    assert.match(missing.body.message, /needs the field "ms"/);
  });

  it('refuses `.` and `..` as queue, service and topic names, over HTTP and the protocol', async () => {
    for (const [p, method, code] of [
      ['/v1/queues/./messages', 'POST', 'INVALID_QUEUE_NAME'],
      ['/v1/queues/..', 'GET', 'INVALID_QUEUE_NAME'],
      ['/v1/services/../jobs', 'POST', 'INVALID_SERVICE_NAME'],
      ['/v1/services/./call', 'POST', 'INVALID_SERVICE_NAME'],
    ] as const) {
      const r = await rawRequest(base, method, p);
      assert.deepEqual([r.status, r.body.code], [400, code], p);
      assert.match(r.body.message ?? '', /not "\." or "\.\."/, p);
    }
    for (const topic of ['.', '..', 'a/../b', 'config/.']) {
      const r = await req(base, 'POST', '/v1/topics/publish', { body: { topic, body: 'x' } });
      assert.deepEqual([r.status, r.body.code], [400, 'INVALID_TOPIC'], topic);
    }
    // Names with dots in them are still names.
    const ok = await req(base, 'POST', '/v1/queues/.../messages', { body: { body: 'x' } });
    assert.equal(ok.status, 201, ok.text);
    // The Ferry protocol refuses them too: the check is the model's.
    const c = await res.client(b.endpoint);
    for (const name of ['.', '..']) {
      await assert.rejects(
        c.send(name, 'x'),
        (e: unknown) => e instanceof FerryError && e.code === 'INVALID_QUEUE_NAME',
        name,
      );
    }
  });

  it('a __proto__ key is refused and pollutes nothing', async () => {
    const r = await req(base, 'POST', '/v1/services/c.svc/jobs', {
      raw: '{"params":{"a":[{"__proto__":{"polluted":1}}]}}',
    });
    assert.deepEqual([r.status, r.body.code], [400, 'JSON_FORBIDDEN_KEY']);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    // As a string value, __proto__ is plain data.
    const ok = await req(base, 'POST', '/v1/queues/c.proto/messages', {
      body: { json: { key: '__proto__' } },
    });
    assert.equal(ok.status, 201, ok.text);
  });

  it('the OpenAPI document carries the package version', async () => {
    const pkg = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'packages', 'ferrymq-server', 'package.json'), 'utf8'),
    ) as { version: string };
    const doc = (await req(base, 'GET', '/openapi.json')).body;
    assert.equal(doc.info.version, pkg.version);
  });
});

describe('HTTP readiness while draining', () => {
  it('/readyz answers 503 NOT_READY once the broker starts to close', async () => {
    const b = await startBroker({}, { http: '127.0.0.1:0' });
    const base = b.server.httpUrl!;
    // A call waiting for a worker keeps the gateway draining (listening) for its grace period.
    const call = fetch(`${base}/v1/services/c.nobody/call?wait=30000`, {
      method: 'POST',
    }).then(
      (r) => r.status,
      () => 0,
    );
    try {
      await waitFor(
        async () => (await req(base, 'GET', '/v1/services')).body?.services?.length > 0,
        'the call is waiting',
      );
      assert.equal((await req(base, 'GET', '/readyz')).status, 200);
      const closing = b.stop();
      const during = await req(base, 'GET', '/readyz');
      assert.equal(during.status, 503, during.text);
      assert.equal(during.body.code, 'NOT_READY');
      assert.match(during.body.message, /not ready: .*(stopping|draining)/);
      const failed = (during.body.checks as { name: string; ok: boolean }[]).filter((c) => !c.ok);
      assert.ok(failed.length > 0);
      await closing;
      await call;
    } finally {
      await b.stop();
    }
  });
});
