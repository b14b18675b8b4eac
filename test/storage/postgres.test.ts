/**
 * The storage contract against the PostgreSQL backend (a fresh schema per case, on the local
 * server), and the promises only it makes: migrations in their own schema under an advisory
 * lock, refusal of a newer schema, and leases owned per broker node.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { FerryError } from 'ferrymq/model';
import { PG_MIGRATIONS } from 'ferrymq-server/internal/storage/postgres/migrations/index.js';
import { PostgresStorage } from 'ferrymq-server/internal/storage/postgres/pg-storage.js';
import type { EnqueueItem, SyncPolicy } from 'ferrymq-server/internal/storage/types.js';
import { dropSchema, freshSchemaName, PG_TEST_URL, pgQuery } from '../helpers/postgres.js';
import { runStorageContract, type StorageFactory } from './contract.js';
import { runJobStorageContract } from './jobs-contract.js';
import { runPubSubStorageContract } from './pubsub-contract.js';
import { runQueueLifecycleContract } from './queue-lifecycle-contract.js';

const ALWAYS: SyncPolicy = { mode: 'always' };
const NODE_TIMEOUT_MS = 15_000;

const postgresFixture: StorageFactory = async () => {
  const schema = freshSchemaName();
  const make = (): PostgresStorage =>
    new PostgresStorage({
      url: PG_TEST_URL,
      schema,
      sync: ALWAYS,
      nodeId: 'test-node',
      nodeTimeoutMs: NODE_TIMEOUT_MS,
    });
  return {
    storage: make(),
    reopen: async () => make(),
    cleanup: async () => dropSchema(schema),
  };
};

runStorageContract('postgres', postgresFixture);
runJobStorageContract('postgres', postgresFixture);
runPubSubStorageContract('postgres', postgresFixture);
runQueueLifecycleContract('postgres', postgresFixture);

const T0 = Date.UTC(2030, 0, 1);
/** Messages the two nodes lease from in the concurrency case. */
const RACE_MESSAGES = 2_000;
/** Messages per lease call in that case. */
const RACE_LEASE_MAX = 25;
/** Bound on lease calls per node (far above the RACE_MESSAGES / RACE_LEASE_MAX needed). */
const RACE_MAX_CALLS = 1_000;
/** Keys both nodes enqueue at the same moment in the dedup case. */
const RACE_KEYS = 40;
/** Generous bound on open() against a closed port: it must fail, not hang. */
const UNREACHABLE_TIMEOUT_MS = 10_000;

function item(queue: string, body: string, o: Partial<EnqueueItem> = {}): EnqueueItem {
  return {
    queue,
    frames: [Buffer.from(body)],
    headers: undefined,
    priority: 0,
    enqueuedAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
    ...o,
  };
}

describe('postgres storage (PostgreSQL only)', () => {
  const schemas: string[] = [];
  const stores: PostgresStorage[] = [];

  /** A store of node `nodeId` on `schema` (not opened). */
  function node(schema: string, nodeId: string, url = PG_TEST_URL): PostgresStorage {
    const s = new PostgresStorage({
      url,
      schema,
      sync: ALWAYS,
      nodeId,
      nodeTimeoutMs: NODE_TIMEOUT_MS,
    });
    stores.push(s);
    return s;
  }

  function newSchema(): string {
    const schema = freshSchemaName();
    schemas.push(schema);
    return schema;
  }

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    for (const schema of schemas.splice(0)) await dropSchema(schema);
  });

  it('PostgreSQL: two nodes leasing one queue at once never hand a message to both', async () => {
    const schema = newSchema();
    const a = node(schema, 'node-a');
    const b = node(schema, 'node-b');
    await a.open();
    await b.open();
    const items = Array.from({ length: RACE_MESSAGES }, (_, i) => item('q', `m${i}`));
    const { ids } = await a.enqueue(items);
    let total = 0;
    const leaseAll = async (s: PostgresStorage): Promise<string[]> => {
      const got: string[] = [];
      for (let calls = 0; calls < RACE_MAX_CALLS && total < RACE_MESSAGES; calls++) {
        const { messages } = await s.lease('q', RACE_LEASE_MAX, T0);
        total += messages.length;
        for (const m of messages) got.push(m.id);
      }
      return got;
    };
    const [fromA, fromB] = await Promise.all([leaseAll(a), leaseAll(b)]);
    assert.ok(fromA.length > 0 && fromB.length > 0, 'both nodes leased (they raced)');
    const setA = new Set(fromA);
    assert.equal(setA.size, fromA.length, 'node A got no message twice');
    assert.deepEqual(
      fromB.filter((id) => setA.has(id)),
      [],
      'no message was leased by both nodes',
    );
    assert.deepEqual(new Set([...fromA, ...fromB]), new Set(ids), 'every message was leased');
    assert.deepEqual((await b.counts()).get('q'), {
      ready: 0,
      leased: RACE_MESSAGES,
      scheduled: 0,
      dead: 0,
      bytes: items.reduce((n, it) => n + it.frames[0]!.length, 0),
    });
  });

  it("PostgreSQL: reopening node A releases A's leases, not B's; B still acks its own", async () => {
    const schema = newSchema();
    const a = node(schema, 'node-a');
    const b = node(schema, 'node-b');
    await a.open();
    await b.open();
    await a.enqueue(['1', '2', '3', '4', '5', '6'].map((x) => item('q', x)));
    const heldByA = (await a.lease('q', 3, T0)).messages;
    const heldByB = (await b.lease('q', 2, T0)).messages;
    assert.equal(heldByA.length, 3);
    assert.equal(heldByB.length, 2);
    await a.close();
    const again = node(schema, 'node-a');
    const rec = await again.open();
    assert.equal(rec.releasedLeases, 3, "only A's leases are released");
    assert.equal(rec.queues.get('q')?.ready, 4, 'counts are read from the shared store');
    assert.equal(rec.queues.get('q')?.leased, 2, "B's leases stay leased");
    assert.deepEqual(await b.ack(heldByB.map((m) => ({ id: m.id, attempts: m.attempts }))), [
      true,
      true,
    ]);
    assert.deepEqual(
      await again.ack(heldByA.map((m) => ({ id: m.id, attempts: m.attempts }))),
      [false, false, false],
      "A's old leases are gone",
    );
  });

  it('PostgreSQL: with a recovery grace, node A holds back only its own leases and acks them after reopen', async () => {
    const schema = newSchema();
    const a = node(schema, 'node-a');
    const b = node(schema, 'node-b');
    await a.open();
    await b.open();
    await a.enqueue(['1', '2', '3'].map((x) => item('q', x)));
    const heldByA = (await a.lease('q', 2, T0)).messages;
    const heldByB = (await b.lease('q', 1, T0)).messages;
    await a.close();
    const again = new PostgresStorage({
      url: PG_TEST_URL,
      schema,
      sync: ALWAYS,
      nodeId: 'node-a',
      nodeTimeoutMs: NODE_TIMEOUT_MS,
      recoveryGraceMs: 60_000,
    });
    stores.push(again);
    const rec = await again.open();
    assert.deepEqual(rec.recoveredLeases.map((l) => l.id).sort(), heldByA.map((m) => m.id).sort());
    assert.ok(rec.recoveryUntil !== null);
    const refs = [...heldByA, ...heldByB].map((m) => ({ id: m.id, attempts: m.attempts }));
    assert.deepEqual(await again.ackRecovered(refs), [true, true, false], "not B's lease");
    assert.deepEqual(await b.ack([refs[2]!]), [true]);
  });

  it('PostgreSQL: two stores opening one fresh schema at the same time both come up (migration lock)', async () => {
    const schema = newSchema();
    const a = node(schema, 'node-a');
    const b = node(schema, 'node-b');
    const [ra, rb] = await Promise.all([a.open(), b.open()]);
    assert.equal(ra.queues.size, 0);
    assert.equal(rb.queues.size, 0);
    const versions = await pgQuery<{ version: number }>(
      `SELECT version FROM ${schema}.migrations ORDER BY version`,
    );
    assert.deepEqual(
      versions.map((r) => r.version),
      PG_MIGRATIONS.map((m) => m.version),
      'each migration applied once',
    );
    await a.enqueue([item('q', 'x')]);
    assert.equal((await b.counts()).get('q')?.ready, 1, 'both use the same tables');
  });

  it('PostgreSQL: a schema written by a newer Ferry is refused with STORAGE_ERROR naming both versions', async () => {
    const schema = newSchema();
    const first = node(schema, 'node-a');
    await first.open();
    await first.enqueue([item('q', 'kept')]);
    await first.close();
    await pgQuery(
      `INSERT INTO ${schema}.migrations(version, name, applied_at) VALUES ($1, $2, $3)`,
      [999, 'from-the-future', T0],
    );
    const latest = PG_MIGRATIONS.at(-1)!.version;
    await assert.rejects(node(schema, 'node-a').open(), (err: unknown) => {
      assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
      assert.equal(err.code, 'STORAGE_ERROR');
      assert.match(err.message, new RegExp(`999 > ${latest}\\b`));
      return true;
    });
    const rows = await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.messages`);
    assert.equal(rows[0]?.n, 1, 'refusing touched nothing');
  });

  it('PostgreSQL: the same dedup key enqueued by two nodes at the same moment is stored once', async () => {
    const schema = newSchema();
    const a = node(schema, 'node-a');
    const b = node(schema, 'node-b');
    await a.open();
    await b.open();
    await a.ensureQueue('q');
    const until = T0 + 60_000;
    const pairs = await Promise.all(
      Array.from({ length: RACE_KEYS }, (_, k) =>
        Promise.all([
          a.enqueue([item('q', `a${k}`, { dedupKey: `k${k}`, dedupUntil: until })]),
          b.enqueue([item('q', `b${k}`, { dedupKey: `k${k}`, dedupUntil: until })]),
        ]),
      ),
    );
    for (const [fromA, fromB] of pairs) {
      assert.deepEqual(
        [fromA.duplicate[0], fromB.duplicate[0]].sort(),
        [false, true],
        'exactly one of the two stored it',
      );
      assert.equal(fromA.ids[0], fromB.ids[0], 'both name the one stored message');
    }
    assert.equal((await a.counts()).get('q')?.ready, RACE_KEYS);
  });

  it('PostgreSQL: enqueue of a 100-message batch, lease, release and ack are one statement each', async () => {
    const s = node(newSchema(), 'node-a');
    await s.open();
    await s.ensureQueue('q');
    const statements = (): number => s.metrics().sqlStatements;
    let before = statements();
    const { ids } = await s.enqueue(Array.from({ length: 100 }, (_, i) => item('q', `m${i}`)));
    assert.equal(ids.length, 100);
    assert.equal(statements() - before, 1, 'enqueue: one statement for the batch');
    before = statements();
    const { messages } = await s.lease('q', 100, T0);
    assert.equal(messages.length, 100);
    assert.equal(statements() - before, 1, 'lease: one statement');
    before = statements();
    const half = messages.slice(0, 50);
    const released = await s.release(
      half.map((m) => ({ id: m.id, attempts: m.attempts, notBefore: T0 })),
      T0,
    );
    assert.ok(released.every((r) => r));
    assert.equal(statements() - before, 1, 'release: one statement for the batch');
    before = statements();
    const acked = await s.ack(messages.slice(50).map((m) => ({ id: m.id, attempts: m.attempts })));
    assert.ok(acked.every((r) => r));
    assert.equal(statements() - before, 1, 'ack: one statement for the batch');
  });

  it('PostgreSQL, sync always: hot-path commits skip the flush; confirms share one barrier', async () => {
    const s = node(newSchema(), 'node-a');
    await s.open();
    const fsyncs = (): number => s.metrics().fsyncs;
    // ensureQueue is an admin write: its commit waits for the flush itself.
    let before = fsyncs();
    await s.ensureQueue('q');
    assert.equal(fsyncs() - before, 1, 'an admin commit flushes');
    before = fsyncs();
    await s.durable();
    assert.equal(fsyncs() - before, 0, 'nothing committed since the last flush: no barrier');
    // enqueue resolves at its commit, made without the flush; durable() then flushes once.
    before = fsyncs();
    await s.enqueue([item('q', 'm0')]);
    assert.equal(fsyncs() - before, 0, 'a hot-path commit does not wait for the flush');
    await s.durable();
    assert.equal(fsyncs() - before, 1, 'durable() after it runs one barrier');
    await s.durable();
    assert.equal(fsyncs() - before, 1, 'a second durable() has nothing left to flush');
    // Twenty sends, each confirmed after durable(), as the core does: the confirms share
    // the barriers (one for the commit before the first asked, at most one more).
    before = fsyncs();
    const CONFIRMS = 20;
    await Promise.all(
      Array.from({ length: CONFIRMS }, (_, i) =>
        s.enqueue([item('q', `c${i}`)]).then(() => s.durable()),
      ),
    );
    const barriers = fsyncs() - before;
    assert.ok(barriers >= 1 && barriers <= 2, `${barriers} barriers for ${CONFIRMS} confirms`);
    // Everything confirmed is there.
    const { messages } = await s.lease('q', 100, T0);
    assert.equal(messages.length, 1 + CONFIRMS);
  });

  it(
    'PostgreSQL: open() against an unreachable server rejects with STORAGE_ERROR, not a hang',
    {
      timeout: UNREACHABLE_TIMEOUT_MS,
    },
    async () => {
      const s = node(newSchema(), 'node-a', 'postgres://postgres@127.0.0.1:1/test');
      await assert.rejects(s.open(), (err: unknown) => {
        assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
        assert.equal(err.code, 'STORAGE_ERROR');
        assert.match(err.message, /127\.0\.0\.1:1/);
        return true;
      });
    },
  );
});
