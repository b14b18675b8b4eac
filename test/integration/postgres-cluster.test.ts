/**
 * Several active brokers on one PostgreSQL store (docs/postgres.md): real brokers on
 * tcp://127.0.0.1:*, the local PostgreSQL, one fresh schema per test. A producer on one broker
 * and a consumer on another; a call on one broker run by a worker on another, with progress,
 * partials and cancel crossing over; a killed broker's leases going to the others after the
 * liveness timeout; counters read cluster-wide; one node id per live broker.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { connect, FerryError, type FerryClient, type Message } from 'ferrymq';
import {
  killHard,
  spawnBroker,
  startBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
  type TestBroker,
} from '../helpers/broker.js';
import { dropSchema, freshSchemaName, PG_TEST_URL } from '../helpers/postgres.js';

/** The shortest liveness timeout the config accepts. */
const NODE_TIMEOUT_MS = 3_000;

const brokers: TestBroker[] = [];
const children: ChildBroker[] = [];
const clients: FerryClient[] = [];
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
  const s = freshSchemaName('ferry_c');
  schemas.push(s);
  return s;
}

async function broker(schema: string, nodeId: string): Promise<TestBroker> {
  const b = await startBroker({
    store: PG_TEST_URL,
    'store-schema': schema,
    'node-id': nodeId,
    'node-timeout': String(NODE_TIMEOUT_MS),
  });
  brokers.push(b);
  return b;
}

async function client(endpoint: string): Promise<FerryClient> {
  const c = await connect(endpoint, { heartbeatMs: 200, requestTimeoutMs: 20_000 });
  clients.push(c);
  return c;
}

/** A queue's stats as a broker sees them; undefined while it does not know the queue yet. */
async function queueOf(c: FerryClient, queue: string) {
  try {
    return (await c.stats(queue)).queues.find((q) => q.name === queue);
  } catch (err) {
    if (err instanceof FerryError && err.code === 'QUEUE_NOT_FOUND') return undefined;
    throw err;
  }
}

function collect(c: FerryClient, queue: string, prefetch = 100) {
  const got: Message[] = [];
  const consumer = c.consume(queue, { prefetch });
  const done = (async () => {
    for await (const m of consumer) got.push(m);
  })().catch(() => {});
  return { got, consumer, done };
}

describe('several brokers on one PostgreSQL store', () => {
  it('a consumer on broker B gets what a producer on broker A sent, each once', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const producer = await client(a.endpoint);
    const consumerClient = await client(b.endpoint);
    // Counters are cluster-wide: B counts what was sent through A.
    await producer.send('orders', 'first');
    await waitFor(
      async () => (await queueOf(consumerClient, 'orders'))?.ready === 1,
      'broker B counts the message stored through A',
    );
    // Credit for everything: the messages are acked only once all arrived.
    const { got } = collect(consumerClient, 'orders', 1_000);
    await waitFor(() => got.length === 1, 'the first message on broker B');
    // Then a stream, each delivered as it comes (wake-ups, not only the periodic probe).
    const n = 500;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => producer.send('orders', `order-${i + k}`)),
      );
    }
    await waitFor(() => got.length >= n + 1, `${n} more messages on broker B`, {
      timeoutMs: 20_000,
    });
    const bodies = new Set(got.map((m) => m.body.toString()));
    assert.equal(bodies.size, n + 1, 'every message once');
    for (const m of got) await m.ack();
    // The store is empty afterwards, and both brokers say so.
    for (const c of [producer, consumerClient]) {
      await waitFor(async () => {
        const q = await queueOf(c, 'orders');
        return q !== undefined && q.ready === 0 && q.leased === 0;
      }, 'queue drained as each broker sees it');
    }
  });

  it('three brokers: 10,000 messages from A, consumed on B and C, each delivered and acked once', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const c = await broker(schema, 'node-c');
    const producer = await client(a.endpoint);
    const onB = collect(await client(b.endpoint), 'shared', 200);
    const onC = collect(await client(c.endpoint), 'shared', 200);
    const n = 10_000;
    const acked = new Set<string>();
    const byBroker = { b: 0, c: 0 };
    // Acks as deliveries come, while the producer sends (flow control holds confirms while
    // the consumers lag).
    let sending = true;
    const consuming = (async () => {
      while (sending || acked.size < n) {
        await waitFor(() => onB.got.length + onC.got.length > 0 || acked.size >= n, 'deliveries', {
          timeoutMs: 30_000,
        });
        for (const [name, side] of [
          ['b', onB],
          ['c', onC],
        ] as const) {
          const batch = side.got.splice(0);
          byBroker[name] += batch.length;
          for (const m of batch) {
            const body = m.body.toString();
            assert.ok(!acked.has(body), `${body} delivered twice`);
            acked.add(body);
          }
          await Promise.all(batch.map((m) => m.ack()));
        }
        if (!sending && acked.size >= n) break;
      }
    })();
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        Array.from({ length: 500 }, (_, k) => producer.send('shared', `m${i + k}`)),
      );
    }
    sending = false;
    await consuming;
    assert.equal(acked.size, n);
    assert.ok(
      byBroker.b > 0 && byBroker.c > 0,
      `both brokers delivered (${byBroker.b}/${byBroker.c})`,
    );
    await waitFor(async () => {
      const q = await queueOf(producer, 'shared');
      return q !== undefined && q.depth === 0;
    }, 'the queue is empty for broker A too');
  });

  it("kill -9 of the producers' broker mid-stream: every message it acknowledged is delivered through the other", async () => {
    const schema = newSchema();
    const dying = await spawnBroker([
      '--bind',
      'tcp://127.0.0.1:*',
      '--data',
      tmpDir(),
      '--store',
      PG_TEST_URL,
      '--store-schema',
      schema,
      '--node-id',
      'node-producers',
      '--node-timeout',
      String(NODE_TIMEOUT_MS),
    ]);
    children.push(dying);
    const survivor = await broker(schema, 'node-consumers');
    const consumer = collect(await client(survivor.endpoint), 'stream', 1_000);
    const producer = await connect(dying.endpoint, { heartbeatMs: 200, requestTimeoutMs: 2_000 });
    const confirmed = new Set<string>();
    let stop = false;
    const producing = (async () => {
      for (let i = 0; i < 20_000 && !stop; i += 20) {
        const sends = Array.from({ length: 20 }, (_, k) =>
          producer.send('stream', `s${i + k}`).then(
            () => confirmed.add(`s${i + k}`),
            () => {
              stop = true;
            },
          ),
        );
        await Promise.all(sends);
      }
    })();
    await waitFor(() => confirmed.size >= 1_000, 'a thousand sends confirmed through A', {
      timeoutMs: 30_000,
    });
    await killHard(dying);
    children.splice(children.indexOf(dying), 1);
    stop = true;
    await producing;
    await producer.close({ timeoutMs: 200 }).catch(() => {});
    const delivered = new Set<string>();
    await waitFor(
      async () => {
        const batch = consumer.got.splice(0);
        for (const m of batch) delivered.add(m.body.toString());
        await Promise.all(batch.map((m) => m.ack()));
        for (const body of confirmed) if (!delivered.has(body)) return false;
        return true;
      },
      `all ${confirmed.size} messages A acknowledged delivered through B`,
      { timeoutMs: NODE_TIMEOUT_MS + 20_000 },
    );
  });

  it('a call on broker A runs on a worker attached to broker B, with progress and partials', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const w = await client(b.endpoint);
    await w.worker('steps', async (job) => {
      for (let i = 1; i <= 3; i++) {
        await job.progress({ step: i, of: 3 });
        await job.partial(`part-${i}`);
      }
      return `done:${job.params.toString()}`;
    }).ready;
    const c = await client(a.endpoint);
    const progress: unknown[] = [];
    const partials: string[] = [];
    const out = await c.call('steps', 'go', {
      onProgress: (p) => progress.push(p),
      onPartial: (frames) => partials.push(frames[0]!.toString()),
    });
    assert.equal(out.toString(), 'done:go');
    assert.deepEqual(partials, ['part-1', 'part-2', 'part-3']);
    assert.deepEqual(progress.at(-1), { step: 3, of: 3 });
    // A call that asks not to be stored is stored all the same: no worker on A can run it.
    assert.equal((await c.call('steps', 'plain', { durable: false })).toString(), 'done:plain');
    // A submitted (durable) job too, its result read on A.
    const job = await c.submit('steps', 'again');
    assert.equal((await job.result()).toString(), 'done:again');
  });

  it('cancel on broker A reaches the worker on broker B', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const w = await client(b.endpoint);
    let started = false;
    let aborted = false;
    await w.worker('long', (job) => {
      started = true;
      return new Promise((_resolve, reject) => {
        job.signal.addEventListener('abort', () => {
          aborted = true;
          reject(job.signal.reason as Error);
        });
      });
    }).ready;
    const c = await client(a.endpoint);
    const job = await c.submit('long', 'x');
    await waitFor(() => started, 'the worker on B started the job', { timeoutMs: 10_000 });
    const info = await job.cancel();
    assert.equal(info.status, 'cancelled');
    await waitFor(() => aborted, "the worker's signal aborted on B", { timeoutMs: 10_000 });
  });

  it("a killed broker's leases go to the other broker after the liveness timeout", async () => {
    const schema = newSchema();
    const dying = await spawnBroker([
      '--bind',
      'tcp://127.0.0.1:*',
      '--data',
      tmpDir(),
      '--store',
      PG_TEST_URL,
      '--store-schema',
      schema,
      '--node-id',
      'node-dying',
      '--node-timeout',
      String(NODE_TIMEOUT_MS),
    ]);
    children.push(dying);
    const survivor = await broker(schema, 'node-survivor');
    const producer = await client(survivor.endpoint);
    const n = 20;
    await Promise.all(Array.from({ length: n }, (_, i) => producer.send('work', `w${i}`)));
    // A consumer on the dying broker takes every message and never acks.
    const greedy = await connect(dying.endpoint, { heartbeatMs: 200 });
    const held = collect(greedy, 'work', n);
    await waitFor(() => held.got.length === n, 'the dying broker leased every message');
    await killHard(dying);
    children.splice(children.indexOf(dying), 1);
    await greedy.close({ timeoutMs: 200 }).catch(() => {});
    const rescuer = collect(await client(survivor.endpoint), 'work', n);
    await waitFor(() => rescuer.got.length === n, 'the survivor delivered them again', {
      timeoutMs: NODE_TIMEOUT_MS + 10_000,
    });
    assert.deepEqual(
      new Set(rescuer.got.map((m) => m.body.toString())),
      new Set(held.got.map((m) => m.body.toString())),
    );
    for (const m of rescuer.got) await m.ack();
  });

  it('a second live broker with the same node id is refused with NODE_ID_IN_USE', async () => {
    const schema = newSchema();
    await broker(schema, 'node-same');
    await assert.rejects(broker(schema, 'node-same'), (err: unknown) => {
      return err instanceof FerryError && err.code === 'NODE_ID_IN_USE';
    });
  });
});
