/**
 * The README's examples work as written: the quick start when pasted (only the endpoint is
 * pointed at a test broker), and the consumer loop of "Use it" through broker restarts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { connect, type FerryClient } from 'ferrymq';
import {
  REPO_ROOT,
  freePort,
  spawnBroker,
  startBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
  type TestBroker,
} from '../helpers/broker.js';

const run = promisify(execFile);
const brokers: TestBroker[] = [];
const children: ChildBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop();
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
});

/** Messages per restart phase, and the one whose handler is running while the broker restarts. */
const PHASE_MESSAGES = 30;
const HELD_MESSAGE = 10;
const ALL_CONSUMED_TIMEOUT_MS = 30_000;

type ConsumerLoop = (
  ferry: FerryClient,
  render: (frame: Buffer | undefined) => Promise<void>,
) => Promise<void>;

/** The README's consumer loop (the `for await … ferry.consume('thumbnails'` block), as a function. */
async function readmeConsumerLoop(): Promise<ConsumerLoop> {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const loop = /^for await \(const msg of ferry\.consume\('thumbnails'[\s\S]*?^\}$/m.exec(
    readme,
  )?.[0];
  assert.ok(loop, 'the README has the consumer loop');
  const file = path.join(REPO_ROOT, 'dist', 'readme-consumer-loop.mjs');
  fs.writeFileSync(file, `export default async function run(ferry, render) {\n${loop}\n}\n`);
  const mod = (await import(pathToFileURL(file).href)) as { default: ConsumerLoop };
  return mod.default;
}

describe('README', () => {
  it('quick-start SDK example runs as written and prints what it promises', async () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const block = /## Quick start[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block, 'the quick start has a js block');
    assert.ok(block.split('\n').filter((l) => l.trim() !== '').length <= 12, 'about ten lines');
    assert.ok(block.includes("'tcp://127.0.0.1:7400'"), 'it uses the default endpoint');
    const b = await startBroker();
    brokers.push(b);
    // Inside the package, so `import … from 'ferrymq'` resolves to this package, as in a clone.
    const file = path.join(REPO_ROOT, 'dist', 'readme-example.mjs');
    fs.writeFileSync(file, block.replace("'tcp://127.0.0.1:7400'", `'${b.endpoint}'`));
    const { stdout } = await run(process.execPath, [file], { timeout: 20_000 });
    assert.match(stdout, /^stored as 1\ngot 1 \{"to":"ada@example.com"\} attempt 1\n$/);
    assert.equal((await b.server.broker.queueStats('emails')).depth, 0, 'acked');
  });

  it('a client given several endpoints fails over to the one that answers', async () => {
    const b = await startBroker();
    brokers.push(b);
    const c = await connect(['tcp://127.0.0.1:9', b.endpoint], {
      heartbeatMs: 100,
      requestTimeoutMs: 10_000,
    });
    try {
      assert.equal(c.endpoint, b.endpoint);
      assert.ok(await c.send('failover', 'x'));
    } finally {
      await c.close();
    }
  });

  it('the consumer loop keeps consuming through broker restarts (graceful, kill -9), all acked', async () => {
    const runLoop = await readmeConsumerLoop();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const data = tmpDir();
    const brokerArgs = ['--bind', endpoint, '--data', data];
    let broker = await spawnBroker(brokerArgs);
    children.push(broker);
    const producer = await connect(endpoint, { heartbeatMs: 100 });
    const ferry = await connect(endpoint, { heartbeatMs: 100 });
    const rendered = new Set<string>();
    const failedOnce = new Set<string>();
    let held:
      { body: string; reached: boolean; release: () => void; open: Promise<void> } | undefined;
    const render = async (frame: Buffer | undefined): Promise<void> => {
      const body = String(frame);
      if (body.endsWith('-3') && !failedOnce.has(body)) {
        failedOnce.add(body);
        throw new Error('render failed'); // the loop's nack path
      }
      if (held?.body === body && !held.reached) {
        held.reached = true;
        await held.open; // the broker restarts while this message is being handled
      }
      rendered.add(body);
    };
    let loopError: unknown;
    const loop = runLoop(ferry, render).catch((err: unknown) => (loopError = err));
    const depth = async (): Promise<number> =>
      (await producer.stats('thumbnails')).queues.find((q) => q.name === 'thumbnails')?.depth ?? -1;
    try {
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        let release = (): void => {};
        const open = new Promise<void>((r) => (release = r));
        held = { body: `${signal}-${HELD_MESSAGE}`, reached: false, release, open };
        const bodies = Array.from({ length: PHASE_MESSAGES }, (_, i) => `${signal}-${i}`);
        await producer.sendBatch(
          'thumbnails',
          bodies.map((b) => ({ body: [Buffer.from('meta'), Buffer.from(b)] })),
        );
        await waitFor(() => held!.reached, `the handler of ${held.body} running`);
        const lostBefore = ferry.counters.leasesLost;
        broker.child.kill(signal);
        await broker.exited;
        broker = await spawnBroker(brokerArgs);
        children.push(broker);
        held.release();
        await waitFor(
          () => bodies.every((b) => rendered.has(b)),
          `every message rendered after ${signal}`,
          { timeoutMs: ALL_CONSUMED_TIMEOUT_MS },
        );
        await waitFor(async () => (await depth()) === 0, `every message acked after ${signal}`, {
          timeoutMs: ALL_CONSUMED_TIMEOUT_MS,
        });
        assert.equal(loopError, undefined, `the loop died after ${signal}: ${String(loopError)}`);
        // A graceful stop gives the leases back, so the held message's ack finds its lease
        // gone. After a kill the broker holds the old leases back for its recovery grace and
        // that ack, re-sent after the reconnect, may settle it instead (docs/semantics.md,
        // Restart): either outcome is right there, and the loop must survive both.
        if (signal === 'SIGTERM') {
          assert.ok(
            ferry.counters.leasesLost > lostBefore,
            'the ack of the message held across the restart found its lease gone',
          );
        }
      }
    } finally {
      held?.release();
      await ferry.close({ timeoutMs: 1_000 });
      await producer.close({ timeoutMs: 1_000 });
    }
    await loop;
    assert.equal(loopError, undefined, 'the loop ended without an error when the client closed');
  });
});
