/**
 * A broker on a PostgreSQL store that goes away and comes back (docs/postgres.md): while it is
 * unreachable, sends are refused with a coded error and the broker keeps running; once it is
 * back, the broker serves again without a restart, heartbeats resume, and every message
 * acknowledged before the outage is still delivered. The outage is a TCP proxy cut between
 * the broker and the local PostgreSQL, so no other test's server is touched.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, FerryError, type FerryClient, type Message } from 'ferrymq';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { dropSchema, freshSchemaName, PG_TEST_URL } from '../helpers/postgres.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/** Messages stored before the outage. */
const BEFORE = 50;
/** Bound on sends tried while PostgreSQL is away and until it answers again. */
const MAX_TRIES = 400;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe('PostgreSQL outage', () => {
  it('refuses sends with STORAGE_ERROR while PostgreSQL is away, then serves again; nothing acknowledged is lost', async () => {
    const target = new URL(PG_TEST_URL);
    const proxy = new TcpProxy(Number(target.port || 5432), target.hostname);
    await proxy.start();
    cleanups.push(() => proxy.close());
    const schema = freshSchemaName('ferry_o');
    cleanups.push(() => dropSchema(schema));
    const viaProxy = new URL(PG_TEST_URL);
    viaProxy.port = String(proxy.port);
    const b: TestBroker = await startBroker({
      store: viaProxy.toString(),
      'store-schema': schema,
      'node-id': 'outage',
    });
    cleanups.push(() => b.stop());
    const c: FerryClient = await connect(b.endpoint, { heartbeatMs: 200, requestTimeoutMs: 5_000 });
    cleanups.push(() => c.close({ timeoutMs: 200 }));
    for (let i = 0; i < BEFORE; i++) await c.send('kept', `before-${i}`);

    await proxy.cut();
    let refused: FerryError | undefined;
    for (let i = 0; i < MAX_TRIES && !refused; i++) {
      try {
        await c.send('kept', 'during');
      } catch (err) {
        if (err instanceof FerryError) refused = err;
        else throw err;
      }
    }
    assert.ok(refused, 'a send was refused while PostgreSQL was away');
    assert.equal(refused.code, 'STORAGE_ERROR');

    await proxy.start();
    let after: string | undefined;
    for (let i = 0; i < MAX_TRIES && after === undefined; i++) {
      after = await c.send('kept', 'after').catch(() => undefined);
    }
    assert.ok(after !== undefined, 'sends are stored again once PostgreSQL is back');

    // Every message acknowledged before the outage, and the one after, are delivered.
    const got: Message[] = [];
    const consumer = c.consume('kept', { prefetch: 200 });
    void (async () => {
      for await (const m of consumer) got.push(m);
    })().catch(() => {});
    await waitFor(
      () => {
        const bodies = new Set(got.map((m) => m.body.toString()));
        for (let i = 0; i < BEFORE; i++) if (!bodies.has(`before-${i}`)) return false;
        return bodies.has('after');
      },
      'every acknowledged message delivered after the outage',
      { timeoutMs: 20_000 },
    );
    for (const m of got) await m.ack();
    // The heartbeat resumed: this broker's row is fresh again.
    await waitFor(async () => {
      const nodes = (await c.stats()).cluster?.nodes ?? [];
      const self = nodes.find((n) => n.self);
      return self !== undefined && Date.now() - self.heartbeatAt < 3_000;
    }, 'the heartbeat resumed');
  });
});
