/** The README's quick-start example works when pasted (only the endpoint is pointed at a test broker). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { connect } from 'ferrymq';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/broker.js';

const run = promisify(execFile);
const brokers: TestBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop();
});

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
});
