/**
 * CURVE and permissions on the Ferry endpoint, end to end (docs/security.md): a real broker
 * on tcp://127.0.0.1:* with a secret key file and an auth file, SDK clients with their keys.
 * An unknown key is refused at the handshake and the SDK says AUTH_FAILED at once; a granted
 * key works on every feature; each verb refused is FORBIDDEN naming verb and resource; a
 * proof replayed on another connection is refused; SIGHUP revokes a removed key.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect, FerryClient, FerryError, generateKeyPair, type CurveKeyPair } from 'ferrymq';
import { decodeReply, encodeRequest, helloProof, type Json, type Reply } from 'ferrymq/protocol';
import { hashToken } from 'ferrymq-server/internal/security/auth-model.js';
import { spawnBroker, startBroker, tmpDir, waitFor, type TestBroker } from '../helpers/broker.js';

/** connect() of a refused key must fail well inside this (the SDK's request timeout is 30 s). */
const PROMPT_REFUSAL_MS = 5_000;

const server = generateKeyPair();
const full = generateKeyPair();
const app = generateKeyPair();
const stranger = generateKeyPair();
const everything = { 'queue:send': ['**'] };

function authFile(users: Json[]): string {
  const file = path.join(tmpDir('ferry-auth-'), 'auth.json');
  fs.writeFileSync(file, JSON.stringify({ users }));
  return file;
}

const FULL_USER = {
  name: 'ops',
  curveKeys: [full.publicKey],
  tokens: [hashToken('ops-token')],
  allow: {
    ...everything,
    'queue:consume': ['**'],
    'queue:manage': ['**'],
    'service:call': ['**'],
    'service:serve': ['**'],
    'service:manage': ['**'],
    'topic:publish': ['**'],
    'topic:subscribe': ['**'],
    'topic:retain': ['**'],
    admin: ['**'],
  },
};
const APP_USER = {
  name: 'app',
  curveKeys: [app.publicKey],
  allow: {
    'queue:send': ['orders.*'],
    'service:call': ['resize'],
    'topic:publish': ['news/*'],
    'topic:subscribe': ['news/*'],
  },
  deny: { 'queue:send': ['orders.audit'] },
};

function keyFile(secret: string): string {
  const file = path.join(tmpDir('ferry-key-'), 'server.key');
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

const curveOf = (keys: CurveKeyPair) => ({
  serverKey: server.publicKey,
  publicKey: keys.publicKey,
  secretKey: keys.secretKey,
});

async function expectCode(
  p: Promise<unknown>,
  code: string,
  ...inMessage: string[]
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FerryError, String(e));
    assert.equal(e.code, code, e.message);
    for (const s of inMessage) assert.ok(e.message.includes(s), `"${e.message}" names ${s}`);
    return true;
  });
}

let broker: TestBroker;
const clients: FerryClient[] = [];
async function client(keys: CurveKeyPair): Promise<FerryClient> {
  const c = await connect(broker.endpoint, {
    curve: curveOf(keys),
    heartbeatMs: 200,
    requestTimeoutMs: 20_000,
  });
  clients.push(c);
  return c;
}

before(async () => {
  broker = await startBroker({
    'curve-secret-key-file': keyFile(server.secretKey),
    'auth-file': authFile([FULL_USER, APP_USER]),
  });
});
after(async () => {
  for (const c of clients) await c.close({ timeoutMs: 500 }).catch(() => {});
  await broker.stop();
});

describe('CURVE on the Ferry endpoint', () => {
  it('announces the server key it derives from its secret key', () => {
    assert.equal(broker.server.publicKey, server.publicKey);
  });

  it('refuses an unknown key at the handshake: connect and pending calls reject AUTH_FAILED at once', async () => {
    const started = Date.now();
    const c = new FerryClient(broker.endpoint, {
      curve: curveOf(stranger),
      requestTimeoutMs: 30_000,
    });
    const pending = c.send('orders.eu', 'x');
    await expectCode(c.start(), 'AUTH_FAILED', 'refused this client key');
    await expectCode(pending, 'AUTH_FAILED');
    await expectCode(c.send('orders.eu', 'later'), 'AUTH_FAILED');
    assert.ok(Date.now() - started < PROMPT_REFUSAL_MS, `took ${Date.now() - started} ms`);
    await c.close({ timeoutMs: 0 });
  });

  it('refuses a client with the wrong server key, and a plain client, without a timeout', async () => {
    const wrong = generateKeyPair();
    const started = Date.now();
    await expectCode(
      connect(broker.endpoint, {
        curve: { ...curveOf(full), serverKey: wrong.publicKey },
        requestTimeoutMs: 30_000,
      }),
      'AUTH_FAILED',
      'wrong server key',
    );
    await expectCode(connect(broker.endpoint, { requestTimeoutMs: 30_000 }), 'AUTH_FAILED');
    assert.ok(Date.now() - started < 2 * PROMPT_REFUSAL_MS, `took ${Date.now() - started} ms`);
  });

  it('lets a granted key send, consume, call, serve, publish and subscribe', async () => {
    const c = await client(full);
    await c.send('work', 'job-1');
    const consumer = c.consume('work');
    for await (const m of consumer) {
      assert.equal(m.body.toString(), 'job-1');
      await m.ack();
      break;
    }
    const w = c.worker('echo', async (job) => Buffer.concat([Buffer.from('echo:'), job.params]));
    await w.ready;
    assert.equal((await c.call('echo', 'hi')).toString(), 'echo:hi');
    await w.close();
    const sub = c.subscribe('config/**');
    const it = sub[Symbol.asyncIterator]();
    await c.publish('config/db', 'v1', { retain: true });
    const got = await it.next();
    assert.equal(got.value?.topic, 'config/db');
    await sub.close();
    assert.ok(
      (await c.stats()).queues.some((q) => q.name === 'work'),
      'admin stats',
    );
  });
});

describe('permissions', () => {
  it('FORBIDDEN for a verb the user lacks, naming verb and resource, for every kind', async () => {
    const c = await client(app);
    assert.ok(await c.send('orders.eu', 'ok'), 'granted: orders.*');
    await expectCode(c.send('orders.audit', 'x'), 'FORBIDDEN', 'queue:send', '"orders.audit"');
    await expectCode(c.send('payments', 'x'), 'FORBIDDEN', 'queue:send', '"payments"');
    const consumer = c.consume('orders.eu');
    await expectCode(
      consumer[Symbol.asyncIterator]().next(),
      'FORBIDDEN',
      'queue:consume',
      '"orders.eu"',
    );
    await expectCode(c.purge('orders.eu'), 'FORBIDDEN', 'queue:manage', '"orders.eu"');
    await expectCode(c.peek('orders.eu'), 'FORBIDDEN', 'queue:manage');
    await expectCode(
      c.call('transcode', 'x', { timeoutMs: 1_000 }),
      'FORBIDDEN',
      'service:call',
      '"transcode"',
    );
    await expectCode(c.jobs({ service: 'resize' }), 'FORBIDDEN', 'service:manage', '"resize"');
    await expectCode(c.publish('orders/x', 'x'), 'FORBIDDEN', 'topic:publish', '"orders/x"');
    await expectCode(c.publish('news/today', 'x', { retain: true }), 'FORBIDDEN', 'topic:retain');
    await expectCode(c.retained('secrets/**'), 'FORBIDDEN', 'topic:subscribe', '"secrets/**"');
    await expectCode(c.retained('news/**'), 'FORBIDDEN', 'topic:subscribe', '"news/**"');
    await expectCode(c.stats(), 'FORBIDDEN', 'admin', '"stats"');
    await expectCode(c.queues(), 'FORBIDDEN', 'admin');
    assert.ok((await c.publish('news/today', 'x')) >= 0, 'granted: news/*');
  });

  it('FORBIDDEN for a worker of a service the user may not serve', async () => {
    const c = await client(app);
    const w = c.worker('resize', async () => Buffer.alloc(0));
    await expectCode(w.ready, 'FORBIDDEN', 'service:serve', '"resize"');
    await w.close({ timeoutMs: 0 }).catch(() => {});
  });
});

/** A raw CURVE DEALER speaking FERRY01: to replay a proof on another connection. */
async function rawPeer(keys: CurveKeyPair) {
  const sock = new zmq.Dealer({
    curveServerKey: server.publicKey,
    curvePublicKey: keys.publicKey,
    curveSecretKey: keys.secretKey,
    receiveTimeout: 5_000,
    linger: 0,
  });
  sock.connect(broker.endpoint);
  let rid = 1;
  return {
    async request(command: 'CHALLENGE' | 'HELLO' | 'QUEUES', args: Json): Promise<Reply> {
      const id = Buffer.from(String(rid++));
      await sock.send(encodeRequest(command, id, args));
      return decodeReply(await sock.receive());
    },
    close: () => sock.close(),
  };
}

describe('HELLO proof', () => {
  it('refuses a proof replayed on another connection', async () => {
    const one = await rawPeer(full);
    const two = await rawPeer(full);
    try {
      const c1 = await one.request('CHALLENGE', {});
      const challenge = Buffer.from(String(c1.args['challenge']), 'hex');
      const auth = {
        key: full.publicKey,
        proof: helloProof({ keys: full, serverKey: server.publicKey, challenge }),
      };
      // The other connection, without a challenge of its own, then with one.
      const replayed = await two.request('HELLO', { auth });
      assert.equal(replayed.args['code'], 'AUTH_FAILED');
      await two.request('CHALLENGE', {});
      const again = await two.request('HELLO', { auth });
      assert.equal(again.args['code'], 'AUTH_FAILED', JSON.stringify(again.args));
      // The connection it was made for takes it, once.
      const ok = await one.request('HELLO', { auth });
      assert.equal(ok.kind, 'OK', JSON.stringify(ok.args));
      assert.equal((await one.request('QUEUES', {})).kind, 'OK');
      const twice = await one.request('HELLO', { auth });
      assert.equal(twice.args['code'], 'AUTH_FAILED', 'a challenge is good once');
      // A key the proof does not belong to: another user's key with this proof.
      await two.request('CHALLENGE', {});
      const forged = await two.request('HELLO', {
        auth: { key: app.publicKey, proof: auth.proof },
      });
      assert.equal(forged.args['code'], 'AUTH_FAILED');
      const noAuth = await two.request('HELLO', {});
      assert.equal(noAuth.args['code'], 'AUTH_FAILED', 'an auth file needs a proven key');
    } finally {
      one.close();
      two.close();
    }
  });
});

describe('SIGHUP', () => {
  it('reloads the auth file: a removed key is refused on its next request, others stay', async () => {
    const auth = authFile([FULL_USER, APP_USER]);
    const child = await spawnBroker([
      '--bind',
      'tcp://127.0.0.1:*',
      '--data',
      tmpDir(),
      '--curve-secret-key-file',
      keyFile(server.secretKey),
      '--auth-file',
      auth,
    ]);
    const options = { heartbeatMs: 200, requestTimeoutMs: 10_000 };
    const a = await connect(child.endpoint, { ...options, curve: curveOf(app) });
    const f = await connect(child.endpoint, { ...options, curve: curveOf(full) });
    try {
      await a.send('orders.eu', 'before');
      fs.writeFileSync(auth, '{ broken');
      child.child.kill('SIGHUP');
      await waitFor(
        () => child.stderr().includes('AUTH_FILE_INVALID'),
        'the broker logs the bad auth file',
      );
      await a.send('orders.eu', 'a bad file keeps the old one');
      fs.writeFileSync(auth, JSON.stringify({ users: [FULL_USER] }));
      child.child.kill('SIGHUP');
      await waitFor(
        async () => {
          try {
            await a.send('orders.eu', 'probe');
            return false;
          } catch (err) {
            return (err as FerryError).code === 'AUTH_FAILED';
          }
        },
        'the removed key is refused',
        { intervalMs: 50 },
      );
      await f.send('work', 'still allowed');
      await expectCode(connect(child.endpoint, { ...options, curve: curveOf(app) }), 'AUTH_FAILED');
    } finally {
      await a.close({ timeoutMs: 0 });
      await f.close({ timeoutMs: 500 });
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });
});
