/**
 * Majordomo (7/MDP, 8/MMI, 18/MDP) and Titanic (9/TSP) against a real broker over real
 * sockets, with raw peers written from the RFCs (test/helpers/mdp-peers.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { REPO_ROOT, startBroker, tmpDir, waitFor, type TestBroker } from '../helpers/broker.js';
import {
  E,
  RawPeer,
  RawWorker,
  clientRequestV1,
  clientRequestV2,
  texts,
  type Frame,
} from '../helpers/mdp-peers.js';

const MDP_FLAGS = { mdp: 'tcp://127.0.0.1:*' };
const PYTHON = '/usr/bin/python3';
const PY_ROUNDTRIP = path.join(REPO_ROOT, 'test', 'fixtures', 'mdp_roundtrip.py');
const PY_ROUND_TRIPS = 2_000;
const PY_TIMEOUT_MS = 60_000;
const ROUND_TRIPS = 10_000;
const WINDOW = 100;

function mdpEndpointOf(broker: TestBroker): string {
  const ep = broker.server.mdpEndpoint;
  assert.ok(ep, 'the broker has an MDP endpoint');
  return ep;
}

/** One MDP/0.1 request from a DEALER client; resolves with the reply body. */
async function call1(
  client: RawPeer,
  service: string,
  body: Frame[],
  timeoutMs = 5_000,
): Promise<string[]> {
  await client.send(clientRequestV1(service, ...body));
  const reply = texts(await client.receive(`a reply from ${service}`, timeoutMs));
  assert.deepEqual(reply.slice(0, 3), ['', 'MDPC01', service]);
  return reply.slice(3);
}

describe('MDP/0.1 + MMI (7/MDP, 8/MMI)', { timeout: 120_000 }, () => {
  let broker: TestBroker;
  let endpoint: string;
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    broker = await startBroker(MDP_FLAGS);
    endpoint = mdpEndpointOf(broker);
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await broker.stop();
  });

  async function worker(
    service: string,
    options?: Parameters<typeof RawWorker.start>[2],
  ): Promise<RawWorker> {
    const w = await RawWorker.start(endpoint, service, options);
    cleanup.push(() => w.close());
    await waitFor(() => broker.server.jobs.hasWorkers(service), `a worker for ${service}`);
    return w;
  }

  async function client(): Promise<RawPeer> {
    const c = await RawPeer.connect(endpoint);
    cleanup.push(() => c.close());
    return c;
  }

  test(
    `a raw client and worker exchange ${ROUND_TRIPS} requests`,
    { timeout: 60_000 },
    async () => {
      const w = await worker('echo');
      const c = await client();
      const started = Date.now();
      const outstanding = new Set<string>();
      let sent = 0;
      const sendNext = async (): Promise<void> => {
        const body = `req-${sent++}`;
        outstanding.add(body);
        await c.send(clientRequestV1('echo', body, 'second frame'));
      };
      while (sent < WINDOW) await sendNext();
      for (let got = 0; got < ROUND_TRIPS; got++) {
        const reply = texts(await c.receive(`reply ${got + 1} of ${ROUND_TRIPS}`));
        assert.deepEqual(reply.slice(0, 3), ['', 'MDPC01', 'echo']);
        assert.equal(reply[4], 'second frame');
        assert.ok(outstanding.delete(reply[3]!), `unexpected reply ${reply[3]}`);
        if (sent < ROUND_TRIPS) await sendNext();
      }
      assert.equal(outstanding.size, 0);
      assert.equal(w.served, ROUND_TRIPS);
      const ms = Date.now() - started;
      console.log(`# ${ROUND_TRIPS} MDP/0.1 round trips in ${ms} ms`);
    },
  );

  test('a REQ client (the socket 7/MDP recommends) is served', async () => {
    await worker('upper', {
      handler: (body) => body.map((f) => Buffer.from(f.toString().toUpperCase())),
    });
    const req = new zmq.Request({ linger: 0, receiveTimeout: 5_000 });
    cleanup.push(() => req.close());
    req.connect(endpoint);
    for (const word of ['one', 'two', 'three']) {
      await req.send(['MDPC01', 'upper', word]);
      const reply = texts(await req.receive());
      assert.deepEqual(reply, ['MDPC01', 'upper', word.toUpperCase()]);
    }
  });

  test('MMI: mmi.service answers 200 / 404, other mmi.* 501', async () => {
    await worker('mmi-probe');
    const c = await client();
    assert.deepEqual(await call1(c, 'mmi.service', ['mmi-probe']), ['200']);
    assert.deepEqual(await call1(c, 'mmi.service', ['no-such-service']), ['404']);
    assert.deepEqual(await call1(c, 'mmi.service', ['titanic.request']), ['200']);
    assert.deepEqual(await call1(c, 'mmi.foo', ['x']), ['501']);
  });

  test('a worker REPLY without the empty delimiter is served correctly', async () => {
    const w = await worker('php-style', { omitDelimiter: true });
    const c = await client();
    assert.deepEqual(await call1(c, 'php-style', ['a', 'b', 'c']), ['a', 'b', 'c']);
    assert.deepEqual(await call1(c, 'php-style', ['single']), ['single']);
    assert.equal(w.served, 2);
  });

  test('an MDP worker serves a job-server call, and a job-server worker serves an MDP client', async () => {
    // The path of the SDK's `call` and `worker`: the Ferry dialect maps them onto these.
    await worker('mdp-served', {
      handler: (body) => [Buffer.from(`mdp says ${body[0]!.toString()}`), body[1] ?? E],
    });
    const job = await broker.server.jobs.call(
      { service: 'mdp-served', params: [Buffer.from('hi'), Buffer.from('frame 2')] },
      { timeoutMs: 5_000 },
    );
    assert.equal(job.status, 'done');
    assert.deepEqual(texts(job.result ?? []), ['mdp says hi', 'frame 2']);

    const handle = broker.server.jobs.registerWorker(
      {
        assign: (a) => {
          const reply = a.params.map((f) => Buffer.from(f.toString().split('').reverse().join('')));
          void handle.complete(a.id, reply);
        },
        cancel: () => {},
      },
      { services: ['core-served'], name: 'in-process', protocol: 'test' },
    );
    cleanup.push(() => handle.close());
    const c = await client();
    assert.deepEqual(await call1(c, 'core-served', ['abc', 'xyz']), ['cba', 'zyx']);
    assert.deepEqual(await call1(c, 'mmi.service', ['core-served']), ['200']);
  });

  test('a request whose job fails gets no reply; the next one is served', async () => {
    const handle = broker.server.jobs.registerWorker(
      {
        assign: (a) => {
          if (a.params[0]!.toString() === 'fail') {
            void handle.fail(a.id, { code: 'NOPE', message: 'refused' }, { retry: false });
          } else {
            void handle.complete(a.id, [Buffer.from('fine')]);
          }
        },
        cancel: () => {},
      },
      { services: ['sometimes-fails'] },
    );
    cleanup.push(() => handle.close());
    const mdp = broker.server.mdp!;
    const unanswered = mdp.counters.unanswered;
    const c = await client();
    await c.send(clientRequestV1('sometimes-fails', 'fail'));
    await waitFor(() => mdp.counters.unanswered > unanswered, 'the failure to be noted');
    // The first message the client gets is the answer to its second request.
    assert.deepEqual(await call1(c, 'sometimes-fails', ['ok']), ['fine']);
  });

  test(
    'a worker silent for 2.5 s × 3 is dropped and its request is served by another',
    { timeout: 30_000 },
    async () => {
      const mdp = broker.server.mdp!;
      const expired = mdp.counters.expired;
      const silent = await client();
      await silent.send([E, 'MDPW01', 0x01, 'fragile']);
      await waitFor(() => broker.server.jobs.hasWorkers('fragile'), 'the silent worker');
      const c = await client();
      const started = Date.now();
      await c.send(clientRequestV1('fragile', 'survive'));
      const req = texts(await silent.receive('the REQUEST to the silent worker'));
      assert.equal(req[2], '\x02');
      // A live worker joins; the request stays with the silent one until it is declared dead.
      const good = await worker('fragile');
      const reply = texts(await c.receive('the reply from the live worker', 20_000));
      const waited = Date.now() - started;
      assert.deepEqual(reply, ['', 'MDPC01', 'fragile', 'survive']);
      assert.equal(mdp.counters.expired, expired + 1);
      assert.ok(waited >= 7_000, `the silent worker was dropped after ${waited} ms, before 7.5 s`);
      assert.ok(waited < 12_000, `the silent worker was dropped only after ${waited} ms`);
      assert.ok(good.heartbeatsReceived > 0, 'the broker heartbeats its workers');
      // The silent worker got heartbeats too, then nothing more once it was dead.
      let m: Buffer[] | undefined;
      while ((m = await silent.tryReceive(0))) assert.equal(m[2]![0], 0x04);
    },
  );

  test('protocol violations get DISCONNECT and the broker keeps serving', async () => {
    const violators: [string, Frame[][]][] = [
      ['HEARTBEAT before READY', [[E, 'MDPW01', 0x04]]],
      [
        'READY twice',
        [
          [E, 'MDPW01', 0x01, 'twice'],
          [E, 'MDPW01', 0x01, 'twice'],
        ],
      ],
      ['READY for an mmi.* service', [[E, 'MDPW01', 0x01, 'mmi.service']]],
      ['unknown command byte', [[E, 'MDPW01', 0x09]]],
      ['READY without a service', [[E, 'MDPW01', 0x01]]],
      ['REPLY before READY', [[E, 'MDPW01', 0x03, 'addr', E, 'x']]],
    ];
    const before = broker.server.mdp!.counters.violations;
    for (const [what, msgs] of violators) {
      const peer = await client();
      for (const m of msgs) await peer.send(m);
      let got = texts(await peer.receive(`DISCONNECT for ${what}`));
      while (got[2] === '\x04') got = texts(await peer.receive(`DISCONNECT for ${what}`));
      assert.deepEqual(got, ['', 'MDPW01', '\x05'], what);
    }
    assert.equal(broker.server.mdp!.counters.violations - before, violators.length);
    // Garbage from a client is dropped; the broker is still there.
    const c = await client();
    await c.send(['not mdp at all']);
    await c.send([E, 'MDPC01', 'echo-after']);
    await worker('echo-after');
    assert.deepEqual(await call1(c, 'echo-after', ['still serving']), ['still serving']);
  });
});

describe('MDP/0.2 (18/MDP)', { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let endpoint: string;
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    broker = await startBroker(MDP_FLAGS);
    endpoint = mdpEndpointOf(broker);
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await broker.stop();
  });

  test('PARTIALs are relayed in order, then FINAL, and nothing after FINAL', async () => {
    const PARTIALS = 50;
    const w = await RawWorker.start(endpoint, 'stream', {
      version: 2,
      partials: (body) =>
        Array.from({ length: PARTIALS }, (_, i) => [Buffer.from(`${body[0]!.toString()}:${i}`)]),
      handler: (body) => [Buffer.from(`${body[0]!.toString()}:done`)],
    });
    cleanup.push(() => w.close());
    await waitFor(() => broker.server.jobs.hasWorkers('stream'), 'the 0.2 worker');
    const c = await RawPeer.connect(endpoint);
    cleanup.push(() => c.close());
    for (const round of ['first', 'second']) {
      await c.send(clientRequestV2('stream', round));
      for (let i = 0; i < PARTIALS; i++) {
        const m = texts(await c.receive(`PARTIAL ${i} of ${round}`));
        assert.deepEqual(m, ['MDPC02', '\x02', 'stream', `${round}:${i}`]);
      }
      // The first message after FINAL is the second request's first PARTIAL: nothing between.
      assert.deepEqual(texts(await c.receive(`FINAL of ${round}`)), [
        'MDPC02',
        '\x03',
        'stream',
        `${round}:done`,
      ]);
    }
    // A 0.1 client of the same 0.2 worker gets the FINAL body as its REPLY.
    await c.send(clientRequestV1('stream', 'v1'));
    assert.deepEqual(texts(await c.receive('a 0.1 REPLY')), ['', 'MDPC01', 'stream', 'v1:done']);
  });

  test('MDP/0.2 violations get an MDPW02 DISCONNECT', async () => {
    const peer = await RawPeer.connect(endpoint);
    cleanup.push(() => peer.close());
    await peer.send(['MDPW02', 0x05]);
    assert.deepEqual(texts(await peer.receive('DISCONNECT')), ['MDPW02', '\x06']);
  });
});

/** One Titanic call over MDP/0.1: the status and the rest of the reply. */
async function titanic(client: RawPeer, service: string, ...body: Frame[]): Promise<string[]> {
  return call1(client, service, body);
}

describe('Titanic (9/TSP)', { timeout: 60_000 }, () => {
  test('request → 300 while pending → 200 with the body; close; 400 after', async () => {
    const broker = await startBroker(MDP_FLAGS);
    const endpoint = mdpEndpointOf(broker);
    const c = await RawPeer.connect(endpoint);
    let w: RawWorker | undefined;
    try {
      const [status, id] = await titanic(c, 'titanic.request', 'titanic-echo', 'hello', 'there');
      assert.equal(status, '200');
      assert.match(id!, /^[0-9a-f]{32}$/);
      assert.deepEqual(await titanic(c, 'titanic.reply', id!), ['300']);
      w = await RawWorker.start(endpoint, 'titanic-echo', {
        handler: (body) => body.map((f) => Buffer.from(f.toString().toUpperCase())),
      });
      let reply: string[] = [];
      await waitFor(async () => {
        reply = await titanic(c, 'titanic.reply', id!);
        return reply[0] !== '300';
      }, 'the Titanic reply');
      assert.deepEqual(reply, ['200', 'HELLO', 'THERE']);
      assert.deepEqual(await titanic(c, 'titanic.reply', id!), ['200', 'HELLO', 'THERE']);
      assert.deepEqual(await titanic(c, 'titanic.close', id!), ['200']);
      assert.deepEqual(await titanic(c, 'titanic.close', id!), ['200']);
      assert.deepEqual(await titanic(c, 'titanic.reply', id!), ['400']);
      assert.deepEqual(await titanic(c, 'titanic.close', '0'.repeat(32)), ['200']);
      assert.deepEqual(await titanic(c, 'titanic.reply', '0'.repeat(32)), ['400']);
    } finally {
      await w?.close();
      c.close();
      await broker.stop();
    }
  });

  test('a request survives a broker restart between request and reply', async () => {
    const data = tmpDir();
    const first = await startBroker({ ...MDP_FLAGS, data });
    let id: string;
    {
      const c = await RawPeer.connect(mdpEndpointOf(first));
      try {
        const [status, uuid] = await titanic(c, 'titanic.request', 'after-restart', 'payload');
        assert.equal(status, '200');
        id = uuid!;
        assert.deepEqual(await titanic(c, 'titanic.reply', id), ['300']);
      } finally {
        c.close();
        await first.stop();
      }
    }
    const second = await startBroker({ ...MDP_FLAGS, data });
    const endpoint = mdpEndpointOf(second);
    const c = await RawPeer.connect(endpoint);
    let w: RawWorker | undefined;
    try {
      assert.deepEqual(await titanic(c, 'titanic.reply', id), ['300']);
      w = await RawWorker.start(endpoint, 'after-restart', {
        handler: (body) => [Buffer.from(`served ${body[0]!.toString()}`)],
      });
      let reply: string[] = [];
      await waitFor(async () => {
        reply = await titanic(c, 'titanic.reply', id);
        return reply[0] !== '300';
      }, 'the reply after the restart');
      assert.deepEqual(reply, ['200', 'served payload']);
    } finally {
      await w?.close();
      c.close();
      await second.stop();
    }
  });
});

/** Runs the pyzmq MDP/0.1 peers (test/fixtures/mdp_roundtrip.py) asynchronously. */
function runPython(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      PYTHON,
      [PY_ROUNDTRIP, ...args],
      { timeout: PY_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('MDP/0.1 from Python (pyzmq REQ client, DEALER worker)', { timeout: 120_000 }, () => {
  let broker: TestBroker;

  before(async () => {
    broker = await startBroker(MDP_FLAGS);
  });

  after(async () => {
    await broker.stop();
  });

  for (const delimiter of [true, false]) {
    test(`${PY_ROUND_TRIPS} round trips and MMI, worker ${delimiter ? 'with' : 'without'} the REPLY delimiter`, async () => {
      const service = delimiter ? 'py-echo' : 'py-echo-nodelim';
      const run = await runPython([
        mdpEndpointOf(broker),
        service,
        String(PY_ROUND_TRIPS),
        ...(delimiter ? [] : ['--no-delimiter']),
      ]);
      assert.equal(run.code, 0, `mdp_roundtrip.py failed (exit ${run.code}): ${run.stderr}`);
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
      assert.deepEqual(summary, {
        replies: PY_ROUND_TRIPS,
        served: PY_ROUND_TRIPS,
        mmi_found: '200',
        mmi_missing: '404',
      });
    });
  }
});
