/**
 * The job store on PostgreSQL, as only a shared store is used: several stores (brokers) on one
 * schema never start one job twice nor store one dedup key twice, and a broker that reopens puts
 * back only its own running jobs. (The contract suites run in postgres.test.ts.)
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { PostgresStorage } from 'ferrymq-server/internal/storage/postgres/pg-storage.js';
import type { NewJobRow, SyncPolicy } from 'ferrymq-server/internal/storage/types.js';
import { dropSchema, freshSchemaName, pgQuery, PG_TEST_URL } from '../helpers/postgres.js';

const ALWAYS: SyncPolicy = { mode: 'always' };
const NODE_TIMEOUT_MS = 15_000;

const T0 = Date.UTC(2030, 0, 1);
/** Jobs the concurrent-lease case stores and both brokers drain. */
const SHARED_JOBS = 300;
/** Lease calls each broker keeps in flight at once, and jobs per call. */
const LEASES_IN_FLIGHT = 4;
const LEASE_MAX = 7;
/** Rounds of leasing before the case gives up (each round leases at least one job). */
const MAX_LEASE_ROUNDS = SHARED_JOBS;
/** Dedup keys both brokers submit at the same moment. */
const RACED_KEYS = 40;

let jobSeq = 0;
function job(service: string, o: Partial<NewJobRow> = {}): NewJobRow {
  return {
    id: `pg-${process.pid}-${++jobSeq}`,
    service,
    status: 'queued',
    priority: 0,
    maxAttempts: 3,
    params: [Buffer.from(String(jobSeq))],
    headers: undefined,
    createdAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
    parentId: null,
    children: null,
    ...o,
  };
}

describe('postgres storage: several brokers on one schema (PostgreSQL only)', () => {
  const stores: PostgresStorage[] = [];
  const schemas: string[] = [];

  /** A store as broker `nodeId` on `schema`, opened. */
  async function broker(
    schema: string,
    nodeId: string,
    recoveryGraceMs = 0,
  ): Promise<PostgresStorage> {
    const s = new PostgresStorage({
      url: PG_TEST_URL,
      schema,
      sync: ALWAYS,
      nodeId,
      nodeTimeoutMs: NODE_TIMEOUT_MS,
      recoveryGraceMs,
    });
    stores.push(s);
    await s.open();
    return s;
  }

  function newSchema(): string {
    const s = freshSchemaName();
    schemas.push(s);
    return s;
  }

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    for (const s of schemas.splice(0)) await dropSchema(s);
  });

  it('two brokers leasing one service at once never start a job twice, and start every job', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const jobs = Array.from({ length: SHARED_JOBS }, (_, i) => job('shared', { priority: i % 3 }));
    await a.jobs.insert(jobs);

    const startedBy = new Map<string, string[]>();
    let rounds = 0;
    for (;;) {
      assert.ok(++rounds <= MAX_LEASE_ROUNDS, 'leasing made no progress');
      const calls = [a, b].flatMap((s) =>
        Array.from({ length: LEASES_IN_FLIGHT }, () =>
          s.jobs.lease('shared', LEASE_MAX, T0).then((rows) => ({ node: s.nodeId, rows })),
        ),
      );
      const results = await Promise.all(calls);
      let leased = 0;
      for (const { node, rows } of results) {
        for (const r of rows) {
          assert.equal(r.attempts, 1, `job ${r.id} started at attempt ${r.attempts}`);
          startedBy.set(r.id, [...(startedBy.get(r.id) ?? []), node]);
          leased++;
        }
      }
      if (leased === 0) break;
    }
    const twice = [...startedBy].filter(([, nodes]) => nodes.length > 1);
    assert.deepEqual(twice, [], 'no job started twice');
    assert.equal(startedBy.size, SHARED_JOBS, 'every job started once');
    const nodes = new Set([...startedBy.values()].map((n) => n[0]));
    assert.deepEqual([...nodes].sort(), ['node-a', 'node-b'], 'both brokers took a share');
    const rows = await pgQuery<{ leased_by: string; n: number }>(
      `SELECT leased_by, count(*)::int AS n FROM ${schema}.jobs
       WHERE status = 'running' GROUP BY leased_by ORDER BY leased_by`,
    );
    const byNode = new Map<string, number>();
    for (const ids of startedBy.values()) byNode.set(ids[0]!, (byNode.get(ids[0]!) ?? 0) + 1);
    assert.deepEqual(
      rows.map((r) => [r.leased_by, r.n]),
      [...byNode].sort(),
      'each running job carries the broker that started it',
    );
  });

  it('one dedup key submitted by two brokers at once stores one job; both learn its id', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    for (let k = 0; k < RACED_KEYS; k++) {
      const key = `key-${k}`;
      const ja = job('svc', { dedupKey: key, dedupUntil: T0 + 60_000 });
      const jb = job('svc', { dedupKey: key, dedupUntil: T0 + 60_000 });
      const [oa, ob] = await Promise.all([a.jobs.insert([ja]), b.jobs.insert([jb])]);
      assert.equal(oa.ids[0], ob.ids[0], `${key}: both report the stored job`);
      assert.deepEqual(
        [oa.duplicate[0], ob.duplicate[0]].sort(),
        [false, true],
        `${key}: exactly one of the two was stored`,
      );
    }
    const counts = await a.jobs.counts();
    assert.equal(counts.get('svc')?.queued, RACED_KEYS);
    const stored = await pgQuery<{ n: number }>(
      `SELECT count(DISTINCT dedup_key)::int AS n FROM ${schema}.jobs`,
    );
    assert.equal(stored[0]?.n, RACED_KEYS);
  });

  it('a broker reopening puts back only its own running jobs', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    await a.jobs.insert([job('s'), job('s'), job('s')]);
    const mine = await a.jobs.lease('s', 2, T0);
    const theirs = await b.jobs.lease('s', 1, T0);
    const direct = job('s', { status: 'running', started: true });
    await b.jobs.insert([direct]);
    assert.equal(mine.length, 2);
    assert.equal(theirs.length, 1);

    await b.close();
    const b2 = await broker(schema, 'node-b');
    const counts = await b2.jobs.counts();
    assert.deepEqual([counts.get('s')?.queued, counts.get('s')?.running], [2, 2]);
    assert.equal((await b2.jobs.get(direct.id))?.status, 'queued');
    assert.equal((await b2.jobs.get(direct.id))?.attempts, 1, 'the attempt stays counted');
    for (const r of mine) assert.equal((await b2.jobs.get(r.id))?.status, 'running');
    // A's runs are A's: it finishes them after B's reopen.
    assert.equal(
      await a.jobs.finish(mine[0]!.id, 1, { status: 'done', finishedAt: T0, retainUntil: T0 }),
      true,
    );
  });

  it('with a recovery grace, a reopening broker holds its own running jobs and lists them', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    await a.jobs.insert([job('g'), job('g')]);
    const [mine] = await a.jobs.lease('g', 1, T0);
    const [theirs] = await b.jobs.lease('g', 1, T0);
    assert.ok(mine && theirs);
    await a.close();
    const a2 = new PostgresStorage({
      url: PG_TEST_URL,
      schema,
      sync: ALWAYS,
      nodeId: 'node-a',
      nodeTimeoutMs: NODE_TIMEOUT_MS,
      recoveryGraceMs: 60_000,
    });
    stores.push(a2);
    const recovery = await a2.open();
    // Only A's run is held, still running, at its attempt; B's is not A's to hold.
    assert.deepEqual(recovery.recoveredJobs, [{ id: mine.id, service: 'g', attempts: 1 }]);
    assert.equal(recovery.requeuedJobs, 0);
    assert.ok(recovery.recoveryUntil !== null && recovery.recoveryUntil > Date.now());
    assert.equal((await a2.jobs.get(mine.id))?.status, 'running');
    // A report its worker re-sends ends it at that attempt.
    const done = { status: 'done' as const, finishedAt: T0, retainUntil: T0 };
    assert.equal(await a2.jobs.finish(mine.id, 1, done), true);
    assert.equal((await a2.jobs.get(theirs.id))?.status, 'running');
  });

  it('inserts and finishes made in one turn go as one statement each', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const burst = 50;
    const jobs = Array.from({ length: burst }, () => job('c'));
    let before = a.metrics().sqlStatements;
    const inserted = await Promise.all(jobs.map((j) => a.jobs.insert([j])));
    assert.deepEqual(
      inserted.map((o) => o.ids[0]),
      jobs.map((j) => j.id),
    );
    assert.equal(a.metrics().sqlStatements - before, 1, 'one INSERT for 50 insert calls');
    const running = await a.jobs.lease('c', burst, T0);
    assert.equal(running.length, burst);
    before = a.metrics().sqlStatements;
    const done = { status: 'done' as const, finishedAt: T0, retainUntil: T0 };
    const finished = await Promise.all(
      running.map((r, i) => a.jobs.finish(r.id, i === 0 ? 99 : 1, done)),
    );
    // Each call keeps its own outcome: the first names a wrong attempt.
    assert.deepEqual(finished, [false, ...Array.from({ length: burst - 1 }, () => true)]);
    assert.equal(a.metrics().sqlStatements - before, 1, 'one UPDATE for 50 finish calls');
    const counts = (await a.jobs.counts()).get('c');
    assert.deepEqual([counts?.done, counts?.running], [burst - 1, 1]);
  });
});
