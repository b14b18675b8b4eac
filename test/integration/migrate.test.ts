/**
 * `ferry migrate` (docs/operations.md "Moving from SQLite to PostgreSQL"): a real broker on a
 * SQLite data folder filled with every kind of data, killed with work in flight; the real
 * `ferry migrate` into a fresh schema of the local PostgreSQL; a broker started with `--store`
 * on that schema, and the SDK proving that everything is there and works. Then the bad inputs:
 * each a coded error, a non-zero exit, and nothing written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import {
  connect,
  JobFailure,
  type FerryClient,
  type Message,
  type PeekedMessage,
  type TopicMessage,
  type TopicSubscription,
} from 'ferrymq';
import {
  freePort,
  killHard,
  spawnBroker,
  startBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
  type TestBroker,
} from '../helpers/broker.js';
import { runFerry } from '../helpers/cli.js';
import { migrateSqliteToPostgres } from 'ferrymq-server/internal/storage/migrate-sqlite-to-postgres.js';
import { dropSchema, freshSchemaName, PG_TEST_URL, pgQuery } from '../helpers/postgres.js';

/** The large body: over the SQLite store's 1 MiB chunk, in two frames. */
const BIG_FRAME_BYTES = [1536 * 1024, 512 * 1024 + 7];
/** Far enough ahead that the delayed message is still scheduled after the move. */
const DELAY_MS = 60 * 60 * 1000;

const clients: FerryClient[] = [];
const brokers: TestBroker[] = [];
const children: ChildBroker[] = [];
const schemas: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close({ timeoutMs: 500 }).catch(() => {});
  for (const b of brokers.splice(0)) await b.stop().catch(() => {});
  for (const b of children.splice(0)) await killHard(b).catch(() => {});
});

after(async () => {
  for (const s of schemas.splice(0)) await dropSchema(s);
});

function newSchema(): string {
  const s = freshSchemaName('ferry_m');
  schemas.push(s);
  return s;
}

async function client(endpoint: string): Promise<FerryClient> {
  const c = await connect(endpoint, { heartbeatMs: 200, requestTimeoutMs: 20_000 });
  clients.push(c);
  return c;
}

function patterned(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The next `n` messages of a consumer (acked unless `ack` is false). */
async function takeMessages(c: FerryClient, queue: string, n: number, ack = true) {
  const out: Message[] = [];
  const consumer = c.consume(queue, { prefetch: n });
  const deadline = Date.now() + 15_000;
  const it = consumer[Symbol.asyncIterator]();
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} messages of ${queue}`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`got ${out.length} of ${n} of ${queue}`)), left);
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`consumer of ${queue} ended after ${out.length}`);
    out.push(r.value);
    if (ack) await r.value.ack();
  }
  if (ack) await consumer.cancel();
  return { messages: out, consumer };
}

async function takeTopic(sub: TopicSubscription, n: number): Promise<TopicMessage[]> {
  const out: TopicMessage[] = [];
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + 15_000;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} topic messages`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`got ${out.length} of ${n}`)), left);
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`subscription ended after ${out.length} of ${n}`);
    out.push(r.value);
    await r.value.ack();
  }
  return out;
}

/** Every message of a queue in every state, as PEEK lists them (ids ascending). */
async function everything(c: FerryClient, queue: string): Promise<PeekedMessage[]> {
  const out: PeekedMessage[] = [];
  for (const state of ['ready', 'leased', 'scheduled', 'dead'] as const) {
    out.push(...(await c.peek(queue, { state, limit: 1_000 })));
  }
  return out.sort((a, b) => Number(a.id) - Number(b.id));
}

/** What must survive the move, leased ones becoming ready. */
function comparable(m: PeekedMessage) {
  return {
    id: m.id,
    state: m.state === 'leased' ? 'ready' : m.state,
    attempts: m.attempts,
    priority: m.priority,
    enqueuedAt: m.enqueuedAt,
    notBefore: m.notBefore,
    headers: m.headers,
    expiresAt: m.expiresAt,
    dedupKey: m.dedupKey,
    deadReason: m.deadReason,
    frames: m.frames.map((f) => createHash('sha256').update(f).digest('hex')),
  };
}

async function schemaExists(schema: string): Promise<boolean> {
  const rows = await pgQuery('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return rows.length > 0;
}

interface Filled {
  dataDir: string;
  before: Map<string, PeekedMessage[]>;
  ids: { plain: string; big: string; delayed: string; dead: string; held: string };
  jobs: { done: string; failed: string; queued: string; running: string };
  retainedSeq: Map<string, number>;
  lastSeq: number;
  policy: Record<string, number>;
}

/**
 * A SQLite broker (a child process) given every kind of data, then killed with SIGKILL while
 * a message is leased and a job running.
 */
async function fillAndKill(): Promise<Filled> {
  const dataDir = tmpDir('ferry-migrate-');
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const child = await spawnBroker(['--data', dataDir, '--bind', endpoint, '--heartbeat', '200']);
  children.push(child);
  const c = await client(endpoint);

  const plain = await c.send('orders', 'plain', {
    priority: 7,
    headers: { kind: 'plain' },
    dedupKey: 'order-1',
    ttlMs: DELAY_MS,
  });
  const bigFrames = BIG_FRAME_BYTES.map((n, i) => patterned(n, i));
  const big = await c.send('orders', bigFrames, { headers: { kind: 'big' } });
  const delayed = await c.send('orders', ['later', 'second frame'], { delayMs: DELAY_MS });
  const doomed = await c.send('audit-log', 'doomed');
  const { messages: toKill } = await takeMessages(c, 'audit-log', 1, false);
  await toKill[0]!.nack({ dead: true });
  const held = await c.send('held', 'held at the crash');
  await takeMessages(c, 'held', 1, false); // leased, never acked
  await waitFor(async () => (await c.peek('held', { state: 'leased' })).length === 1, 'a lease');
  const policy = { maxAttempts: 9, ackTimeoutMs: 45_000 };
  await c.setQueuePolicy('orders', policy);
  await c.pauseQueue('audit-log');

  // Jobs: done with partials and progress, failed, queued with a dedup key, running at the crash.
  const worker = c.worker(['render', 'boom', 'slow'], async (job) => {
    if (job.service === 'render') {
      await job.partial('p1');
      await job.partial(['p2', 'frame 2']);
      await job.progress({ pct: 50 });
      return ['rendered', 'second'];
    }
    if (job.service === 'boom') throw new JobFailure('no way', 'JOB_FAILED', false);
    await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
    return 'never';
  });
  const done = await c.submit('render', 'r');
  assert.equal((await done.wait({ timeoutMs: 10_000 })).status, 'done');
  const failed = await c.submit('boom', 'b');
  assert.equal((await failed.wait({ timeoutMs: 10_000 })).status, 'failed');
  const queued = await c.submit('later', 'q', { dedupKey: 'job-key-1', priority: 3 });
  const running = await c.submit('slow', 's');
  await waitFor(async () => (await running.status()).status === 'running', 'a running job');
  void worker;

  // Pub/sub: retained values, a confirmation, a durable subscription away with two pending.
  const seqA = await c.publish('config/a', 'A1', { retain: true });
  const seqB = await c.publish('config/b', ['B1', 'more'], { retain: true, headers: { v: '1' } });
  await c.confirm('node-x', [{ topic: 'config/a', seq: seqA }]);
  const away = await client(endpoint);
  const sub = away.subscribe('events/**', { durable: 'audit' });
  await sub.ready;
  await away.close({ timeoutMs: 1_000 });
  await c.publish('events/1', 'e1');
  const lastSeq = await c.publish('events/2', 'e2');

  const before = new Map<string, PeekedMessage[]>();
  for (const q of await c.queues()) before.set(q, await everything(c, q));
  assert.equal(before.get('held')![0]!.state, 'leased');

  await killHard(child);
  children.splice(children.indexOf(child), 1);
  // Its broker is gone: nothing to cancel or say goodbye to (cancels would wait for replies).
  await c.close({ timeoutMs: 0 });
  clients.splice(clients.indexOf(c), 1);
  return {
    dataDir,
    before,
    ids: { plain, big, delayed, dead: doomed, held },
    jobs: { done: done.id, failed: failed.id, queued: queued.id, running: running.id },
    retainedSeq: new Map([
      ['config/a', seqA],
      ['config/b', seqB],
    ]),
    lastSeq,
    policy,
  };
}

async function migrate(dataDir: string, schema: string, json = true) {
  const args = ['migrate', '--from', dataDir, '--to', PG_TEST_URL, '--store-schema', schema];
  return runFerry(json ? [...args, '--json'] : args, { timeoutMs: 60_000 });
}

describe('ferry migrate: a SQLite data folder into PostgreSQL', () => {
  it('carries everything over, and a broker on the new store carries on with it', async () => {
    const f = await fillAndKill();
    // ferry.db-shm is SQLite's shared-memory index of the WAL, which every reader writes to
    // (read marks); it holds no data.
    const filesBefore = fs
      .readdirSync(f.dataDir)
      .filter((n) => n !== 'ferry.db-shm')
      .sort();
    assert.deepEqual(
      filesBefore,
      ['ferry.db', 'ferry.db-wal', 'ferry.lock'],
      'as the kill left it',
    );
    const hashesBefore = filesBefore.map((n) => sha256(path.join(f.dataDir, n)));
    const schema = newSchema();

    const run = await migrate(f.dataDir, schema);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as Record<string, never>;
    assert.deepEqual(summary['to'], { url: PG_TEST_URL, schema });
    const states: Record<string, number> = { ready: 0, scheduled: 0, dead: 0 };
    for (const list of f.before.values()) {
      for (const m of list) states[m.state === 'leased' ? 'ready' : m.state]!++;
    }
    // plain, big, held (its lease released) and the durable subscription's two copies
    assert.deepEqual(states, { ready: 5, scheduled: 1, dead: 1 });
    assert.deepEqual(summary['messages'], {
      ...states,
      releasedLeases: 1,
      largeBodies: 1,
      bytes: summaryBytes(f.before),
    });
    assert.equal(summary['queues'], 4, 'orders, audit-log, held and the durable subscription');
    assert.equal(summary['queueSettings'], 2);
    const keys = summary['keys'] as unknown as Record<string, number>;
    assert.equal(keys['skipped'], 0);
    for (const kind of ['dedup', 'request', 'jobDedup']) assert.ok(keys[kind]! >= 1, kind);
    const idem = await pgQuery<{ scope: string; key: string; ids: string }>(
      `SELECT scope, key, ids FROM ${schema}.idempotency WHERE key IN ('order-1', 'job-key-1')
       ORDER BY scope`,
    );
    assert.deepEqual(idem, [
      { scope: 'j:later', key: 'job-key-1', ids: f.jobs.queued },
      { scope: 'q:orders', key: 'order-1', ids: f.ids.plain },
    ]);
    assert.deepEqual(summary['jobs'], {
      queued: 2,
      running: 0,
      done: 1,
      failed: 1,
      cancelled: 0,
      expired: 0,
      requeued: 1,
    });
    assert.equal(summary['partials'], 2);
    assert.deepEqual(summary['pubsub'], {
      publishSeq: f.lastSeq,
      retained: 2,
      subscriptions: 1,
      confirmations: 1,
    });

    // The folder was read, not written: the database, its WAL (the kill left committed data
    // in it) and the stale lock are byte for byte as they were, and nothing was added.
    assert.deepEqual(
      filesBefore.map((n) => sha256(path.join(f.dataDir, n))),
      hashesBefore,
      'no file of the folder changed',
    );
    assert.deepEqual(fs.readdirSync(f.dataDir).sort(), [
      'ferry.db',
      'ferry.db-shm',
      'ferry.db-wal',
      'ferry.lock',
    ]);

    const b = await startBroker({ store: PG_TEST_URL, 'store-schema': schema, data: tmpDir() });
    brokers.push(b);
    const c = await client(b.endpoint);

    // Every message, in every state, with its attributes and bodies.
    assert.deepEqual((await c.queues()).sort(), [...f.before.keys()].sort());
    for (const [queue, was] of f.before) {
      const now = await everything(c, queue);
      assert.deepEqual(now.map(comparable), was.map(comparable), `queue ${queue}`);
    }
    const [big] = await c.peek('orders', { state: 'ready', afterId: f.ids.plain });
    assert.deepEqual(
      big!.frames.map((x) => x.length),
      BIG_FRAME_BYTES,
      'the large body, both frames',
    );
    assert.ok(big!.frames[0]!.equals(patterned(BIG_FRAME_BYTES[0]!, 0)));
    assert.ok(big!.frames[1]!.equals(patterned(BIG_FRAME_BYTES[1]!, 1)));

    // Runtime settings: the policy override and the pause.
    assert.deepEqual((await c.queuePolicy('orders')).overrides, f.policy);
    const audit = (await c.stats('audit-log')).queues.find((q) => q.name === 'audit-log');
    assert.equal(audit?.paused, true);

    // A re-sent dedup key is still a duplicate; a new message gets a new, higher id.
    assert.equal(await c.send('orders', 'plain again', { dedupKey: 'order-1' }), f.ids.plain);
    const fresh = await c.send('orders', 'new');
    assert.ok(Number(fresh) > Number(f.ids.delayed), `new id ${fresh} above the old ones`);

    // Consume: priority first, the large body whole; the released lease on its second delivery.
    const { messages: got } = await takeMessages(c, 'orders', 3);
    assert.deepEqual(
      got.map((m) => m.id),
      [f.ids.plain, f.ids.big, fresh],
    );
    assert.deepEqual(got[1]!.frames, [
      patterned(BIG_FRAME_BYTES[0]!, 0),
      patterned(BIG_FRAME_BYTES[1]!, 1),
    ]);
    const { messages: held } = await takeMessages(c, 'held', 1);
    assert.equal(held[0]!.id, f.ids.held);
    assert.equal(held[0]!.attempts, 2, 'attempts kept: this is its second delivery');

    // The dead letter: listed with its reason, redriven, consumed (after resuming its queue).
    const [dead] = await c.deadLetters('audit-log');
    assert.equal(dead?.id, f.ids.dead);
    assert.equal(dead?.deadReason, f.before.get('audit-log')![0]!.deadReason);
    assert.ok(dead?.deadReason, 'a dead reason');
    assert.equal(await c.redrive('audit-log'), 1);
    await c.resumeQueue('audit-log');
    const { messages: redriven } = await takeMessages(c, 'audit-log', 1);
    assert.equal(redriven[0]!.body.toString(), 'doomed');

    // Jobs: results, partials, errors; a dedup key still held; the running one queued again.
    const doneInfo = await c.job(f.jobs.done).status();
    assert.equal(doneInfo.status, 'done');
    assert.deepEqual(doneInfo.result?.map(String), ['rendered', 'second']);
    assert.equal(doneInfo.partials, 2);
    const failedInfo = await c.job(f.jobs.failed).status();
    assert.equal(failedInfo.status, 'failed');
    assert.match(failedInfo.error?.message ?? '', /no way/);
    const again = await c.submit('later', 'q again', { dedupKey: 'job-key-1' });
    assert.equal(again.id, f.jobs.queued, 'the job dedup key still names the first job');
    const requeued = await c.job(f.jobs.running).status();
    assert.equal(requeued.status, 'queued');
    assert.equal(requeued.attempts, 1);
    const attempts: number[] = [];
    c.worker(['slow', 'later'], (job) => {
      attempts.push(job.attempt);
      return `ran ${job.service}`;
    });
    const slow = await c.job(f.jobs.running).wait({ timeoutMs: 10_000 });
    assert.equal(slow.status, 'done');
    assert.deepEqual(slow.result?.map(String), ['ran slow']);
    assert.equal((await c.job(f.jobs.queued).wait({ timeoutMs: 10_000 })).status, 'done');
    assert.ok(attempts.includes(2), 'the requeued job ran as its second attempt');

    // Pub/sub: the retained snapshot, the sequence going on, the durable subscriber's copies.
    const retained = await c.retained('config/**');
    assert.deepEqual(
      retained.messages.map((m) => [m.topic, m.seq, m.frames.map(String)]),
      [
        ['config/a', f.retainedSeq.get('config/a'), ['A1']],
        ['config/b', f.retainedSeq.get('config/b'), ['B1', 'more']],
      ],
    );
    assert.ok(retained.seq >= f.lastSeq);
    const sub = c.subscribe('events/**', { durable: 'audit' });
    const pending = await takeTopic(sub, 2);
    assert.deepEqual(
      pending.map((m) => m.body.toString()),
      ['e1', 'e2'],
    );
    const next = await c.publish('events/3', 'e3');
    assert.ok(next > f.lastSeq, 'the publish sequence goes on from the old one');
    const [third] = await takeTopic(sub, 1);
    assert.equal(third!.body.toString(), 'e3');
    await sub.close();
  });
});

/** Bytes of every message body the folder held, as the summary counts them. */
function summaryBytes(before: Map<string, PeekedMessage[]>): number {
  let n = 0;
  for (const list of before.values()) {
    for (const m of list) for (const fr of m.frames) n += fr.length;
  }
  return n;
}

describe('ferry migrate: bad inputs', () => {
  async function refused(args: string[], code: string, schema: string, exit = 1) {
    const run = await runFerry(args, { timeoutMs: 30_000 });
    assert.equal(run.code, exit, run.stderr);
    assert.match(run.stderr, new RegExp(`^ferry: ${code}: `));
    assert.equal(run.stdout, '');
    return run;
  }

  it('a missing folder, or one holding no Ferry store: DATA_DIR_NOT_FOUND, nothing written', async () => {
    const schema = newSchema();
    const to = ['--to', PG_TEST_URL, '--store-schema', schema];
    const missing = path.join(tmpDir(), 'nope');
    await refused(['migrate', '--from', missing, ...to], 'DATA_DIR_NOT_FOUND', schema);
    const empty = tmpDir();
    await refused(['migrate', '--from', empty, ...to], 'DATA_DIR_NOT_FOUND', schema);
    const junk = tmpDir();
    fs.writeFileSync(path.join(junk, 'ferry.db'), 'not a database at all, only text');
    await refused(['migrate', '--from', junk, ...to], 'DATA_DIR_NOT_FOUND', schema);
    assert.equal(await schemaExists(schema), false, 'the target was not touched');
    assert.deepEqual(fs.readdirSync(empty), [], 'nothing was made in the empty folder');
  });

  it('a folder a running broker holds: DATA_DIR_LOCKED, nothing written', async () => {
    const b = await startBroker();
    brokers.push(b);
    const c = await client(b.endpoint);
    await c.send('q', 'x');
    const schema = newSchema();
    const run = await refused(
      ['migrate', '--from', b.dataDir, '--to', PG_TEST_URL, '--store-schema', schema],
      'DATA_DIR_LOCKED',
      schema,
    );
    assert.match(run.stderr, new RegExp(`pid ${process.pid}`));
    assert.equal(await schemaExists(schema), false);
  });

  it('a target schema holding Ferry data: STORE_NOT_EMPTY, nothing written', async () => {
    const schema = newSchema();
    const b = await startBroker({ store: PG_TEST_URL, 'store-schema': schema, data: tmpDir() });
    const c = await connect(b.endpoint, { heartbeatMs: 200 });
    await c.send('there-already', 'x');
    await c.close();
    await b.stop();
    const source = await startBroker();
    const sc = await connect(source.endpoint, { heartbeatMs: 200 });
    await sc.send('from-sqlite', 'y');
    await sc.close();
    await source.stop();
    const count = async () =>
      (await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.messages`))[0]!.n;
    assert.equal(await count(), 1);
    const run = await refused(
      ['migrate', '--from', source.dataDir, '--to', PG_TEST_URL, '--store-schema', schema],
      'STORE_NOT_EMPTY',
      schema,
    );
    assert.match(run.stderr, /queues, messages/);
    assert.equal(await count(), 1, 'the target keeps what it had, and only that');
    const names = await pgQuery<{ name: string }>(`SELECT name FROM ${schema}.queues`);
    assert.deepEqual(
      names.map((r) => r.name),
      ['there-already'],
    );
  });

  it('a target schema a live broker runs on: STORE_NOT_EMPTY, even when it holds no data', async () => {
    const schema = newSchema();
    const b = await startBroker({ store: PG_TEST_URL, 'store-schema': schema, data: tmpDir() });
    brokers.push(b);
    const source = await startBroker();
    await source.stop();
    const run = await refused(
      ['migrate', '--from', source.dataDir, '--to', PG_TEST_URL, '--store-schema', schema],
      'STORE_NOT_EMPTY',
      schema,
    );
    assert.match(run.stderr, /brokers running on it/);
  });

  it('PostgreSQL unreachable: STORAGE_ERROR; a bad --to or --store-schema: CONFIG_INVALID (exit 2)', async () => {
    const source = await startBroker();
    await source.stop();
    const schema = newSchema();
    const port = await freePort();
    await refused(
      [
        'migrate',
        '--from',
        source.dataDir,
        '--to',
        `postgres://postgres@127.0.0.1:${port}/test`,
        '--store-schema',
        schema,
      ],
      'STORAGE_ERROR',
      schema,
    );
    await refused(
      ['migrate', '--from', source.dataDir, '--to', 'mysql://h/db'],
      'CONFIG_INVALID',
      schema,
      2,
    );
    await refused(
      ['migrate', '--from', source.dataDir, '--to', PG_TEST_URL, '--store-schema', 'No-Such'],
      'CONFIG_INVALID',
      schema,
      2,
    );
    await refused(['migrate', '--to', PG_TEST_URL], 'CONFIG_INVALID', schema, 2);
    assert.equal(await schemaExists(schema), false);
  });
});

describe('ferry migrate: all or nothing', () => {
  it('a copy that fails before its commit leaves the schema empty, and a second run succeeds', async () => {
    const source = await startBroker();
    const sc = await connect(source.endpoint, { heartbeatMs: 200 });
    await sc.sendBatch(
      'many',
      Array.from({ length: 1_200 }, (_, i) => ({ body: `m${i}` })), // several insert batches
    );
    await sc.close();
    await source.stop();
    const schema = newSchema();
    const target = { url: PG_TEST_URL, schema };
    await assert.rejects(
      migrateSqliteToPostgres({
        dataDir: source.dataDir,
        target,
        beforeCommit: () => {
          throw new Error('stopped before the commit');
        },
      }),
      /stopped before the commit/,
    );
    const rows = await pgQuery<{ n: number }>(
      `SELECT (SELECT count(*) FROM ${schema}.messages)::int
            + (SELECT count(*) FROM ${schema}.queues)::int AS n`,
    );
    assert.equal(rows[0]!.n, 0, 'nothing of the copy was committed');
    const run = await migrate(source.dataDir, schema);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { messages: { ready: number } }).messages.ready, 1_200);
    const text = await migrate(source.dataDir, newSchema(), false);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^migrated .* \(schema ferry_m_\w+\)\n/);
    assert.match(text.stdout, /^messages ready +1200$/m);
  });
});
