/**
 * The gateway's operator routes against a real broker: browsing messages by state with paging,
 * one message in detail, deleting one message, redriving one dead letter, job search, detail
 * and retry, topics and durable subscriptions, connections with consumers and prefetch. Every
 * route with good and bad input.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { req, startWorker, type Loose } from '../helpers/http.js';

describe('HTTP operator routes', () => {
  let b: TestBroker;
  let base: string;
  const get = (path: string) => req(base, 'GET', path);
  const post = (path: string, body?: unknown) => req(base, 'POST', path, { body });
  const del = (path: string) => req(base, 'DELETE', path);

  before(async () => {
    b = await startBroker(
      { 'ack-timeout': '60000', 'max-attempts': '5', 'retry-base': '0', 'retry-max': '0' },
      { http: '127.0.0.1:0' },
    );
    base = b.server.httpUrl!;
  });
  after(() => b.stop());

  /** Messages 0..n-1 in `queue`, ready. */
  async function fill(queue: string, n: number): Promise<string[]> {
    const r = await post(`/v1/queues/${queue}/batch`, {
      messages: Array.from({ length: n }, (_, i) => ({ json: { i }, headers: { n: String(i) } })),
    });
    assert.equal(r.status, 201);
    return r.body.ids as string[];
  }

  /** Leases `n` messages over HTTP and nacks them dead; their ids. */
  async function killSome(queue: string, n: number): Promise<string[]> {
    const got = (await post(`/v1/queues/${queue}/consume?max=${n}`)).body.messages as Loose[];
    await post('/v1/leases/nack', { leases: got.map((m) => m.lease), dead: true });
    return got.map((m) => m.id as string);
  }

  it('browses one state in pages with a cursor, counts and previews', async () => {
    const ids = await fill('adm.pages', 5);
    const p1 = await get('/v1/queues/adm.pages/browse?state=ready&limit=2&previewBytes=3');
    assert.equal(p1.status, 200);
    assert.equal(p1.body.count, 5);
    assert.deepEqual(
      p1.body.messages.map((m: Loose) => m.id),
      ids.slice(0, 2),
    );
    const first = p1.body.messages[0];
    assert.deepEqual(first.body, { size: 7, encoding: 'utf8', preview: '{"i', truncated: true });
    assert.deepEqual(first.headers, { n: '0' });
    assert.equal(first.state, 'ready');
    assert.equal(p1.body.next, ids[1]);
    const p2 = await get(`/v1/queues/adm.pages/browse?state=ready&limit=2&after=${p1.body.next}`);
    assert.deepEqual(
      p2.body.messages.map((m: Loose) => m.id),
      ids.slice(2, 4),
    );
    const p3 = await get(`/v1/queues/adm.pages/browse?state=ready&limit=2&after=${p2.body.next}`);
    assert.deepEqual(
      p3.body.messages.map((m: Loose) => m.id),
      [ids[4]],
    );
    assert.equal(p3.body.next, null, 'the last page says so');

    // Other states: leased, dead and scheduled each list only their own.
    const dead = await killSome('adm.pages', 2);
    const leased = (await post('/v1/queues/adm.pages/consume?max=1')).body.messages[0].id;
    await post('/v1/queues/adm.pages/messages', { body: 'later', delayMs: 3_600_000 });
    const byState = async (state: string) =>
      (await get(`/v1/queues/adm.pages/browse?state=${state}`)).body;
    assert.deepEqual(
      (await byState('dead')).messages.map((m: Loose) => m.id),
      dead,
    );
    assert.equal((await byState('dead')).messages[0].deadReason !== null, true);
    assert.deepEqual(
      (await byState('leased')).messages.map((m: Loose) => m.id),
      [leased],
    );
    const sched = await byState('scheduled');
    assert.equal(sched.count, 1);
    assert.equal(sched.messages[0].body.preview, 'later');
    assert.equal((await byState('ready')).count, 2);
  });

  it('answers bad browse input with coded errors', async () => {
    await fill('adm.bad', 1);
    const cases: [string, number, string][] = [
      ['/v1/queues/adm.bad/browse?state=gone', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/browse?limit=0', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/browse?limit=201', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/browse?after=abc', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/browse?after=-1', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/browse?previewBytes=70000', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/browse?extra=1', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.none/browse', 404, 'QUEUE_NOT_FOUND'],
      ['/v1/queues/bad%20name/browse', 400, 'INVALID_QUEUE_NAME'],
      ['/v1/queues/adm.bad/messages/0', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/messages/12345678901234567', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/messages/1x', 400, 'BAD_ARGUMENTS'],
      ['/v1/queues/adm.bad/messages/999999', 404, 'MESSAGE_NOT_FOUND'],
      ['/v1/queues/adm.bad/messages/1?maxBytes=-1', 400, 'BAD_ARGUMENTS'],
    ];
    for (const [path, status, code] of cases) {
      const r = await get(path);
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.equal(r.body.code, code, path);
    }
  });

  it('shows one message in detail with every frame capped at maxBytes', async () => {
    const big = 'x'.repeat(10_000);
    const sent = await post('/v1/queues/adm.detail/batch', {
      messages: [
        { frames: [Buffer.from(big).toString('base64'), 'AAEC'], encoding: 'base64' },
        { body: 'é'.repeat(3) },
      ],
    });
    const [id, id2] = sent.body.ids as string[];
    const d = await get(`/v1/queues/adm.detail/messages/${id}`);
    assert.equal(d.status, 200);
    assert.equal(d.body.queue, 'adm.detail');
    assert.equal(d.body.frameCount, 2);
    assert.equal(d.body.size, 10_003);
    assert.equal(d.body.attempts, 0);
    assert.deepEqual(d.body.frames[0], {
      size: 10_000,
      encoding: 'utf8',
      preview: 'x'.repeat(4096),
      truncated: true,
    });
    assert.deepEqual(d.body.frames[1], {
      size: 3,
      encoding: 'base64',
      preview: 'AAEC',
      truncated: false,
    });
    // A cut inside a two-byte character drops the half character instead of turning binary.
    const cut = await get(`/v1/queues/adm.detail/messages/${id2}?maxBytes=3`);
    assert.deepEqual(cut.body.body, { size: 6, encoding: 'utf8', preview: 'é', truncated: true });
  });

  it('deletes one ready, scheduled or dead message, refuses a leased one', async () => {
    const [a, c] = await fill('adm.del', 2);
    const r = await del(`/v1/queues/adm.del/messages/${a}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { id: a, state: 'ready' });
    const again = await del(`/v1/queues/adm.del/messages/${a}`);
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'MESSAGE_NOT_FOUND');
    const leased = (await post('/v1/queues/adm.del/consume?max=1')).body.messages[0];
    assert.equal(leased.id, c);
    const refused = await del(`/v1/queues/adm.del/messages/${c}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'MESSAGE_LEASED');
    await post('/v1/leases/nack', { leases: [leased.lease], dead: true });
    assert.deepEqual((await del(`/v1/queues/adm.del/messages/${c}`)).body, {
      id: c,
      state: 'dead',
    });
    const later = (await post('/v1/queues/adm.del/messages', { body: 'x', delayMs: 3_600_000 }))
      .body.id;
    assert.equal((await del(`/v1/queues/adm.del/messages/${later}`)).body.state, 'scheduled');
    const s = (await get('/v1/queues/adm.del')).body;
    assert.deepEqual([s.ready, s.leased, s.scheduled, s.dead, s.bytes], [0, 0, 0, 0, 0]);
    // An id of another queue is not found in this one.
    const [other] = await fill('adm.del2', 1);
    assert.equal(
      (await del(`/v1/queues/adm.del/messages/${other}`)).body.code,
      'MESSAGE_NOT_FOUND',
    );
    assert.equal((await get('/v1/queues/adm.del2')).body.ready, 1);
  });

  it('redrives one dead letter, and only a dead one', async () => {
    await fill('adm.redrive', 3);
    const [d1, d2] = await killSome('adm.redrive', 2);
    const r = await post(`/v1/queues/adm.redrive/messages/${d1}/redrive`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { id: d1, state: 'ready' });
    const s = (await get('/v1/queues/adm.redrive')).body;
    assert.deepEqual([s.ready, s.dead], [2, 1]);
    const m = (await get(`/v1/queues/adm.redrive/messages/${d1}`)).body;
    assert.deepEqual([m.state, m.attempts], ['ready', 0]);
    const notDead = await post(`/v1/queues/adm.redrive/messages/${d1}/redrive`);
    assert.equal(notDead.status, 409);
    assert.equal(notDead.body.code, 'MESSAGE_NOT_DEAD');
    const gone = await post('/v1/queues/adm.redrive/messages/999999/redrive');
    assert.equal(gone.body.code, 'MESSAGE_NOT_FOUND');
    assert.equal((await get(`/v1/queues/adm.redrive/messages/${d2}`)).body.state, 'dead');
  });

  it('searches jobs by id prefix and service text, in pages', async () => {
    const w = startWorker(b.server, 'adm.search.resize', (p) => ({ ok: p }));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await post('/v1/services/adm.search.resize/jobs', { params: i })).body.id);
    }
    const other = (await post('/v1/services/adm.search.mail/jobs', { params: 'm' })).body.id;
    await waitFor(
      async () => (await get(`/v1/jobs/${ids[4]}`)).body.status === 'done',
      'the jobs ran',
    );
    const p1 = await get('/v1/jobs/search?q=resize&limit=2');
    assert.equal(p1.status, 200);
    assert.deepEqual(
      p1.body.jobs.map((j: Loose) => j.id),
      [ids[4], ids[3]],
    );
    assert.equal(p1.body.more, true);
    const p3 = await get('/v1/jobs/search?q=resize&limit=2&offset=4');
    assert.deepEqual(
      p3.body.jobs.map((j: Loose) => j.id),
      [ids[0]],
    );
    assert.equal(p3.body.more, false);
    const byId = await get(`/v1/jobs/search?q=${other.slice(0, 10)}`);
    assert.deepEqual(
      byId.body.jobs.map((j: Loose) => j.id),
      [other],
    );
    const queued = await get('/v1/jobs/search?service=adm.search.mail&status=queued');
    assert.deepEqual(
      queued.body.jobs.map((j: Loose) => j.id),
      [other],
    );
    // LIKE wildcards in the search text are literal.
    assert.deepEqual((await get('/v1/jobs/search?q=%25')).body.jobs, []);
    assert.deepEqual((await get('/v1/jobs/search?q=_')).body.jobs, []);
    for (const bad of [
      'limit=0',
      'limit=201',
      'offset=-1',
      'status=nope',
      `q=${'a'.repeat(201)}`,
    ]) {
      const r = await get(`/v1/jobs/search?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.code, 'BAD_ARGUMENTS', bad);
    }
    assert.equal((await get('/v1/jobs/search?service=a%20b')).body.code, 'BAD_ARGUMENTS');
    w.close();
  });

  it('shows a job in detail and retries a failed one; refuses to retry others', async () => {
    let fail = true;
    const w = b.server.jobs.registerWorker(
      {
        assign: (job) => {
          void w.progress(job.id, { percent: 50, message: 'half' });
          void w.partial(job.id, [Buffer.from('part-1')]);
          if (fail) void w.fail(job.id, { code: 'BOOM', message: 'it broke' }, { retry: false });
          else void w.complete(job.id, [Buffer.from('{"done":true}')]);
        },
        cancel: () => {},
      },
      { services: ['adm.retry'], protocol: 'test' },
    );
    const id = (
      await post('/v1/services/adm.retry/jobs', { params: { n: 1 }, headers: { h: 'v' } })
    ).body.id as string;
    const failed = (await get(`/v1/jobs/${id}?wait=10000`)).body;
    assert.equal(failed.status, 'failed');
    const d = await get(`/v1/jobs/${id}/detail`);
    assert.equal(d.status, 200);
    assert.equal(d.body.job.error.code, 'BOOM');
    assert.deepEqual(d.body.headers, { h: 'v' });
    assert.equal(d.body.params[0].preview, '{"n":1}');
    assert.deepEqual(
      d.body.partials.map((p: Loose) => [p.seq, p.frames[0].preview]),
      [[1, 'part-1']],
    );
    assert.equal(d.body.job.progress.percent, 50);

    fail = false;
    const r = await post(`/v1/jobs/${id}/retry`);
    assert.equal(r.status, 200);
    assert.ok(['queued', 'running', 'done'].includes(r.body.status), r.body.status);
    const done = (await get(`/v1/jobs/${id}?wait=10000`)).body;
    assert.equal(done.status, 'done');
    assert.deepEqual(done.result, { done: true });
    assert.equal(done.attempts, 1, 'a fresh run');
    const svc = (await get('/v1/services')).body.services.find(
      (s: Loose) => s.name === 'adm.retry',
    );
    assert.deepEqual([svc.failed, svc.done, svc.queued], [0, 1, 0]);

    const notRetryable = await post(`/v1/jobs/${id}/retry`);
    assert.equal(notRetryable.status, 409);
    assert.equal(notRetryable.body.code, 'JOB_NOT_RETRYABLE');
    const unknown = await post(`/v1/jobs/${'0'.repeat(32)}/retry`);
    assert.equal(unknown.body.code, 'JOB_NOT_FOUND');
    assert.equal((await get(`/v1/jobs/${'0'.repeat(32)}/detail`)).body.code, 'JOB_NOT_FOUND');
    assert.equal((await post('/v1/jobs/xyz/retry')).body.code, 'BAD_ARGUMENTS');
    assert.equal((await get(`/v1/jobs/${id}/detail?maxBytes=x`)).body.code, 'BAD_ARGUMENTS');
    w.close();
  });

  it('retries a cancelled job', async () => {
    const id = (await post('/v1/services/adm.nobody/jobs', { params: 1 })).body.id as string;
    assert.equal((await post(`/v1/jobs/${id}/cancel`)).body.status, 'cancelled');
    const r = await post(`/v1/jobs/${id}/retry`);
    assert.equal(r.body.status, 'queued');
    assert.equal(r.body.error, undefined);
    const svc = (await get('/v1/services')).body.services.find(
      (s: Loose) => s.name === 'adm.nobody',
    );
    assert.deepEqual([svc.queued, svc.cancelled], [1, 0]);
  });

  it('lists retained topics with previews and durable subscriptions with depth', async () => {
    await b.server.pubsub.publish('cfg/db', [Buffer.from('<img src=x onerror=alert(1)>')], {
      retain: true,
    });
    await b.server.pubsub.publish('cfg/cache', [Buffer.from('on')], { retain: true });
    await b.server.pubsub.publish('other/x', [Buffer.from('1')], { retain: true });
    await b.server.pubsub.ensureDurable('adm-audit', 'cfg/**');
    await b.server.pubsub.publish('cfg/cache', [Buffer.from('off')], { retain: true });
    const t = await get('/v1/topics?pattern=cfg/**');
    assert.equal(t.status, 200);
    assert.deepEqual(
      t.body.topics.map((x: Loose) => [x.topic, x.value.preview]),
      [
        ['cfg/cache', 'off'],
        ['cfg/db', '<img src=x onerror=alert(1)>'],
      ],
    );
    assert.equal(t.body.more, false);
    const all = await get('/v1/topics?limit=1');
    assert.equal(all.body.topics.length, 1);
    assert.equal(all.body.more, true);
    const subs = (await get('/v1/subscriptions')).body.subscriptions as Loose[];
    const audit = subs.find((s) => s.name === 'adm-audit');
    assert.equal(audit.pattern, 'cfg/**');
    assert.equal(audit.depth, 1);
    for (const bad of ['pattern=a%23b', 'pattern=', 'limit=0', 'previewBytes=999999']) {
      const r = await get(`/v1/topics?${bad}`);
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.ok(['BAD_ARGUMENTS', 'INVALID_TOPIC'].includes(r.body.code), r.body.code);
    }
    assert.equal((await get('/v1/topics?pattern=a%23b')).body.code, 'INVALID_TOPIC');
  });

  it('lists connections, sessions with consumers and their prefetch, and workers', async () => {
    const c: FerryClient = await connect(b.endpoint, { heartbeatMs: 200 });
    try {
      await fill('adm.conn', 1);
      const consumer = c.consume('adm.conn', { prefetch: 7 });
      const it = consumer[Symbol.asyncIterator]();
      await it.next();
      const w = startWorker(b.server, 'adm.conn.svc', () => 1);
      const r = await get('/v1/connections');
      assert.equal(r.status, 200);
      assert.ok(r.body.byDialect.ferry >= 1, JSON.stringify(r.body.byDialect));
      const mine = r.body.sessions.flatMap((s: Loose) =>
        s.consumers.filter((x: Loose) => x.queue === 'adm.conn').map((x: Loose) => ({ s, x })),
      );
      assert.equal(mine.length, 1);
      assert.equal(mine[0].x.prefetch, 7);
      assert.equal(mine[0].x.inflight, 1);
      assert.equal(mine[0].s.leases, 1);
      assert.ok(r.body.workers.some((x: Loose) => x.services.includes('adm.conn.svc')));
      w.close();
      await consumer.cancel();
    } finally {
      await c.close({ timeoutMs: 500 });
    }
  });
});
