/**
 * Bearer tokens on the HTTP gateway, with an auth file: every route family answers 401
 * UNAUTHENTICATED without a valid token and 403 FORBIDDEN without the verb on the resource
 * (and changes nothing), and works with it; lists and stats show only what the user may see;
 * `/metrics` takes its own token or an admin; the rate limit counts per token (429
 * RATE_LIMITED); without an auth file every route stays open.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway } from 'ferrymq-server/internal/http/gateway.js';
import {
  hashToken,
  parseAuthConfig,
  type AuthModel,
} from 'ferrymq-server/internal/security/auth-model.js';
import { startBroker, tmpDir, type TestBroker } from '../helpers/broker.js';
import { startWorker, type Loose } from '../helpers/http.js';

const TOKENS = { app: 'app-token-1', ops: 'ops-token-2', topics: 'topic-token-3' };
const METRICS_TOKEN = 'scrape-token-4';

function writeAuthFile(): string {
  const file = path.join(tmpDir('ferry-auth-'), 'auth.json');
  const users = [
    {
      name: 'app',
      tokens: [hashToken(TOKENS.app)],
      allow: {
        'queue:send': ['orders.*'],
        'queue:consume': ['orders.*'],
        'service:call': ['resize'],
      },
      deny: { 'queue:send': ['orders.audit'] },
    },
    {
      name: 'ops',
      tokens: [hashToken(TOKENS.ops)],
      allow: {
        admin: ['**'],
        'queue:send': ['secret.*'],
        'queue:manage': ['**'],
        'service:manage': ['**'],
        'topic:subscribe': ['**'],
      },
    },
    {
      name: 'topics',
      tokens: [hashToken(TOKENS.topics)],
      allow: { 'topic:publish': ['config/**'], 'topic:subscribe': ['config/**'] },
    },
  ];
  fs.writeFileSync(file, JSON.stringify({ users }));
  return file;
}

interface Reply {
  status: number;
  body: Loose;
  headers: Headers;
}

async function call(
  base: string,
  method: string,
  p: string,
  token?: string,
  body?: unknown,
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + p, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

describe('HTTP bearer tokens and permissions', () => {
  let b: TestBroker;
  let base: string;
  before(async () => {
    b = await startBroker(
      { 'auth-file': writeAuthFile(), 'metrics-token': hashToken(METRICS_TOKEN) },
      { http: '127.0.0.1:0' },
    );
    base = b.server.httpUrl!;
  });
  after(() => b?.stop());

  it('answers 401 UNAUTHENTICATED on every route family without a valid token', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/v1/queues'],
      ['GET', '/v1/queues/orders.eu'],
      ['POST', '/v1/queues/orders.eu/messages', { body: 'x' }],
      ['POST', '/v1/queues/orders.eu/consume'],
      ['POST', '/v1/leases/1.1/ack'],
      ['GET', '/v1/queues/orders.eu/browse'],
      ['DELETE', '/v1/queues/orders.eu/messages'],
      ['POST', '/v1/queues/orders.eu/pause'],
      ['POST', '/v1/services/resize/jobs', { params: 1 }],
      ['GET', '/v1/jobs/search'],
      ['GET', '/v1/services'],
      ['POST', '/v1/topics/publish', { topic: 'config/a', body: 'x' }],
      ['GET', '/v1/topics/retained'],
      ['GET', '/v1/subscriptions'],
      ['GET', '/v1/stats'],
      ['GET', '/v1/events/stats'],
      ['GET', '/v1/connections'],
      ['GET', '/metrics'],
    ];
    for (const [method, p, body] of routes) {
      for (const token of [undefined, 'not-a-token']) {
        const r = await call(base, method, p, token, body);
        assert.equal(
          r.status,
          401,
          `${method} ${p} (${token ?? 'none'}): ${JSON.stringify(r.body)}`,
        );
        assert.equal(r.body.code, 'UNAUTHENTICATED');
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="ferry"');
      }
    }
    assert.equal(b.server.broker.listQueues().includes('orders.eu'), false, 'nothing was sent');
  });

  it('keeps health, the OpenAPI document and the dashboard page open', async () => {
    for (const p of ['/healthz', '/readyz', '/openapi.json', '/', '/dashboard/dashboard.js']) {
      assert.equal((await call(base, 'GET', p)).status, 200, p);
    }
    const doc = (await call(base, 'GET', '/openapi.json')).body;
    assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
    assert.deepEqual(doc.security, [{ bearer: [] }]);
  });

  it('answers 403 FORBIDDEN per verb and resource, and changes nothing', async () => {
    const app = TOKENS.app;
    const sent = await call(base, 'POST', '/v1/queues/orders.eu/messages', app, { body: 'x' });
    assert.equal(sent.status, 201);
    const refused: [string, string, unknown?][] = [
      ['POST', '/v1/queues/billing/messages', { body: 'x' }], // not granted
      ['POST', '/v1/queues/orders.audit/messages', { body: 'x' }], // denied: deny wins
      ['POST', '/v1/queues/billing/consume'],
      ['GET', '/v1/queues/orders.eu/browse'], // queue:manage
      ['DELETE', '/v1/queues/orders.eu/messages'],
      ['POST', '/v1/queues/orders.eu/pause'],
      ['PATCH', '/v1/queues/orders.eu/policy', { maxDepth: 1 }],
      ['DELETE', '/v1/queues/orders.eu?force=true'],
      ['POST', '/v1/services/thumbs/jobs', { params: 1 }], // service:call elsewhere
      ['POST', '/v1/topics/publish', { topic: 'config/a', body: 'x' }],
      ['GET', '/v1/topics/subscribe?pattern=config/**'],
      ['GET', '/v1/connections'], // admin
      ['GET', '/metrics'],
    ];
    for (const [method, p, body] of refused) {
      const r = await call(base, method, p, app, body);
      assert.equal(r.status, 403, `${method} ${p}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'FORBIDDEN');
      assert.match(r.body.message, /user "app" may not/);
    }
    const stats = await b.server.broker.queueStats('orders.eu');
    assert.equal(stats.ready, 1, 'not purged');
    assert.equal(stats.paused, false, 'not paused');
    assert.equal(b.server.broker.listQueues().includes('billing'), false);
    assert.equal(b.server.broker.listQueues().includes('orders.audit'), false);
  });

  it('lets each user do what it is granted, leases and jobs included', async () => {
    const app = TOKENS.app;
    const ops = TOKENS.ops;
    await call(base, 'POST', '/v1/queues/orders.us/messages', app, { body: 'y' });
    const got = await call(base, 'POST', '/v1/queues/orders.us/consume', app);
    assert.equal(got.status, 200);
    const lease = got.body.messages[0].lease as string;
    // Another user may not settle app's lease; app may.
    assert.equal((await call(base, 'POST', `/v1/leases/${lease}/ack`, TOKENS.topics)).status, 403);
    const batch = await call(base, 'POST', '/v1/leases/ack', TOKENS.topics, { leases: [lease] });
    assert.equal(batch.status, 403);
    assert.equal((await call(base, 'POST', `/v1/leases/${lease}/ack`, app)).status, 204);

    const w = startWorker(b.server, 'resize', (p) => p);
    try {
      const job = await call(base, 'POST', '/v1/services/resize/call?wait=10000', app, {
        params: 7,
      });
      assert.equal(job.status, 200, JSON.stringify(job.body));
      const id = job.body.id as string;
      assert.equal((await call(base, 'GET', `/v1/jobs/${id}`, app)).status, 200);
      assert.equal((await call(base, 'POST', `/v1/jobs/${id}/retry`, app)).status, 403);
      assert.equal((await call(base, 'GET', `/v1/jobs/${id}/detail`, ops)).status, 200);
      assert.equal((await call(base, 'GET', `/v1/jobs/${id}`, TOKENS.topics)).status, 403);
    } finally {
      w.close();
    }

    const pub = await call(base, 'POST', '/v1/topics/publish', TOKENS.topics, {
      topic: 'config/db',
      body: 'db1',
    });
    assert.equal(pub.status, 201);
    // Retaining needs topic:retain, which `topics` lacks.
    const retain = await call(base, 'POST', '/v1/topics/publish', TOKENS.topics, {
      topic: 'config/db',
      body: 'db1',
      retain: true,
    });
    assert.equal(retain.status, 403);
    assert.match(retain.body.message, /topic:retain/);
    const wide = await call(base, 'GET', '/v1/topics/retained?pattern=**', TOKENS.topics);
    assert.equal(wide.status, 403, 'a wider pattern than granted');
    const narrow = await call(base, 'GET', '/v1/topics/retained?pattern=config/**', TOKENS.topics);
    assert.equal(narrow.status, 200);

    assert.equal((await call(base, 'POST', '/v1/queues/orders.eu/pause', ops)).status, 200);
    assert.equal((await call(base, 'POST', '/v1/queues/orders.eu/resume', ops)).status, 200);
    assert.equal((await call(base, 'GET', '/v1/connections', ops)).status, 200);
  });

  it('shows each user only what it may see in lists and stats', async () => {
    const sent = await call(base, 'POST', '/v1/queues/secret.q/messages', TOKENS.ops, {
      body: 'z',
    });
    assert.equal(sent.status, 201);
    const names = async (token: string): Promise<string[]> =>
      ((await call(base, 'GET', '/v1/queues', token)).body.queues as Loose[]).map(
        (q) => q.name as string,
      );
    const all = await names(TOKENS.ops);
    const mine = await names(TOKENS.app);
    assert.ok(
      all.includes('secret.q') && all.includes('orders.eu'),
      `ops sees all: ${all.join(', ')}`,
    );
    assert.ok(
      mine.every((n) => n.startsWith('orders.')),
      `app sees only orders.*: ${mine.join(', ')}`,
    );
    const stats = (await call(base, 'GET', '/v1/stats', TOKENS.app)).body;
    assert.ok((stats.queues as Loose[]).every((q) => (q.name as string).startsWith('orders.')));
    assert.ok((stats.services as Loose[]).every((s) => s.name === 'resize'));
    const none = (await call(base, 'GET', '/v1/queues', TOKENS.topics)).body.queues as Loose[];
    assert.deepEqual(none, [], 'a user without queue grants sees no queue');
    const opsStats = (await call(base, 'GET', '/v1/stats', TOKENS.ops)).body;
    assert.equal((opsStats.queues as Loose[]).length, all.length, 'admin sees every queue');
  });

  it('filters the live stats stream per user', async () => {
    const res = await fetch(`${base}/v1/events/stats?intervalMs=100`, {
      headers: { authorization: `Bearer ${TOKENS.topics}` },
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('\n\n') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    await reader.cancel();
    const data = JSON.parse(/data: (.*)/.exec(text)![1]!);
    assert.deepEqual(data.queues, []);
    assert.deepEqual(data.services, []);
    assert.ok(data.broker, 'broker-wide numbers stay');
  });

  it('takes the metrics token, or an admin, on /metrics', async () => {
    const byToken = await call(base, 'GET', '/metrics', METRICS_TOKEN);
    assert.equal(byToken.status, 200);
    assert.match(String(byToken.body), /ferry_uptime_seconds/);
    assert.equal((await call(base, 'GET', '/metrics', TOKENS.ops)).status, 200);
    // The metrics token is for /metrics only.
    assert.equal((await call(base, 'GET', '/v1/queues', METRICS_TOKEN)).status, 401);
  });
});

describe('HTTP tokens after a reload of the auth file', () => {
  it('asks the holder per request: a removed token fails its next request', async () => {
    const b = await startBroker();
    const grant = (tokens: string[]): AuthModel =>
      parseAuthConfig({
        users: [{ name: 'app', tokens: tokens.map(hashToken), allow: { 'queue:send': ['**'] } }],
      });
    let current = grant([TOKENS.app]);
    const { broker, jobs, pubsub, stats } = b.server;
    const gw = await startGateway({
      broker,
      jobs,
      pubsub,
      stats,
      host: '127.0.0.1',
      port: 0,
      bodyLimitBytes: 1024 * 1024,
      version: 'test',
      auth: () => current,
    });
    try {
      const send = () => call(gw.url, 'POST', '/v1/queues/r.q/messages', TOKENS.app, { body: 'x' });
      assert.equal((await send()).status, 201);
      current = grant([TOKENS.ops]); // what a SIGHUP reload hands the gateway
      const revoked = await send();
      assert.equal(revoked.status, 401);
      assert.equal(revoked.body.code, 'UNAUTHENTICATED');
      assert.equal((await b.server.broker.queueStats('r.q')).ready, 1, 'one message only');
    } finally {
      await gw.close();
      await b.stop();
    }
  });
});

describe('HTTP without an auth file', () => {
  it('stays open (loopback development), but /metrics asks for its token when set', async () => {
    const b = await startBroker(
      { 'metrics-token': hashToken(METRICS_TOKEN) },
      { http: '127.0.0.1:0' },
    );
    try {
      const base = b.server.httpUrl!;
      assert.equal(
        (await call(base, 'POST', '/v1/queues/q/messages', undefined, { body: 'x' })).status,
        201,
      );
      assert.equal((await call(base, 'GET', '/v1/queues')).status, 200);
      assert.equal((await call(base, 'GET', '/metrics')).status, 401);
      assert.equal((await call(base, 'GET', '/metrics', 'wrong')).status, 401);
      assert.equal((await call(base, 'GET', '/metrics', METRICS_TOKEN)).status, 200);
    } finally {
      await b.stop();
    }
  });

  it('refuses a bad auth file or metrics token at start with a coded error', async () => {
    const dir = tmpDir('ferry-auth-bad-');
    const bad = path.join(dir, 'auth.json');
    fs.writeFileSync(
      bad,
      JSON.stringify({ users: [{ name: 'x', allow: { 'queue:sned': ['*'] } }] }),
    );
    await assert.rejects(startBroker({ 'auth-file': bad }, { http: '127.0.0.1:0' }), {
      code: 'AUTH_FILE_INVALID',
    });
    await assert.rejects(
      startBroker({ 'auth-file': path.join(dir, 'missing.json') }, { http: '127.0.0.1:0' }),
      { code: 'AUTH_FILE_INVALID', message: /cannot read the auth file .*missing\.json/ },
    );
    await assert.rejects(startBroker({ 'metrics-token': 'plain' }), { code: 'CONFIG_INVALID' });
  });
});

describe('HTTP rate limit per token', () => {
  it('answers 429 RATE_LIMITED past the limit, counted per token', async () => {
    const LIMIT = 5;
    const b = await startBroker(
      { 'auth-file': writeAuthFile(), 'http-rate-limit': String(LIMIT) },
      { http: '127.0.0.1:0' },
    );
    try {
      const base = b.server.httpUrl!;
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 2; i++) {
        statuses.push((await call(base, 'GET', '/v1/queues', TOKENS.app)).status);
      }
      assert.deepEqual(statuses, [...Array(LIMIT).fill(200), 429, 429]);
      const limited = await call(base, 'GET', '/v1/queues', TOKENS.app);
      assert.equal(limited.body.code, 'RATE_LIMITED');
      assert.ok(limited.headers.get('retry-after'), 'Retry-After');
      // Another token has its own count; probes are never limited.
      assert.equal((await call(base, 'GET', '/v1/queues', TOKENS.ops)).status, 200);
      for (let i = 0; i < LIMIT + 2; i++) {
        assert.equal((await call(base, 'GET', '/healthz')).status, 200);
      }
    } finally {
      await b.stop();
    }
  });
});
