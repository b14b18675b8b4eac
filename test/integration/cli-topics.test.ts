/** `ferry publish|subscribe|retained|config` as a user runs them: a real child process. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { runCli, startBroker, type TestBroker } from '../helpers/broker.js';

const ferry = runCli;

describe('ferry topic commands', () => {
  let broker: TestBroker;
  let node: FerryClient;
  const b = (): string[] => ['--broker', broker.endpoint];

  before(async () => {
    broker = await startBroker();
    node = await connect(broker.endpoint);
    // A fleet node: confirms every retained version it applies.
    const sub = node.subscribe('app/**', { durable: 'web-1', snapshot: true });
    await sub.ready;
    void (async () => {
      for await (const m of sub) await m.ack();
    })().catch(() => {});
  });

  after(async () => {
    await node.close({ timeoutMs: 500 });
    await broker.stop();
  });

  it('publish --retain, retained, config get/set/status, subscribe --snapshot --count', async () => {
    let r = await ferry(['publish', 'app/db', 'db1:5432', '--retain', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+\n$/);
    r = await ferry(['retained', 'app/', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\tapp\/db\tdb1:5432\n/);
    r = await ferry([
      'config',
      'set',
      'app/cache',
      'redis:6379',
      '--nodes',
      'web-1',
      '--wait',
      '5000',
      ...b(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /confirmed: web-1; pending: -/);
    r = await ferry(['config', 'status', 'app/**', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /app\/cache\s+\d+\s+web-1\s+\d+\s+current/);
    r = await ferry(['config', 'get', 'app/**', '--json', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    const state = JSON.parse(r.stdout) as { messages: { topic: string }[] };
    assert.deepEqual(
      state.messages.map((m) => m.topic),
      ['app/cache', 'app/db'],
    );
    r = await ferry(['subscribe', 'app/', '--snapshot', '--count', '2', '--json', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 2);
  });

  it('a rollout that times out exits 1 and names the missing nodes', async () => {
    const r = await ferry([
      'config',
      'set',
      'app/x',
      'v',
      '--nodes',
      'web-1,web-9',
      '--wait',
      '300',
      ...b(),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TIMEOUT: not confirmed by web-9/);
  });

  it('bad input gets a coded error', async () => {
    let r = await ferry(['publish', 'a/*', 'x', ...b()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /INVALID_TOPIC/);
    r = await ferry(['publish', 'a', 'x', '--ttl', 'soon', ...b()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID/);
    r = await ferry(['config', 'frobnicate', ...b()]);
    assert.equal(r.code, 2);
    r = await ferry(['subscribe', ...b()]);
    assert.equal(r.code, 2);
    r = await ferry(['start', '--clone', '70000']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID/);
  });
});
