/**
 * `ferry` as an operator uses it against a real broker: bodies from stdin and files, bulk send,
 * --json on every listing, tables, waiting hints, consume --timeout, top, bench and ping.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FerryClient } from 'ferrymq';
import { TestResources, tmpDir, type TestBroker } from '../helpers/broker.js';
import { runFerry } from '../helpers/cli.js';

describe('ferry operator tools', () => {
  const res = new TestResources();
  let broker: TestBroker;
  let client: FerryClient;
  const b = (): string[] => ['--broker', broker.endpoint];
  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await runFerry([...args, ...b()], input !== undefined ? { input } : {});
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    broker = await res.broker();
    client = await res.client(broker.endpoint);
    await client.worker('echo', (job) => job.params).ready;
  });

  after(async () => {
    await res.closeAll();
  });

  it('takes bodies from arguments, stdin (-), files (@path) and --file lines', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'body.bin'), Buffer.from([0, 1, 2, 255]));
    fs.writeFileSync(path.join(dir, 'lines.txt'), 'one\ntwo\n\nthree\n');
    await ok(['send', 'bodies', '-'], 'from stdin');
    await ok(['send', 'bodies', `@${path.join(dir, 'body.bin')}`]);
    await ok(['send', 'bodies', 'frame1', '-'], 'frame2');
    const bulk = await runFerry(['send', 'bodies', '--file', path.join(dir, 'lines.txt'), ...b()]);
    assert.equal(bulk.code, 0, bulk.stderr);
    assert.equal(bulk.stdout, 'sent 3 message(s) to bodies\n');
    assert.equal(bulk.stderr, '', 'no progress bar when stderr is not a terminal');
    const peeked = JSON.parse(await ok(['peek', 'bodies', '--json'])) as { frames: string[] }[];
    assert.deepEqual(
      peeked.map((m) => m.frames),
      [['from stdin'], ['base64:AAEC/w=='], ['frame1', 'frame2'], ['one'], ['two'], ['three']],
    );
    await ok(['publish', 'bodies/topic', '-', '--retain'], 'retained from stdin');
    const retained = JSON.parse(await ok(['retained', 'bodies/**', '--json'])) as {
      messages: { body: string }[];
    };
    assert.deepEqual(
      retained.messages.map((m) => m.body),
      ['retained from stdin'],
    );
    const missing = await runFerry(['send', 'bodies', '@/nonexistent/file', ...b()]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^ferry: CONFIG_INVALID: cannot read \/nonexistent\/file/m);
    // An endless source is refused once past the cap, not read until memory runs out.
    const endless = await runFerry(['send', 'bodies', '@/dev/zero', ...b()]);
    assert.equal(endless.code, 2);
    assert.match(endless.stderr, /CONFIG_INVALID: \/dev\/zero holds more than \d+ bytes/);
    const twice = await runFerry(['send', 'bodies', '-', '-', ...b()], { input: 'x' });
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /CONFIG_INVALID: stdin \(-\) can be used once/);
    const both = await runFerry(['send', 'bodies', 'x', '--file', 'y', ...b()]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /CONFIG_INVALID: give bodies or --file, not both/);
  });

  it('prints --json on every listing as one parseable document', async () => {
    await ok(['send', 'listed', 'a']);
    await ok(['submit', 'echo', 'ping', '--wait']);
    await ok(['config', 'set', 'listed/key', 'v']);
    const names = JSON.parse(await ok(['queues', '--json'])) as string[];
    assert.ok(names.includes('listed'));
    const stats = JSON.parse(await ok(['stats', '--json'])) as { queues: { name: string }[] };
    assert.ok(stats.queues.some((q) => q.name === 'listed'));
    const peek = JSON.parse(await ok(['peek', 'listed', '--json'])) as { state: string }[];
    assert.deepEqual(
      peek.map((m) => m.state),
      ['ready'],
    );
    assert.deepEqual(JSON.parse(await ok(['dlq', 'list', 'listed', '--json'])), []);
    const jobs = JSON.parse(await ok(['jobs', '--service', 'echo', '--json'])) as {
      status: string;
    }[];
    assert.equal(jobs[0]?.status, 'done');
    const services = JSON.parse(await ok(['services', '--json'])) as { name: string }[];
    assert.ok(services.some((s) => s.name === 'echo'));
    const workers = JSON.parse(await ok(['workers', '--json'])) as { services: string[] }[];
    assert.ok(workers.some((w) => w.services.includes('echo')));
    const got = JSON.parse(await ok(['config', 'get', 'listed/**', '--json'])) as {
      messages: { topic: string }[];
    };
    assert.deepEqual(
      got.messages.map((m) => m.topic),
      ['listed/key'],
    );
    const status = JSON.parse(await ok(['config', 'status', 'listed/**', '--json'])) as {
      topic: string;
    }[];
    assert.deepEqual(
      status.map((t) => t.topic),
      ['listed/key'],
    );
  });

  it('prints tables for peek, jobs and stats, in the ready/leased/scheduled/dead words', async () => {
    await ok(['send', 'tabled', 'later', '--delay', '600000']);
    const peek = await ok(['peek', 'tabled']);
    assert.match(peek, /^id\s+state\s+attempts\s+priority\s+age\s+reason\s+body\n/);
    assert.match(peek, /\n\d+\s+scheduled\s+0\s+0\s+\S+\s+-\s+later\n$/);
    const stats = await ok(['stats']);
    assert.match(stats, /^queue\s+depth\s+ready\s+leased\s+scheduled\s+dead\s/m);
    assert.match(stats, /^tabled\s+1\s+0\s+0\s+1\s+0\s/m);
    await ok(['submit', 'echo', 'tabled-job', '--wait']);
    const jobs = await ok(['jobs', '--service', 'echo']);
    assert.match(jobs, /^id\s+service\s+status\s+attempts\s+age\s+outcome\n/);
    assert.match(jobs, /^[0-9a-f]{32}\s+echo\s+done\s+1\s+\S+\s+-$/m);
    const none = await runFerry(['peek', 'tabled', '--state', 'dead', ...b()]);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /no messages/);
  });

  it('consume --timeout ends the wait; consume and submit --wait say why they wait', async () => {
    const empty = await runFerry(['consume', 'nothing-here', '--timeout', '3000', ...b()]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, '');
    assert.match(empty.stderr, /waiting for messages on nothing-here: ready 0, leased 0/);
    await ok(['send', 'one-only', 'x']);
    const short = await runFerry([
      'consume',
      'one-only',
      '--count',
      '2',
      '--timeout',
      '3000',
      ...b(),
    ]);
    assert.equal(short.code, 1);
    assert.match(short.stdout, /^\d+\tx\n$/);
    assert.match(short.stderr, /^ferry: TIMEOUT: got 1 of 2 message\(s\) from one-only/m);
    const orphan = await runFerry([
      'submit',
      'nobody-serves',
      'x',
      '--wait',
      '--timeout',
      '3000',
      ...b(),
    ]);
    assert.equal(orphan.code, 1);
    assert.match(orphan.stdout, /^[0-9a-f]{32}\n$/);
    assert.match(orphan.stderr, /no worker serves nobody-serves yet/);
    assert.match(orphan.stderr, /ferry worker nobody-serves -- <command>/);
    assert.match(orphan.stderr, /^ferry: TIMEOUT: /m);
  });

  it('top prints --count snapshots of queues and services with rates', async () => {
    await ok(['send', 'watched', 'x']);
    const out = await ok(['top', '--count', '2', '--interval', '100']);
    assert.equal(out.match(/^ferry top /gm)?.length, 2);
    assert.match(out, /^QUEUE\s+DEPTH\s+READY\s+LEASED\s+SCHEDULED\s+DEAD\s+IN\/S\s+ACK\/S/m);
    assert.match(out, /^watched\s+1\s+1\s+0\s+0\s+0\s/m);
    assert.match(out, /^SERVICE\s+WORKERS\s+IDLE\s+QUEUED\s+RUNNING\s+DONE\/S\s+FAILED\/S/m);
    assert.match(out, /^echo\s+1\s/m);
    assert.ok(!out.includes('\u001b['), 'no ANSI redraw when stdout is not a terminal');
    const json = (await ok(['top', '--count', '2', '--interval', '100', '--json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { queues: { name: string }[]; services: { name: string }[] });
    assert.equal(json.length, 2);
    assert.ok(json[1]!.services.some((s) => s.name === 'echo'));
  });

  it('bench measures a durable queue and calls, labelled', async () => {
    const q = JSON.parse(
      await ok([
        'bench',
        'queue',
        '--count',
        '200',
        '--size',
        '64',
        '--producers',
        '2',
        '--consumers',
        '2',
        '--json',
      ]),
    ) as {
      what: string;
      count: number;
      sizeBytes: number;
      latencyMs: { p50: number; max: number };
    };
    assert.equal(q.count, 200);
    assert.equal(q.sizeBytes, 64);
    assert.match(
      q.what,
      /^durable queue bench\.\w+ .*stored, sync=always.*2 producer\(s\), 2 consumer\(s\)/,
    );
    assert.ok(q.latencyMs.p50 <= q.latencyMs.max);
    const text = await ok(['bench', 'call', '--count', '30']);
    assert.match(text, /^transient \(in-memory\) calls to bench\.echo\.\w+ /);
    assert.match(text, /^30 × 128 B in .*: calls \d+\/s$/m);
    assert.match(text, /^latency p50 \S+, p90 \S+, p99 \S+, max \S+$/m);
    const durable = await ok(['bench', 'call', '--count', '10', '--durable', '--service', 'echo']);
    assert.match(durable, /^durable \(stored\) jobs to echo /);
  });

  it('ping measures round trips', async () => {
    const text = await runFerry(['ping', '--endpoint', broker.endpoint, '--count', '3']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^tcp:\/\/127\.0\.0\.1:\d+: connected in \S+\n/);
    assert.equal(text.stdout.match(/^ {2}\d: rtt \S+$/gm)?.length, 3);
    assert.match(text.stdout, /rtt min \S+, avg \S+, max \S+ \(3 round trips\)\n$/);
    const json = JSON.parse(await ok(['ping', '--json', '--count', '2'])) as { rttMs: number[] };
    assert.equal(json.rttMs.length, 2);
  });
});
