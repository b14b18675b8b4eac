/** `ferry call|submit|job|jobs|services|workers` as a user runs them: a real child process. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { runCli, startBroker, type TestBroker } from '../helpers/broker.js';

const ferry = runCli;

describe('ferry job commands', () => {
  let broker: TestBroker;
  let worker: FerryClient;
  const b = (): string[] => ['--broker', broker.endpoint];

  before(async () => {
    broker = await startBroker();
    worker = await connect(broker.endpoint);
    await worker.worker('shout', async (job) => {
      await job.progress(0.5);
      await job.partial('half');
      return `${job.params.toString().toUpperCase()}!`;
    }).ready;
    await worker.worker('refuse', () => {
      throw new Error('nope');
    }).ready;
  });

  after(async () => {
    await worker.close({ timeoutMs: 500 });
    await broker.stop();
  });

  it('ferry call prints the result; --progress shows progress and partials', async () => {
    const r = await ferry(['call', 'shout', 'hello', '--progress', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'HELLO!\n');
    assert.match(r.stderr, /progress 0\.5/);
    assert.match(r.stderr, /partial 1\thalf/);
  });

  it('ferry call of a failing job exits 1 with JOB_FAILED', async () => {
    const r = await ferry(['call', 'refuse', 'x', ...b()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: JOB_FAILED: .*nope/m);
  });

  it('ferry submit prints the id; ferry job shows it; --wait waits for the result', async () => {
    const s = await ferry(['submit', 'shout', 'later', '--wait', ...b()]);
    assert.equal(s.code, 0, s.stderr);
    const [id, line] = s.stdout.trim().split('\n');
    assert.match(id!, /^[0-9a-f]{32}$/);
    assert.match(line!, /\tdone\t.*result=LATER!/);
    const j = await ferry(['job', id!, '--json', ...b()]);
    assert.equal(j.code, 0, j.stderr);
    const info = JSON.parse(j.stdout) as { status: string; result: string[] };
    assert.equal(info.status, 'done');
    assert.deepEqual(info.result, ['LATER!']);
    const list = await ferry(['jobs', '--service', 'shout', ...b()]);
    assert.match(list.stdout, new RegExp(id!));
  });

  it('ferry job --cancel cancels a queued job', async () => {
    const s = await ferry(['submit', 'nobody-home', 'x', ...b()]);
    const id = s.stdout.trim();
    const c = await ferry(['job', id, '--cancel', ...b()]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /\tcancelled\t/);
  });

  it('ferry services and ferry workers list what is connected', async () => {
    const s = await ferry(['services', ...b()]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^service\s+workers/);
    assert.match(s.stdout, /^shout\s+1\s/m);
    const w = await ferry(['workers', '--json', ...b()]);
    const list = JSON.parse(w.stdout) as { services: string[]; protocol: string }[];
    assert.ok(list.some((x) => x.services.includes('shout') && x.protocol === 'ferry'));
  });

  it('refuses bad input with a coded line', async () => {
    const noArgs = await ferry(['call', 'shout', ...b()]);
    assert.equal(noArgs.code, 2);
    assert.match(noArgs.stderr, /usage: ferry call/);
    const badId = await ferry(['job', 'zzz', ...b()]);
    assert.equal(badId.code, 1);
    assert.match(badId.stderr, /BAD_ARGUMENTS/);
    const missing = await ferry(['job', '0'.repeat(32), ...b()]);
    assert.match(missing.stderr, /JOB_NOT_FOUND/);
    const badStatus = await ferry(['jobs', '--status', 'sleeping', ...b()]);
    assert.equal(badStatus.code, 2);
    assert.match(badStatus.stderr, /CONFIG_INVALID: --status/);
  });
});
