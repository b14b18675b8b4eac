/**
 * The Clone dialect (12/CHP) with raw clients written from the RFC in zeromq.js: DEALER for
 * the snapshot, SUB for updates, PUB for KVSET. Keys are Ferry retained topics both ways.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect } from 'ferrymq';
import {
  freePort,
  REPO_ROOT,
  spawnBroker,
  startBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
  type TestBroker,
  TestResources,
} from '../helpers/broker.js';
import { prng } from '../helpers/seed.js';

const resources = new TestResources();
const brokers = resources.brokers;
const clients = resources.clients;
const sockets: zmq.Socket[] = [];

after(async () => {
  for (const s of sockets.splice(0)) s.close();
  await resources.closeAll();
});

/** Three consecutive free ports (P, P+1, P+2), checked one by one. */
async function cloneBase(): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const p = await freePort();
    if (p + 2 > 65_535) continue;
    const ok = await Promise.all([1, 2].map((k) => portFree(p + k)));
    if (ok.every(Boolean)) return p;
  }
  throw new Error('no three consecutive free ports');
}

async function portFree(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function cloneBroker(): Promise<{ b: TestBroker; port: number }> {
  const port = await cloneBase();
  const b = await startBroker({ clone: String(port) });
  brokers.push(b);
  return { b, port };
}

/** The UUID frame of KVSET updates: random bytes, from the test seed. */
const uuids = prng('clone uuids');

function seqOf(frame: Buffer | undefined): number {
  assert.ok(frame && frame.length === 8, 'sequence is 8 bytes');
  return Number(frame.readBigUInt64BE());
}

/** A Clone client as the RFC describes it: snapshot, then updates after the snapshot's number. */
class RawCloneClient {
  readonly kv = new Map<string, string>();
  sequence = 0;
  hugz = 0;
  updates: { key: string; seq: number }[] = [];
  private readonly snapshot = new zmq.Dealer({ linger: 0 });
  private readonly subscriber = new zmq.Subscriber({ linger: 0 });
  private readonly publisher = new zmq.Publisher({ linger: 0 });

  constructor(
    private readonly port: number,
    private readonly subtree = '',
  ) {
    sockets.push(this.snapshot, this.subscriber, this.publisher);
  }

  async start(): Promise<void> {
    this.subscriber.subscribe(this.subtree);
    this.subscriber.subscribe('HUGZ');
    this.subscriber.connect(`tcp://127.0.0.1:${this.port + 1}`);
    this.snapshot.connect(`tcp://127.0.0.1:${this.port}`);
    this.publisher.connect(`tcp://127.0.0.1:${this.port + 2}`);
    await this.snapshot.send(['ICANHAZ?', this.subtree]);
    for (;;) {
      const frames = await this.snapshot.receive();
      assert.equal(frames.length, 5, 'five frames per snapshot message');
      const key = frames[0]!.toString();
      if (key === 'KTHXBAI') {
        this.sequence = seqOf(frames[1]);
        assert.equal(frames[4]!.toString(), this.subtree);
        break;
      }
      seqOf(frames[1]);
      this.kv.set(key, frames[4]!.toString());
    }
    void this.listen();
  }

  private async listen(): Promise<void> {
    try {
      for await (const frames of this.subscriber) {
        assert.equal(frames.length, 5, 'five frames per published message');
        const key = frames[0]!.toString();
        const seq = seqOf(frames[1]);
        if (key === 'HUGZ') {
          this.hugz++;
          continue;
        }
        if (seq <= this.sequence) continue; // RFC: discard what the snapshot already holds
        this.sequence = seq;
        this.updates.push({ key, seq });
        const value = frames[4]!;
        if (value.length === 0) this.kv.delete(key);
        else this.kv.set(key, value.toString());
      }
    } catch {
      /* closed */
    }
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const props = ttlSeconds === undefined ? '' : `ttl=${ttlSeconds}\n`;
    await this.publisher.send([key, Buffer.alloc(8), uuids.bytes(16), props, value]);
  }
}

describe('Clone dialect (12/CHP)', () => {
  it('snapshot, KVPUB in sequence, HUGZ when idle, KVSET through the collector; Ferry sees it', async () => {
    const { b, port } = await cloneBroker();
    const ferry = await connect(b.endpoint, { heartbeatMs: 200 });
    clients.push(ferry);
    await ferry.publish('/cfg/a', 'from-ferry', { retain: true });
    await ferry.publish('/other/x', 'elsewhere', { retain: true });
    const sub = ferry.subscribe('/cfg/', { snapshot: true });
    await sub.ready;
    const c = new RawCloneClient(port, '/cfg/');
    await c.start();
    assert.deepEqual([...c.kv], [['/cfg/a', 'from-ferry']], 'the subtree only');
    // KVSET may race the SUB connection: set until Ferry sees the value.
    await waitFor(async () => {
      await c.set('/cfg/b', 'from-clone');
      return (await ferry.retained('/cfg/b')).messages.length === 1;
    }, 'the KVSET reached Ferry');
    await waitFor(() => c.kv.get('/cfg/b') === 'from-clone', 'KVPUB of the KVSET');
    await ferry.publish('/cfg/a', 'changed', { retain: true });
    await waitFor(() => c.kv.get('/cfg/a') === 'changed', 'KVPUB of a Ferry publish');
    for (let i = 1; i < c.updates.length; i++) {
      assert.ok(c.updates[i]!.seq > c.updates[i - 1]!.seq, 'strictly increasing');
    }
    const seen: string[] = [];
    for await (const m of sub) {
      seen.push(`${m.topic}=${m.body.toString()}`);
      if (m.body.toString() === 'changed') break;
    }
    assert.ok(seen.includes('/cfg/b=from-clone'), 'a Ferry subscriber sees the KVSET');
    await waitFor(() => c.hugz > 0, 'HUGZ when idle', { timeoutMs: 5_000 });
    // An empty value deletes.
    await c.set('/cfg/b', '');
    await waitFor(() => !c.kv.has('/cfg/b'), 'delete');
    assert.equal((await ferry.retained('/cfg/b')).messages.length, 0);
  });

  it('two clients converge on the same key set; TTL keys disappear; bad frames are refused', async () => {
    const { b, port } = await cloneBroker();
    const one = new RawCloneClient(port);
    await one.start();
    await waitFor(async () => {
      await one.set('/k/probe', 'p');
      return b.server.clone!.applied > 0;
    }, 'collector connected');
    for (let i = 0; i < 50; i++) await one.set(`/k/${i % 10}`, `one-${i}`);
    const two = new RawCloneClient(port);
    await two.start();
    await waitFor(async () => {
      await two.set('/k/probe2', 'p');
      return (await b.server.pubsub.retained('/k/probe2')).items.length === 1;
    }, 'second collector connected');
    for (let i = 0; i < 50; i++) await two.set(`/k/${i % 7}`, `two-${i}`);
    await one.set('/k/short', 'ephemeral', 0.2);
    const state = async (): Promise<string> =>
      JSON.stringify(
        (await b.server.pubsub.retained('**')).items.map((m) => [m.topic, m.frames[0]!.toString()]),
      );
    const sorted = (kv: Map<string, string>): string =>
      JSON.stringify([...kv].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
    await waitFor(
      async () => sorted(one.kv) === sorted(two.kv) && sorted(one.kv) === (await state()),
      'both clients hold the broker state',
    );
    await waitFor(
      () => !one.kv.has('/k/short') && !two.kv.has('/k/short'),
      'the TTL key disappears everywhere',
    );
    assert.equal(sorted(one.kv), sorted(two.kv));
    const clone = b.server.clone!;
    const raw = new zmq.Publisher({ linger: 0 });
    sockets.push(raw);
    raw.connect(`tcp://127.0.0.1:${port + 2}`);
    const snap = new zmq.Dealer({ linger: 0 });
    sockets.push(snap);
    snap.connect(`tcp://127.0.0.1:${port}`);
    await waitFor(async () => {
      await raw.send(['/k/x', 'too few frames']);
      await raw.send(['bad*key', Buffer.alloc(8), Buffer.alloc(0), '', 'v']);
      await raw.send(['/k/y', Buffer.alloc(8), Buffer.alloc(0), 'ttl=abc\n', 'v']);
      await snap.send(['WHAT?']);
      return (
        (clone.errorCounts.get('BAD_FRAME') ?? 0) >= 2 &&
        (clone.errorCounts.get('INVALID_TOPIC') ?? 0) >= 1 &&
        (clone.errorCounts.get('BAD_ARGUMENTS') ?? 0) >= 1
      );
    }, 'malformed messages are refused and counted');
    // Still serving.
    const three = new RawCloneClient(port, '/k/');
    await three.start();
    assert.ok(three.kv.size > 0);
  });

  it('keys set through the collector survive a kill -9 of ferry start --clone', async () => {
    const port = await cloneBase();
    const dataDir = tmpDir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = ['--data', dataDir, '--bind', endpoint, '--clone', String(port)];
    let b: ChildBroker = await spawnBroker(args);
    try {
      const c = new RawCloneClient(port);
      await c.start();
      await waitFor(async () => {
        await c.set('/durable/probe', 'p');
        return c.kv.get('/durable/probe') === 'p';
      }, 'the collector is connected');
      for (let i = 0; i < 20; i++) await c.set(`/durable/k${i}`, `v${i}`);
      // A KVPUB comes only after the commit: once seen, the value is stored.
      await waitFor(() => c.kv.get('/durable/k19') === 'v19', 'the last KVSET published');
      const before = c.sequence;
      b.child.kill('SIGKILL');
      await b.exited;
      b = await spawnBroker(args);
      const after = new RawCloneClient(port, '/durable/');
      await after.start();
      assert.equal(after.kv.size, 21);
      assert.equal(after.kv.get('/durable/k7'), 'v7');
      assert.ok(after.sequence >= before, 'the sequence does not go back after a restart');
    } finally {
      b.child.kill('SIGKILL');
      await b.exited;
    }
  });

  it('a pyzmq client written from the RFC: snapshot, KVSET, KVPUB in order, HUGZ', async () => {
    const { b, port } = await cloneBroker();
    const ferry = await connect(b.endpoint, { heartbeatMs: 200 });
    clients.push(ferry);
    await ferry.publish('/py/seeded', 'from-ferry', { retain: true });
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          '/usr/bin/python3',
          [
            path.join(REPO_ROOT, 'test', 'fixtures', 'clone_client.py'),
            '127.0.0.1',
            String(port),
            '/py/',
            '5',
          ],
          { timeout: 60_000, killSignal: 'SIGKILL' },
          (error, stdout, stderr) =>
            resolve({
              code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
              stdout,
              stderr,
            }),
        );
      },
    );
    assert.equal(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout) as {
      snapshot: Record<string, string>;
      kthxbai: number;
      updates: number;
      in_order: boolean;
      hugz: number;
      state: Record<string, string>;
    };
    assert.deepEqual(r.snapshot, { '/py/seeded': 'from-ferry' });
    assert.ok(r.kthxbai >= 1);
    assert.ok(r.updates >= 5 && r.in_order && r.hugz > 0);
    const seen = await ferry.retained('/py/');
    assert.equal(seen.messages.length, 6, 'Ferry holds the keys the Python client set');
    for (let i = 0; i < 5; i++) assert.equal(r.state[`/py/py-${i}`], `value-${i}`);
  });
});
