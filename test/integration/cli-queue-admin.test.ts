/** `ferry queue delete|pause|resume|policy` and `ferry unsubscribe --delete`, run as a user does. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { runCli, startBroker, type TestBroker } from '../helpers/broker.js';

const ferry = runCli;

describe('ferry queue life-cycle commands', () => {
  let broker: TestBroker;
  let client: FerryClient;
  const b = (): string[] => ['--broker', broker.endpoint];
  // The whole listing, so that a deleted queue shows as absent (stats(<name>) would refuse it).
  const statsOf = async (queue: string) =>
    (await client.stats()).queues.find((q) => q.name === queue);

  before(async () => {
    broker = await startBroker();
    client = await connect(broker.endpoint);
  });

  after(async () => {
    await client.close({ timeoutMs: 500 });
    await broker.stop();
  });

  it('delete refuses a queue with messages, --force deletes it and them', async () => {
    await client.send('cli-del', 'one');
    let r = await ferry(['queue', 'delete', 'cli-del', ...b()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: QUEUE_NOT_EMPTY: /m);
    assert.equal((await statsOf('cli-del'))?.ready, 1, 'the refused delete kept the message');
    r = await ferry(['queue', 'delete', 'cli-del', '--force', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'deleted queue cli-del (1 message(s) removed)\n');
    assert.equal(await statsOf('cli-del'), undefined);
    r = await ferry(['queue', 'delete', 'cli-del', ...b()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: QUEUE_NOT_FOUND: /m);
  });

  it('pause stops deliveries and resume starts them; stats show it', async () => {
    await client.send('cli-pause', 'x');
    let r = await ferry(['queue', 'pause', 'cli-pause', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await statsOf('cli-pause'))?.paused, true);
    // A paused queue delivers nothing: consume gives up at its --timeout with nothing printed.
    r = await ferry(['consume', 'cli-pause', '--count', '1', '--timeout', '700', ...b()]);
    assert.equal(r.stdout, '');
    assert.equal((await statsOf('cli-pause'))?.ready, 1, 'still there, undelivered');
    r = await ferry(['queue', 'resume', 'cli-pause', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    r = await ferry(['consume', 'cli-pause', '--count', '1', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /x/);
    assert.equal((await statsOf('cli-pause'))?.paused, false);
  });

  it('policy shows, sets, unsets and resets runtime values, refusing bad keys', async () => {
    await client.send('cli-pol', 'x');
    let r = await ferry(['queue', 'policy', 'cli-pol', '--set', 'maxAttempts=3', '--json', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    const set = JSON.parse(r.stdout) as { policy: { maxAttempts: number }; overrides: object };
    assert.equal(set.policy.maxAttempts, 3);
    assert.deepEqual(set.overrides, { maxAttempts: 3 });
    r = await ferry(['queue', 'policy', 'cli-pol', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /maxAttempts\s+3\s+yes/);
    r = await ferry(['queue', 'policy', 'cli-pol', '--unset', 'maxAttempts', '--json', ...b()]);
    assert.deepEqual((JSON.parse(r.stdout) as { overrides: object }).overrides, {});
    await ferry(['queue', 'policy', 'cli-pol', '--set', 'ackTimeoutMs=5000', ...b()]);
    r = await ferry(['queue', 'policy', 'cli-pol', '--reset', '--json', ...b()]);
    assert.deepEqual((JSON.parse(r.stdout) as { overrides: object }).overrides, {});

    r = await ferry(['queue', 'policy', 'cli-pol', '--set', 'colour=3', ...b()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID: .*unknown policy key colour/);
    r = await ferry(['queue', 'policy', 'cli-pol', '--set', 'maxAttempts=lots', ...b()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID: .*maxAttempts must be a whole number/);
    r = await ferry(['queue', 'policy', 'cli-pol', '--set', 'maxAttempts=0', ...b()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: INVALID_POLICY: /m);
    r = await ferry(['queue', 'policy', 'cli-pol', '--reset', '--set', 'maxAttempts=2', ...b()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID: .*not both/);
  });

  it('unsubscribe --delete deletes a durable subscription; without --delete it refuses', async () => {
    const sub = client.subscribe('cli/**', { durable: 'cli-sub' });
    await sub.ready;
    await sub.close();
    let r = await ferry(['unsubscribe', 'cli-sub', ...b()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID: .*--delete/);
    r = await ferry(['unsubscribe', 'cli-sub', '--delete', ...b()]);
    assert.equal(r.code, 0, r.stderr);
    r = await ferry(['unsubscribe', 'cli-sub', '--delete', ...b()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: SUBSCRIPTION_NOT_FOUND: /m);
  });
});
