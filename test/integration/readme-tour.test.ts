/**
 * The README's five-minute shell tour runs as written: the block is taken from README.md and
 * run by bash in the clone, line after line (`npx ferry` and all), against a test broker named
 * by FERRY_BROKER — the only change. Each `# →` comment the tour promises is checked in the
 * output, in order.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/broker.js';

/** The whole tour gets this long (it starts about ten node processes). */
const TOUR_TIMEOUT_MS = 90_000;

function tourBlock(): string {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('a five-minute tour');
  assert.ok(at > 0, 'the README has its shell tour');
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'the tour is a sh block');
  return m[1]!;
}

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-e', '-c', script], { cwd: REPO_ROOT, env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the tour did not finish in ${TOUR_TIMEOUT_MS} ms:\n${out}`));
    }, TOUR_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

describe('README shell tour', () => {
  let broker: TestBroker;

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await broker.stop();
  });

  it(
    'runs line after line as written: a queue, a shell worker, pub/sub',
    { timeout: 120_000 },
    async () => {
      const block = tourBlock();
      const lines = block.split('\n').filter((l) => l.trim() !== '');
      assert.ok(lines.length >= 8, 'a tour, not a line');
      assert.ok(
        lines.every((l) => /^(npx ferry |kill %1)/.test(l)),
        'only ferry commands',
      );
      // `wait` at the end: the tour's own `kill %1` must have ended the worker.
      const { code, out } = await runBash(`set -m\n${block}\nwait\n`, {
        ...process.env,
        FERRY_BROKER: broker.endpoint,
      });
      assert.equal(code, 0, out);
      const expected = [
        /^\d+$/m, // the message id
        /^\d+\t\{"to":"ada@example\.com"\}$/m, // consumed
        /^HELLO$/m, // the call's result
        /\tupper\tdone\t.*result=SHIP IT$/m, // the submitted job's outcome
        /\tconfig\/db\tdb1:5432$/m, // the retained value from the snapshot
      ];
      let from = 0;
      for (const re of expected) {
        const m = re.exec(out.slice(from));
        assert.ok(m, `${String(re)} after offset ${from} in:\n${out}`);
        from += m.index + m[0].length;
      }
      const stats = await broker.server.broker.queueStats('emails');
      assert.equal(stats.depth, 0, 'the consumed message was acked');
    },
  );
});
