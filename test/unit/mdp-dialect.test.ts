/**
 * The Majordomo dialect without sockets: frames in through `handle`, frames out through the
 * captured `sendTo`, a fake job server, and a manual clock for heartbeats.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import fc from 'fast-check';
import {
  MDP_HEARTBEAT_INTERVAL_MS,
  MDP_HEARTBEAT_LIVENESS,
  MdpDialect,
} from 'ferrymq-server/internal/dialects/mdp/mdp-dialect.js';
import { decodeMdp } from 'ferrymq-server/internal/dialects/mdp/mdp-frames.js';
import { MMI_PREFIX } from 'ferrymq-server/internal/dialects/mdp/mmi.js';
import { TitanicServices } from 'ferrymq-server/internal/dialects/titanic/titanic-services.js';
import { FakeJobs } from '../helpers/fake-jobs.js';
import { fcOptions } from '../helpers/seed.js';

const E = Buffer.alloc(0);
const b = (s: string): Buffer => Buffer.from(s);
const byte = (n: number): Buffer => Buffer.from([n]);
const text = (frames: Buffer[]): string[] => frames.map((f) => f.toString('latin1'));

interface Sent {
  peer: string;
  frames: Buffer[];
}

function setup(): {
  jobs: FakeJobs;
  clock: ManualClock;
  mdp: MdpDialect;
  sent: Sent[];
  to: (peer: string) => Buffer[][];
  take: (peer: string) => Buffer[][];
} {
  const jobs = new FakeJobs();
  const clock = new ManualClock();
  const sent: Sent[] = [];
  const titanic = new TitanicServices(jobs, { isReserved: (s) => s.startsWith(MMI_PREFIX) });
  const mdp = new MdpDialect(jobs, (peer, frames) => sent.push({ peer: peer.toString(), frames }), {
    clock,
    internal: [titanic],
  });
  const to = (peer: string): Buffer[][] => sent.filter((s) => s.peer === peer).map((s) => s.frames);
  const take = (peer: string): Buffer[][] => {
    const out = to(peer);
    for (let i = sent.length - 1; i >= 0; i--) if (sent[i]!.peer === peer) sent.splice(i, 1);
    return out;
  };
  return { jobs, clock, mdp, sent, to, take };
}

/** Lets promise callbacks run (the fake job server resolves in microtasks). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const ready1 = (service: string): Buffer[] => [E, b('MDPW01'), byte(1), b(service)];
const request1 = (service: string, ...body: string[]): Buffer[] => [
  E,
  b('MDPC01'),
  b(service),
  ...body.map(b),
];

describe('MDP frames', () => {
  it('decodes every valid command of both versions', () => {
    assert.deepEqual(decodeMdp(request1('echo', 'a', 'b')), {
      kind: 'client-request',
      version: 1,
      service: 'echo',
      body: [b('a'), b('b')],
    });
    assert.deepEqual(decodeMdp([b('MDPC02'), byte(1), b('echo'), b('x')]), {
      kind: 'client-request',
      version: 2,
      service: 'echo',
      body: [b('x')],
    });
    assert.equal((decodeMdp(ready1('echo')) as { command: string }).command, 'READY');
    const reply = decodeMdp([E, b('MDPW01'), byte(3), b('addr'), E, b('r')]);
    assert.deepEqual(reply, {
      kind: 'worker',
      version: 1,
      command: 'REPLY',
      address: b('addr'),
      body: [b('r')],
      delimited: true,
    });
    const loose = decodeMdp([E, b('MDPW01'), byte(3), b('addr'), b('r1'), b('r2')]);
    assert.deepEqual((loose as { body: Buffer[] }).body, [b('r1'), b('r2')]);
    assert.equal((loose as { delimited: boolean }).delimited, false);
    for (const [cmd, name] of [
      [3, 'PARTIAL'],
      [4, 'FINAL'],
    ] as const) {
      const m = decodeMdp([b('MDPW02'), byte(cmd), b('addr'), E, b('r')]);
      assert.equal((m as { command: string }).command, name);
    }
    assert.equal((decodeMdp([b('MDPW02'), byte(5)]) as { command: string }).command, 'HEARTBEAT');
    assert.equal((decodeMdp([b('MDPW02'), byte(6)]) as { command: string }).command, 'DISCONNECT');
  });

  it('names what is wrong with invalid messages, and whose header they carried', () => {
    const cases: [Buffer[], string, string][] = [
      [[], 'unknown', 'empty message'],
      [[b('HELLO')], 'unknown', 'unknown protocol header'],
      [[E, b('MDPX01')], 'unknown', 'unknown protocol header'],
      [[E, b('MDPC01'), b('echo')], 'client', 'body'],
      [[E, b('MDPC01'), E, b('x')], 'client', 'service name'],
      [[b('MDPC02'), byte(2), b('echo'), b('x')], 'client', 'REQUEST'],
      [[b('MDPC01'), b('echo'), b('x')], 'client', 'empty frame before'],
      [[E, b('MDPC02'), byte(1), b('echo'), b('x')], 'client', 'no empty frame'],
      [[E, b('MDPW01'), byte(1)], 'worker', 'READY'],
      [[E, b('MDPW01'), byte(1), b('a'), b('b')], 'worker', 'READY'],
      [[E, b('MDPW01'), byte(2), b('a'), E, b('x')], 'worker', 'broker to worker'],
      [[E, b('MDPW01'), byte(3)], 'worker', 'address'],
      [[E, b('MDPW01'), byte(4), b('x')], 'worker', 'no frames'],
      [[E, b('MDPW01'), byte(9)], 'worker', 'unknown worker command'],
      [[E, b('MDPW01'), b('\x01\x01'), b('echo')], 'worker', 'unknown worker command'],
      [[b('MDPW02'), byte(1)], 'worker', 'READY'],
      [[b('MDPW02'), byte(4)], 'worker', 'address'],
      [[b('MDPW02'), byte(7)], 'worker', 'unknown worker command'],
    ];
    for (const [frames, from, reason] of cases) {
      const m = decodeMdp(frames);
      assert.equal(m.kind, 'invalid', text(frames).join('|'));
      if (m.kind !== 'invalid') continue;
      assert.equal(m.from, from, text(frames).join('|'));
      assert.ok(m.reason.includes(reason), `${m.reason} should mention ${reason}`);
    }
  });
});

describe('MDP dialect', () => {
  it('MDP/0.1: routes a request to a ready worker and its reply back, frame for frame', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('W'), ready1('echo'));
    mdp.handle(b('C'), request1('echo', 'hello', 'world'));
    await settle();
    const [req] = take('W');
    assert.ok(req);
    assert.equal(req.length, 7);
    assert.deepEqual(text(req.slice(0, 3)), ['', 'MDPW01', '\x02']);
    const address = req[3]!;
    assert.match(address.toString(), /^[0-9a-f]{32}$/);
    assert.deepEqual(text(req.slice(4)), ['', 'hello', 'world']);
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), address, E, b('HELLO'), b('WORLD')]);
    await settle();
    assert.deepEqual(text(take('C')[0]!), ['', 'MDPC01', 'echo', 'HELLO', 'WORLD']);
    assert.equal(mdp.counters.replies, 1);
  });

  it('queues requests until a worker for the service is ready, then serves them one at a time', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('C'), request1('late', '1'));
    mdp.handle(b('C'), request1('late', '2'));
    await settle();
    mdp.handle(b('W'), ready1('late'));
    let reqs = take('W');
    assert.equal(reqs.length, 1, 'a worker gets one request at a time');
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), reqs[0]![3]!, E, b('r1')]);
    await settle();
    reqs = take('W');
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0]![5]!.toString(), '2');
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), reqs[0]![3]!, E, b('r2')]);
    await settle();
    assert.deepEqual(
      take('C').map((m) => m[3]!.toString()),
      ['r1', 'r2'],
    );
  });

  it('serves a REPLY that lacks the empty delimiter after the address (PHP mdwrkapi)', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('W'), ready1('echo'));
    mdp.handle(b('C'), request1('echo', 'a', 'b'));
    await settle();
    const address = take('W')[0]![3]!;
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), address, b('a'), b('b')]);
    await settle();
    assert.deepEqual(text(take('C')[0]!), ['', 'MDPC01', 'echo', 'a', 'b']);
  });

  it('MMI: mmi.service answers 200 / 404, other mmi.* 501, built-in Titanic is found', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('W'), ready1('echo'));
    const ask = async (service: string, body: string): Promise<string[]> => {
      mdp.handle(b('C'), request1(service, body));
      await settle();
      return text(take('C')[0]!);
    };
    assert.deepEqual(await ask('mmi.service', 'echo'), ['', 'MDPC01', 'mmi.service', '200']);
    assert.deepEqual(await ask('mmi.service', 'nope'), ['', 'MDPC01', 'mmi.service', '404']);
    assert.deepEqual(await ask('mmi.service', 'titanic.request'), [
      '',
      'MDPC01',
      'mmi.service',
      '200',
    ]);
    assert.deepEqual(await ask('mmi.foo', 'x'), ['', 'MDPC01', 'mmi.foo', '501']);
    mdp.handle(b('W'), [E, b('MDPW01'), byte(5)]);
    assert.deepEqual(await ask('mmi.service', 'echo'), ['', 'MDPC01', 'mmi.service', '404']);
  });

  it('answers protocol violations with DISCONNECT and keeps serving', async () => {
    const { mdp, take, to } = setup();
    const disconnect1 = ['', 'MDPW01', '\x05'];
    // A command before READY.
    mdp.handle(b('A'), [E, b('MDPW01'), byte(4)]);
    assert.deepEqual(text(take('A')[0]!), disconnect1);
    // READY twice.
    mdp.handle(b('B'), ready1('echo'));
    mdp.handle(b('B'), ready1('echo'));
    assert.deepEqual(text(take('B')[0]!), disconnect1);
    // Registering a reserved service.
    mdp.handle(b('C'), ready1('mmi.service'));
    assert.deepEqual(text(take('C')[0]!), disconnect1);
    mdp.handle(b('D'), ready1('titanic.request'));
    assert.deepEqual(text(take('D')[0]!), disconnect1);
    // Malformed command, MDP/0.2 flavour.
    mdp.handle(b('E'), [b('MDPW02'), byte(9)]);
    assert.deepEqual(text(take('E')[0]!), ['MDPW02', '\x06']);
    // A version switch.
    mdp.handle(b('F'), ready1('echo'));
    mdp.handle(b('F'), [b('MDPW02'), byte(5)]);
    assert.deepEqual(text(take('F')[0]!), disconnect1);
    assert.equal(mdp.counters.violations, 6);
    assert.equal(mdp.workerCount, 0);
    // Nothing more goes to a disconnected peer.
    mdp.handle(b('B'), [E, b('MDPW01'), byte(4)]);
    assert.equal(to('B').length, 0);
    // Malformed client messages are dropped, unknown headers too.
    mdp.handle(b('X'), [E, b('MDPC01'), b('echo')]);
    mdp.handle(b('X'), [b('garbage')]);
    assert.equal(to('X').length, 0);
    assert.equal(mdp.counters.dropped, 3);
    // And the broker still serves.
    mdp.handle(b('G'), ready1('echo'));
    mdp.handle(b('X'), request1('echo', 'ok'));
    await settle();
    const address = take('G')[0]![3]!;
    mdp.handle(b('G'), [E, b('MDPW01'), byte(3), address, E, b('ok')]);
    await settle();
    assert.deepEqual(text(take('X')[0]!), ['', 'MDPC01', 'echo', 'ok']);
  });

  it('sends heartbeats every interval and expires a silent worker, whose request goes to another', async () => {
    const { mdp, clock, take, jobs } = setup();
    mdp.handle(b('W1'), ready1('echo'));
    mdp.handle(b('C'), request1('echo', 'x'));
    await settle();
    assert.equal(take('W1').length, 1);
    clock.advance(MDP_HEARTBEAT_INTERVAL_MS);
    assert.deepEqual(text(take('W1')[0]!), ['', 'MDPW01', '\x04']);
    // W1 stays silent; past interval × liveness it is dead.
    clock.advance(MDP_HEARTBEAT_INTERVAL_MS * MDP_HEARTBEAT_LIVENESS);
    assert.equal(mdp.counters.expired, 1);
    assert.equal(mdp.workerCount, 0);
    assert.equal(jobs.hasWorkers('echo'), false);
    take('W1');
    mdp.handle(b('W2'), ready1('echo'));
    // W2 keeps talking, so it lives.
    for (let i = 0; i < 10; i++) {
      mdp.handle(b('W2'), [E, b('MDPW01'), byte(4)]);
      clock.advance(MDP_HEARTBEAT_INTERVAL_MS);
    }
    assert.equal(mdp.workerCount, 1);
    const reqs = take('W2').filter((m) => m[2]![0] === 2);
    assert.equal(reqs.length, 1, 'the expired worker request went to W2');
    // A late word from the expired worker gets DISCONNECT.
    mdp.handle(b('W1'), [E, b('MDPW01'), byte(4)]);
    assert.deepEqual(text(take('W1')[0]!), ['', 'MDPW01', '\x05']);
  });

  it('MDP/0.2: relays PARTIALs in order, then FINAL, and nothing after FINAL', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('W'), [b('MDPW02'), byte(1), b('stream')]);
    mdp.handle(b('C'), [b('MDPC02'), byte(1), b('stream'), b('go')]);
    await settle();
    const req = take('W')[0]!;
    assert.deepEqual(text([req[0]!, req[1]!, req[3]!, req[4]!]), ['MDPW02', '\x02', '', 'go']);
    const address = req[2]!;
    for (let i = 0; i < 5; i++) {
      mdp.handle(b('W'), [b('MDPW02'), byte(3), address, E, b(`p${i}`)]);
    }
    mdp.handle(b('W'), [b('MDPW02'), byte(4), address, E, b('done')]);
    await settle();
    mdp.handle(b('W'), [b('MDPW02'), byte(3), address, E, b('late')]);
    mdp.handle(b('W'), [b('MDPW02'), byte(4), address, E, b('late')]);
    await settle();
    const got = take('C').map(text);
    assert.deepEqual(got, [
      ...[0, 1, 2, 3, 4].map((i) => ['MDPC02', '\x02', 'stream', `p${i}`]),
      ['MDPC02', '\x03', 'stream', 'done'],
    ]);
    assert.equal(mdp.counters.violations, 0);
  });

  it('an MDP/0.1 client of an MDP/0.2 worker gets the FINAL body as its REPLY', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('W'), [b('MDPW02'), byte(1), b('s')]);
    mdp.handle(b('C'), request1('s', 'q'));
    await settle();
    const address = take('W')[0]![2]!;
    mdp.handle(b('W'), [b('MDPW02'), byte(3), address, E, b('part')]);
    mdp.handle(b('W'), [b('MDPW02'), byte(4), address, E, b('all')]);
    await settle();
    assert.deepEqual(take('C').map(text), [['', 'MDPC01', 's', 'all']]);
  });

  it('a request that fails gets no reply and is counted', async () => {
    const { mdp, jobs, take } = setup();
    mdp.handle(b('C'), request1('nobody', 'x'));
    await settle();
    const [id] = [...jobs.jobs.keys()];
    jobs.failJob(id!);
    await settle();
    assert.equal(take('C').length, 0);
    assert.equal(mdp.counters.unanswered, 1);
    mdp.handle(b('C'), request1('bad name!', 'x'));
    await settle();
    assert.equal(take('C').length, 0);
    assert.equal(mdp.counters.unanswered, 2);
  });

  it('a job taken back from a worker keeps it busy until its late reply, which is dropped', async () => {
    const { mdp, take, jobs } = setup();
    mdp.handle(b('W'), ready1('echo'));
    mdp.handle(b('C'), request1('echo', 'first'));
    mdp.handle(b('C'), request1('echo', 'second'));
    await settle();
    const first = take('W');
    assert.equal(first.length, 1);
    const firstId = first[0]![3]!.toString();
    await jobs.cancel(firstId);
    await settle();
    assert.equal(take('W').length, 0, 'no second request while the worker is still busy');
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), first[0]![3]!, E, b('late')]);
    await settle();
    const second = take('W');
    assert.equal(second.length, 1);
    assert.equal(second[0]![5]!.toString(), 'second');
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), second[0]![3]!, E, b('answer')]);
    await settle();
    assert.deepEqual(
      take('C').map((m) => m[3]!.toString()),
      ['answer'],
    );
  });

  it('a worker that says DISCONNECT mid-request hands the request to another worker', async () => {
    const { mdp, take } = setup();
    mdp.handle(b('W1'), ready1('echo'));
    mdp.handle(b('C'), request1('echo', 'x'));
    await settle();
    assert.equal(take('W1').length, 1);
    mdp.handle(b('W1'), [E, b('MDPW01'), byte(5)]);
    assert.equal(mdp.workerCount, 0);
    mdp.handle(b('W2'), ready1('echo'));
    const [req] = take('W2');
    assert.ok(req, 'the request went to W2');
    mdp.handle(b('W2'), [E, b('MDPW01'), byte(3), req[3]!, E, b('y')]);
    await settle();
    assert.deepEqual(take('C').map(text), [['', 'MDPC01', 'echo', 'y']]);
    assert.equal(take('W1').length, 0, 'nothing more to a worker that said DISCONNECT');
  });

  it('close() tells workers to reconnect and requeues what they ran', async () => {
    const { mdp, take, jobs } = setup();
    mdp.handle(b('W'), ready1('echo'));
    mdp.handle(b('C'), request1('echo', 'x'));
    await settle();
    take('W');
    mdp.close();
    assert.deepEqual(take('W').map(text), [['', 'MDPW01', '\x05']]);
    const [job] = [...jobs.jobs.values()];
    assert.equal(job?.info.status, 'queued');
    mdp.handle(b('W'), ready1('echo'));
    assert.equal(take('W').length, 0);
  });
});

describe('MDP robustness', () => {
  it('survives 20,000 random messages (valid headers, random frames) and still serves', async () => {
    const pieces = [
      E,
      b('MDPC01'),
      b('MDPW01'),
      b('MDPC02'),
      b('MDPW02'),
      b('echo'),
      b('mmi.service'),
    ];
    const frame = fc.oneof(
      {
        weight: 2,
        arbitrary: fc.uint8Array({ maxLength: 39, size: 'max' }).map((u) => Buffer.from(u)),
      },
      { weight: 1, arbitrary: fc.nat(7).map(byte) },
      { weight: 3, arbitrary: fc.constantFrom(...pieces) },
    );
    const message = fc.record({ peer: fc.nat(49), frames: fc.array(frame, { maxLength: 7 }) });
    // 20 runs of up to 2,000 messages each (about 20,000 in all), each on a fresh dialect.
    const messages = fc.array(message, { maxLength: 2_000, size: 'max' });
    await fc.assert(
      fc.asyncProperty(messages, async (msgs) => {
        const { mdp, take } = setup();
        try {
          for (const m of msgs) {
            assert.doesNotThrow(() => mdp.handle(b(`p${m.peer}`), m.frames));
          }
          await settle();
          take('W');
          take('C');
          mdp.handle(b('W'), ready1('echo-fuzz'));
          mdp.handle(b('C'), request1('echo-fuzz', 'still'));
          await settle();
          const req = take('W').find((m) => m[2]?.[0] === 2)!;
          mdp.handle(b('W'), [E, b('MDPW01'), byte(3), req[3]!, E, b('here')]);
          await settle();
          assert.deepEqual(text(take('C').at(-1)!), ['', 'MDPC01', 'echo-fuzz', 'here']);
        } finally {
          mdp.close();
        }
      }),
      fcOptions(20),
    );
  });
});

describe('Titanic (9/TSP) over MDP', () => {
  it('request → 200 + id; reply 300 while pending, 200 + body when done; close; 400 after', async () => {
    const { mdp, take } = setup();
    const ask = async (service: string, ...body: string[]): Promise<string[]> => {
      mdp.handle(b('C'), request1(service, ...body));
      await settle();
      const [m] = take('C');
      assert.ok(m, `no answer from ${service}`);
      assert.deepEqual(text(m.slice(0, 3)), ['', 'MDPC01', service]);
      return text(m.slice(3));
    };
    const [status, id] = await ask('titanic.request', 'echo', 'hi', 'there');
    assert.equal(status, '200');
    assert.match(id!, /^[0-9a-f]{32}$/);
    assert.deepEqual(await ask('titanic.reply', id!), ['300']);
    assert.deepEqual(await ask('titanic.reply', id!.toUpperCase()), ['300']);
    mdp.handle(b('W'), ready1('echo'));
    const req = take('W')[0]!;
    assert.deepEqual(text(req.slice(5)), ['hi', 'there']);
    mdp.handle(b('W'), [E, b('MDPW01'), byte(3), req[3]!, E, b('HI'), b('THERE')]);
    await settle();
    assert.deepEqual(await ask('titanic.reply', id!), ['200', 'HI', 'THERE']);
    assert.deepEqual(await ask('titanic.reply', id!), ['200', 'HI', 'THERE'], 'idempotent');
    assert.deepEqual(await ask('titanic.close', id!), ['200']);
    assert.deepEqual(await ask('titanic.close', id!), ['200'], 'idempotent');
    assert.deepEqual(await ask('titanic.reply', id!), ['400']);
    assert.deepEqual(await ask('titanic.close', 'f'.repeat(32)), ['200'], 'unknown id');
    assert.deepEqual(await ask('titanic.reply', 'f'.repeat(32)), ['400']);
    assert.deepEqual(await ask('titanic.reply', 'not-a-uuid'), ['400']);
  });

  it('refuses what it cannot store with 500 and a reason; failed jobs answer 500', async () => {
    const { mdp, take, jobs } = setup();
    const ask = async (service: string, ...body: string[]): Promise<string[]> => {
      mdp.handle(b('C'), request1(service, ...body));
      await settle();
      return text(take('C')[0]!.slice(3));
    };
    const bad = await ask('titanic.request', 'bad name!', 'x');
    assert.equal(bad[0], '500');
    assert.match(bad[1]!, /INVALID_SERVICE_NAME/);
    assert.equal((await ask('titanic.request', 'mmi.service', 'x'))[0], '500');
    assert.equal((await ask('titanic.request', 'titanic.reply', 'x'))[0], '500');
    assert.deepEqual(await ask('titanic.nope', 'x'), [
      '501',
      'titanic.nope is not a Titanic service',
    ]);
    const [, id] = await ask('titanic.request', 'echo', 'x');
    jobs.failJob(id!);
    const failed = await ask('titanic.reply', id!);
    assert.equal(failed[0], '500');
    assert.match(failed[1]!, /failed/);
    // A pending job closed is cancelled and forgotten.
    const [, id2] = await ask('titanic.request', 'echo', 'y');
    const pending = jobs.jobs.get(id2!)!;
    assert.deepEqual(await ask('titanic.close', id2!), ['200']);
    assert.equal(pending.info.status, 'cancelled');
    assert.equal(jobs.jobs.has(id2!), false);
    assert.deepEqual(await ask('titanic.reply', id2!), ['400']);
  });
});
