/**
 * The promises of docs/semantics.md, each against a real broker on tcp://127.0.0.1:* with a
 * real SQLite file, through the SDK (and a raw DEALER where the SDK would hide the case).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import * as zmq from 'zeromq';
import { connect, FerryError, type FerryClient, type Message } from 'ferrymq';
import { decodeReply, encodeRequest, type Reply } from 'ferrymq/protocol';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function setup(
  flags: Record<string, string> = {},
): Promise<{ b: TestBroker; c: FerryClient }> {
  const b = await startBroker(flags);
  const c = await connect(b.endpoint, { heartbeatMs: 200 });
  cleanups.push(
    () => b.stop(),
    () => c.close({ timeoutMs: 0 }),
  );
  return { b, c };
}

/** Collects deliveries of a consumer in the background. */
function collect(
  c: FerryClient,
  queue: string,
  opts: { prefetch?: number; ackTimeoutMs?: number } = {},
) {
  const got: Message[] = [];
  const consumer = c.consume(queue, opts);
  const done = (async () => {
    for await (const m of consumer) got.push(m);
  })().catch(() => {});
  return { got, consumer, done };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FerryError, String(err));
    return err.code;
  }
  return 'no error';
}

/** A raw DEALER speaking FERRY01 by hand. */
async function rawPeer(endpoint: string) {
  const sock = new zmq.Dealer({ linger: 0 });
  sock.connect(endpoint);
  cleanups.push(async () => sock.close());
  let n = 0;
  const inbox: Reply[] = [];
  const reader = (async () => {
    for await (const frames of sock) inbox.push(decodeReply(frames));
  })().catch(() => {});
  void reader;
  const rid = (): Buffer => Buffer.from(`r${++n}`);
  return {
    sock,
    inbox,
    async raw(frames: Buffer[]): Promise<void> {
      await sock.send(frames);
    },
    async call(
      cmd: Parameters<typeof encodeRequest>[0],
      args: Record<string, unknown>,
      payload: Buffer[] = [],
    ) {
      const id = rid();
      await sock.send(encodeRequest(cmd, id, args, payload));
      let r: Reply | undefined;
      await waitFor(
        () => (r = inbox.find((x) => x.requestId.equals(id))) !== undefined,
        `reply to ${cmd}`,
      );
      return r!;
    },
  };
}

describe('semantics (real broker, real sockets)', () => {
  it('acknowledges a send only after the message is committed to the SQLite file', async () => {
    const { b, c } = await setup();
    const id = await c.send('durable', 'stored?');
    // A second, independent connection to the file sees the row at the moment of the ack.
    const db = new Database(path.join(b.dataDir, 'ferry.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT body FROM messages WHERE id = ?').get(Number(id)) as
        { body: Buffer } | undefined;
      assert.equal(row?.body.toString(), 'stored?');
    } finally {
      db.close();
    }
  });

  it('batches a burst of sends into few requests and few commits (group commit)', async () => {
    const { b, c } = await setup();
    const before = b.server.broker.stats().storage.commits;
    const ids = await Promise.all(Array.from({ length: 1000 }, (_, i) => c.send('burst', `m${i}`)));
    assert.equal(new Set(ids).size, 1000);
    const commits = b.server.broker.stats().storage.commits - before;
    assert.ok(commits <= 5, `1000 sends in one tick took ${commits} commits`);
  });

  it('round-trips multipart bodies of any bytes and headers exactly', async () => {
    const { c } = await setup();
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await c.send('bytes', [every, Buffer.alloc(0), Buffer.from('tail')], {
      headers: { 'x-trace': 'abc', é: 'ü' },
    });
    const { got } = collect(c, 'bytes');
    await waitFor(() => got.length === 1, 'delivery');
    const m = got[0]!;
    assert.equal(m.frames.length, 3);
    assert.deepEqual(m.frames[0], every);
    assert.equal(m.frames[1]!.length, 0);
    assert.equal(m.frames[2]!.toString(), 'tail');
    assert.deepEqual(m.headers, { 'x-trace': 'abc', é: 'ü' });
    await m.ack();
  });

  it('deletes a message only when acked; redelivers after the ack timeout otherwise', async () => {
    const { b, c } = await setup();
    await c.send('at-least-once', 'x');
    const { got } = collect(c, 'at-least-once', { ackTimeoutMs: 150 });
    await waitFor(() => got.length >= 2, 'redelivery after the ack timeout');
    assert.equal(got[1]!.id, got[0]!.id);
    assert.equal(got[1]!.attempts, 2);
    // Acks name the message: the redelivered copy is acked once; acking it again finds the
    // lease gone, which settling reports as an outcome (counted), never as a throw.
    assert.equal(await got[1]!.ack(), 'acked');
    const lostBefore = c.counters.leasesLost;
    assert.equal(await got[0]!.ack(), 'lease-lost');
    assert.equal(c.counters.leasesLost, lostBefore + 1);
    await waitFor(
      async () => (await b.server.broker.queueStats('at-least-once')).depth === 0,
      'deleted after ack',
    );
  });

  it('redelivers at once the messages of a consumer that vanished without a word', async () => {
    // A consumer on a raw socket: HELLO with a 100 ms heartbeat, CONSUME, take the delivery, disappear.
    const { b } = await setup({ 'ack-timeout': '60000' });
    const raw = await rawPeer(b.endpoint);
    const c2 = await connect(b.endpoint);
    cleanups.push(() => c2.close({ timeoutMs: 0 }));
    await c2.send('vanish', 'job');
    assert.equal((await raw.call('HELLO', { heartbeatMs: 100 })).kind, 'OK');
    assert.equal((await raw.call('CONSUME', { queue: 'vanish', prefetch: 1 })).kind, 'OK');
    await waitFor(() => raw.inbox.some((r) => r.kind === 'DELIVER'), 'raw delivery');
    raw.sock.close(); // no BYE, no more pings
    const { got } = collect(c2, 'vanish');
    // The ack timeout is a minute; only the missed heartbeats can bring it back this soon.
    await waitFor(() => got.length === 1, 'redelivery after missed heartbeats', {
      timeoutMs: 5_000,
    });
    assert.equal(got[0]!.attempts, 2);
    await got[0]!.ack();
  });

  it('retries a nacked message after backoff, then dead-letters it after max attempts; redrive works', async () => {
    const { b, c } = await setup({ 'retry-base': '100', 'max-attempts': '3' });
    await c.send('retry', 'poison');
    const { got } = collect(c, 'retry');
    const times: number[] = [];
    for (let n = 1; n <= 3; n++) {
      await waitFor(() => got.length === n, `delivery ${n}`);
      times.push(Date.now());
      assert.equal(got[n - 1]!.attempts, n);
      await got[n - 1]!.nack();
    }
    // Backoff with jitter waits at least half the nominal delay: 50 ms, then 100 ms.
    assert.ok(times[1]! - times[0]! >= 45, `first retry after ${times[1]! - times[0]!} ms`);
    assert.ok(times[2]! - times[1]! >= 95, `second retry after ${times[2]! - times[1]!} ms`);
    await waitFor(
      async () => (await b.server.broker.queueStats('retry')).dead === 1,
      'dead-lettered',
    );
    const dead = await c.deadLetters('retry');
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.deadReason, 'max-attempts');
    assert.equal(dead[0]!.body.toString(), 'poison');
    assert.equal(await c.redrive('retry'), 1);
    await waitFor(() => got.length === 4, 'redriven delivery');
    assert.equal(got[3]!.attempts, 1);
    await got[3]!.ack();
  });

  it('delivers higher priority first', async () => {
    const { c } = await setup();
    await c.sendBatch('prio', [
      { body: 'p0-a' },
      { body: 'p9', priority: 9 },
      { body: 'p0-b' },
      { body: 'p5', priority: 5 },
    ]);
    const { got } = collect(c, 'prio', { prefetch: 10 });
    await waitFor(() => got.length === 4, 'four deliveries');
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      ['p9', 'p5', 'p0-a', 'p0-b'],
    );
  });

  it('holds a delayed message until its time', async () => {
    const { c } = await setup();
    const sentAt = Date.now();
    await c.send('delay', 'later', { delayMs: 300 });
    await c.send('delay', 'now');
    const { got } = collect(c, 'delay', { prefetch: 10 });
    await waitFor(() => got.length === 2, 'both deliveries');
    assert.equal(got[0]!.body.toString(), 'now');
    assert.ok(Date.now() - sentAt >= 300, 'the delayed one came no earlier than asked');
  });

  it('discards a message whose TTL passed before delivery', async () => {
    const { b, c } = await setup();
    await c.send('ttl', 'short', { ttlMs: 50 });
    await c.send('ttl', 'long', { ttlMs: 60_000 });
    await waitFor(
      async () => (await b.server.broker.queueStats('ttl')).expired === 1,
      'expiry sweep',
    );
    const { got } = collect(c, 'ttl', { prefetch: 10 });
    await waitFor(() => got.length === 1, 'one delivery');
    assert.equal(got[0]!.body.toString(), 'long');
  });

  it('stores a repeated dedup key once within the window and again after it', async () => {
    const { b, c } = await setup({ 'dedup-window': '300' });
    const first = await c.send('dedup', 'a', { dedupKey: 'order-1' });
    const t = Date.now();
    assert.equal(await c.send('dedup', 'a', { dedupKey: 'order-1' }), first);
    assert.equal((await b.server.broker.queueStats('dedup')).depth, 1);
    await waitFor(() => Date.now() - t > 320, 'the dedup window to pass');
    assert.notEqual(await c.send('dedup', 'a', { dedupKey: 'order-1' }), first);
    assert.equal((await b.server.broker.queueStats('dedup')).depth, 2);
  });

  it('refuses sends past the queue limits with QUEUE_FULL and keeps serving', async () => {
    const { b, c } = await setup({ 'max-depth': '2' });
    await c.send('limited', '1');
    await c.send('limited', '2');
    assert.equal(await codeOf(c.send('limited', '3')), 'QUEUE_FULL');
    assert.equal((await b.server.broker.queueStats('limited')).depth, 2);
    await c.send('other', 'fine');
  });

  it('refuses new sends with STORAGE_FULL when the disk is low, keeping and serving what is stored', async () => {
    const first = await startBroker();
    const c1 = await connect(first.endpoint);
    await c1.send('disk', 'kept');
    await c1.close();
    await first.stop();
    // Same data folder, a free-disk floor no disk meets: the broker acts as on a full disk.
    const { c } = await setup({
      data: first.dataDir,
      'min-free-disk': String(Number.MAX_SAFE_INTEGER),
    });
    assert.equal(await codeOf(c.send('disk', 'refused')), 'STORAGE_FULL');
    const { got } = collect(c, 'disk');
    await waitFor(() => got.length === 1, 'stored message still delivered');
    assert.equal(got[0]!.body.toString(), 'kept');
    await got[0]!.ack();
  });

  it('answers malformed job commands with a coded error and keeps serving', async () => {
    const { b } = await setup();
    const raw = await rawPeer(b.endpoint);
    const B = (x: string): Buffer => Buffer.from(x);
    const unknownId = '0'.repeat(32);
    assert.equal((await raw.call('HELLO', {})).kind, 'OK');
    const cases: [Parameters<typeof raw.call>[0], Record<string, unknown>, Buffer[], string][] = [
      ['SUBMIT', { service: 's' }, [], 'BAD_FRAME'],
      ['SUBMIT', { service: 7 }, [B('p')], 'BAD_ARGUMENTS'],
      ['SUBMIT', { service: 'bad name' }, [B('p')], 'INVALID_SERVICE_NAME'],
      ['SUBMIT', { service: 's', priority: 'high' }, [B('p')], 'BAD_ARGUMENTS'],
      ['SUBMIT', { service: 's', headers: 'x' }, [B('p')], 'BAD_ARGUMENTS'],
      ['SUBMIT', { service: 's', ttlMs: -5 }, [B('p')], 'BAD_ARGUMENTS'],
      ['SUBMIT', { service: 's', bogus: 1 }, [B('p')], 'BAD_ARGUMENTS'],
      ['CALL', { service: 's', timeoutMs: -1 }, [B('p')], 'BAD_ARGUMENTS'],
      ['MULTICAST', { services: 's' }, [B('p')], 'BAD_ARGUMENTS'],
      ['MULTICAST', { services: ['a', 'a'] }, [B('p')], 'BAD_ARGUMENTS'],
      ['JOB', {}, [], 'BAD_ARGUMENTS'],
      ['JOB', { id: 'zz' }, [], 'BAD_ARGUMENTS'],
      ['JOB', { id: unknownId }, [], 'JOB_NOT_FOUND'],
      ['JOBS', { status: 'sleepy' }, [], 'BAD_ARGUMENTS'],
      ['JOBS', { limit: 0 }, [], 'BAD_ARGUMENTS'],
      ['WATCH', { id: 'x' }, [], 'BAD_ARGUMENTS'],
      ['JOB_CANCEL', { id: unknownId }, [], 'JOB_NOT_FOUND'],
      ['WORKER', { services: 's' }, [], 'BAD_ARGUMENTS'],
      ['WORKER', { services: [] }, [], 'BAD_ARGUMENTS'],
      ['WORKER', { services: ['ok'], concurrency: 0 }, [], 'BAD_ARGUMENTS'],
      ['WORKER', { services: ['bad name'] }, [], 'INVALID_SERVICE_NAME'],
      ['WORKER_STOP', { worker: 'nope' }, [], 'WORKER_NOT_FOUND'],
      ['COMPLETE', { id: unknownId }, [B('r')], 'LEASE_LOST'],
      ['COMPLETE', { id: unknownId, quiet: true }, [B('r')], 'LEASE_LOST'],
      ['FAIL', { id: unknownId, code: 'X', quiet: true }, [], 'LEASE_LOST'],
      ['COMPLETE', { id: unknownId, quiet: 'yes' }, [B('r')], 'BAD_ARGUMENTS'],
      ['FAIL', { id: unknownId, code: 'X' }, [], 'LEASE_LOST'],
      ['PROGRESS', { id: unknownId, progress: 1 }, [], 'LEASE_LOST'],
      ['JOB_EXTEND', { id: unknownId }, [], 'BAD_ARGUMENTS'],
    ];
    for (const [cmd, args, payload, code] of cases) {
      const r = await raw.call(cmd, args, payload);
      assert.equal(r.kind, 'ERROR', `${cmd} ${JSON.stringify(args)}`);
      assert.equal(r.args['code'], code, `${cmd} ${JSON.stringify(args)}`);
    }
    assert.equal((await raw.call('WORKER', { worker: 'w1', services: ['ok'] })).kind, 'OK');
    assert.equal(
      (await raw.call('WORKER', { worker: 'w1', services: ['ok'] })).args['code'],
      'WORKER_EXISTS',
    );
    assert.equal((await raw.call('SERVICES', {})).kind, 'OK', 'still serving');
  });

  it('a quiet COMPLETE is not answered when it succeeds (docs/protocol.md, Workers)', async () => {
    const { b, c } = await setup();
    const raw = await rawPeer(b.endpoint);
    assert.equal((await raw.call('HELLO', {})).kind, 'OK');
    assert.equal((await raw.call('WORKER', { worker: 'w', services: ['quiet'] })).kind, 'OK');
    const call = c.call('quiet', 'x', { timeoutMs: 10_000 });
    await waitFor(() => raw.inbox.some((r) => r.kind === 'ASSIGN'), 'the assignment');
    const id = String(raw.inbox.find((r) => r.kind === 'ASSIGN')!.args['id']);
    await raw.raw(
      encodeRequest('COMPLETE', Buffer.from('q1'), { id, quiet: true }, [Buffer.from('y')]),
    );
    const result = await call.catch((err: unknown) => {
      throw new Error(
        `${String(err)}; inbox: ${JSON.stringify(raw.inbox.map((r) => [r.kind, r.args]))}`,
      );
    });
    assert.equal(result.toString(), 'y', 'the job was completed');
    // A PING after it on the same connection: its PONG comes with nothing for q1 before it.
    assert.equal((await raw.call('PING', {})).kind, 'PONG');
    assert.deepEqual(
      raw.inbox.filter((r) => r.requestId.toString() === 'q1'),
      [],
      'no reply to the quiet COMPLETE',
    );
  });

  it('answers malformed input of every kind with a coded error and keeps serving others', async () => {
    const { b, c } = await setup({ 'max-message-bytes': '1000', 'max-batch': '10' });
    const raw = await rawPeer(b.endpoint);
    const B = (s: string): Buffer => Buffer.from(s);
    const cases: [Buffer[], string][] = [
      [[B('hello')], 'BAD_FRAME'],
      [[B('FERRY01'), B('PING'), B('x')], 'BAD_FRAME'],
      [[B('FERRY02'), B('PING'), B('x'), B('{}')], 'UNSUPPORTED_VERSION'],
      [[B('FERRY01'), B('EXPLODE'), B('x'), B('{}')], 'UNKNOWN_COMMAND'],
      [[B('FERRY01'), B('PING'), B('x'), B('{}')], 'NO_SESSION'],
    ];
    for (const [frames, code] of cases) {
      await raw.raw(frames);
      await waitFor(() => raw.inbox.length > 0, `answer to ${frames.map(String).join('|')}`);
      const r = raw.inbox.shift()!;
      assert.equal(r.kind, 'ERROR');
      assert.equal(r.args['code'], code, `frames ${frames.map(String).join('|')}`);
    }
    assert.equal((await raw.call('HELLO', { heartbeatMs: 5 })).args['code'], 'BAD_ARGUMENTS');
    assert.equal((await raw.call('HELLO', {})).kind, 'OK');
    const sendCases: [Record<string, unknown>, Buffer[], string][] = [
      [{ queue: 'q', messages: 2 }, [B('only one')], 'BAD_FRAME'],
      [{ queue: 'q', messages: [{ frames: 3 }] }, [B('a')], 'BAD_FRAME'],
      [{ queue: 'q', messages: [{ wat: 1 }] }, [B('a')], 'BAD_ARGUMENTS'],
      [{ queue: 'q', messages: 'many' }, [B('a')], 'BAD_ARGUMENTS'],
      [{ queue: 42, messages: 1 }, [B('a')], 'BAD_ARGUMENTS'],
      [{ queue: 'no spaces', messages: 1 }, [B('a')], 'INVALID_QUEUE_NAME'],
      [{ queue: 'q', messages: 1 }, [Buffer.alloc(1001)], 'MESSAGE_TOO_LARGE'],
      [{ queue: 'q', messages: 11 }, Array.from({ length: 11 }, () => B('a')), 'BATCH_TOO_LARGE'],
      [{ queue: 'q', messages: [{ priority: 'high' }] }, [B('a')], 'BAD_ARGUMENTS'],
      [{ queue: 'q', messages: 1, requestKey: 7 }, [B('a')], 'BAD_ARGUMENTS'],
    ];
    for (const [args, payload, code] of sendCases) {
      const r = await raw.call('SEND', args, payload);
      assert.equal(r.kind, 'ERROR');
      assert.equal(r.args['code'], code, JSON.stringify(args));
    }
    // Refused sends leave no queue behind; the argument checks below need one that exists.
    assert.equal(b.server.broker.listQueues().includes('q'), false);
    await c.send('made', 'x');
    const other: [Parameters<typeof encodeRequest>[0], Record<string, unknown>, string][] = [
      ['ACK', { ids: 'all' }, 'BAD_ARGUMENTS'],
      ['ACK', { ids: [1, 2] }, 'BAD_ARGUMENTS'],
      ['NACK', { ids: ['1'], delayMs: 'soon' }, 'BAD_ARGUMENTS'],
      ['EXTEND', { ids: ['1'] }, 'BAD_ARGUMENTS'],
      ['CONSUME', { queue: 'q', prefetch: 0 }, 'BAD_ARGUMENTS'],
      ['CONSUME', { queue: 'q', prefetch: 2.5 }, 'BAD_ARGUMENTS'],
      ['CONSUME', {}, 'BAD_ARGUMENTS'],
      ['CANCEL', { consumer: 'nobody' }, 'CONSUMER_NOT_FOUND'],
      ['PEEK', { queue: 'never-made' }, 'QUEUE_NOT_FOUND'],
      ['PEEK', { queue: 'made', state: 'weird' }, 'BAD_ARGUMENTS'],
      ['PEEK', { queue: 'made', limit: 100000 }, 'BAD_ARGUMENTS'],
      ['STATS', { queue: 'never-made' }, 'QUEUE_NOT_FOUND'],
      ['DLQ_REDRIVE', { queue: 'never-made' }, 'QUEUE_NOT_FOUND'],
      ['PURGE', { queue: 'made', dead: 'yes' }, 'BAD_ARGUMENTS'],
    ];
    for (const [cmd, args, code] of other) {
      const r = await raw.call(cmd, args);
      assert.equal(r.args['code'], code, `${cmd} ${JSON.stringify(args)}`);
    }
    const ack = await raw.call('ACK', { ids: ['424242'] });
    assert.deepEqual(ack.args['failed'], [{ id: '424242', code: 'LEASE_LOST' }]);
    // Nothing was stored by the bad sends or consumes (not even their queue); all still served.
    assert.equal(b.server.broker.listQueues().includes('q'), false);
    assert.equal((await b.server.broker.queueStats('made')).depth, 1);
    assert.equal((await raw.call('SEND', { queue: 'q', messages: 1 }, [B('good')])).kind, 'OK');
    assert.ok(await c.send('still-serving', 'yes'));
  });

  it('resumes consumers and re-sends unconfirmed sends once after a broker restart, storing each once', async () => {
    const b1 = await startBroker({ heartbeat: '200' });
    const c = await connect(b1.endpoint, { heartbeatMs: 100 });
    cleanups.push(() => c.close({ timeoutMs: 0 }));
    const events: string[] = [];
    void (async () => {
      for await (const e of c.status()) events.push(e.type);
    })();
    const { got } = collect(c, 'restart', { prefetch: 1000 });
    const sends: Promise<string>[] = [];
    for (let i = 0; i < 300; i++) sends.push(c.send('restart', `before-${i}`));
    await Promise.all(sends);
    await b1.stop();
    // Sends while the broker is down wait in the SDK and go out after the restart.
    const pending = Array.from({ length: 200 }, (_, i) => c.send('restart', `during-${i}`));
    const b2 = await startBroker({ data: b1.dataDir, bind: b1.endpoint, heartbeat: '200' });
    cleanups.push(() => b2.stop());
    const ids = await Promise.all(pending);
    assert.equal(new Set(ids).size, 200);
    await waitFor(
      () => new Set(got.map((m) => m.body.toString())).size === 500,
      'all 500 bodies consumed',
      {
        timeoutMs: 15_000,
      },
    );
    // Every body was stored exactly once: one message id per body, 500 messages in the queue.
    const idsOf = new Map<string, Set<string>>();
    for (const m of got) {
      const body = m.body.toString();
      if (!idsOf.has(body)) idsOf.set(body, new Set());
      idsOf.get(body)!.add(m.id);
    }
    for (const [body, set] of idsOf)
      assert.equal(set.size, 1, `${body} was stored ${set.size} times`);
    assert.equal((await b2.server.broker.queueStats('restart')).depth, 500);
    assert.ok(events.includes('reconnected'), `status events: ${events.join(', ')}`);
  });
});

describe('a store that fills up (real SQLITE_FULL)', () => {
  it('refuses sends with STORAGE_FULL, loses nothing acknowledged, keeps acking, and recovers', async () => {
    const { b, c } = await setup({ 'max-store-bytes': String(1024 * 1024) });
    const body = Buffer.alloc(16 * 1024, 7);
    const stored: string[] = [];
    let refusal: unknown;
    for (let i = 0; i < 200 && refusal === undefined; i++) {
      try {
        stored.push(await c.send('filling', [Buffer.from(`m${i}`), body]));
      } catch (err) {
        refusal = err;
      }
    }
    assert.ok(refusal instanceof FerryError, `the store never filled (${stored.length} stored)`);
    assert.equal(refusal.code, 'STORAGE_FULL');
    assert.ok(stored.length > 10, `only ${stored.length} stored before full`);
    // The broker still serves: everything acknowledged is delivered, and acks (deletes) work.
    const { got } = collect(c, 'filling', { prefetch: 1000 });
    await waitFor(() => got.length === stored.length, 'every acknowledged message delivered');
    assert.deepEqual(got.map((m) => m.id).sort(), [...stored].sort());
    for (const m of got) await m.ack();
    await waitFor(
      async () => (await b.server.broker.queueStats('filling')).depth === 0,
      'all acked',
    );
    // Space freed by the acks is reused: sends work again.
    assert.ok(await c.send('filling', [Buffer.from('after'), body]));
  });
});

describe('SDK handshake', () => {
  it('says HELLO again when a broker died holding the first one unanswered', async () => {
    // A "broker" that takes the HELLO and dies without answering.
    const fake = new zmq.Router({ linger: 0 });
    await fake.bind('tcp://127.0.0.1:*');
    const endpoint = fake.lastEndpoint!;
    const connecting = connect(endpoint, { heartbeatMs: 100, requestTimeoutMs: 15_000 });
    const [, , command] = (await fake.receive()).map(String);
    assert.equal(command, 'HELLO');
    fake.close();
    const b = await startBroker({ bind: endpoint });
    cleanups.push(() => b.stop());
    const c = await connecting;
    cleanups.push(() => c.close({ timeoutMs: 0 }));
    assert.ok(await c.send('after-lost-hello', 'x'));
  });
});
