/**
 * The Python example client (examples/python/, written from docs/protocol.md alone) against a
 * real broker running in this process. The scripts run as child processes asynchronously:
 * a synchronous spawn would block the event loop the broker needs to answer them.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from 'ferrymq';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/broker.js';

const PYTHON = '/usr/bin/python3';
const EXAMPLES = path.join(REPO_ROOT, 'examples', 'python');
const CHILD_TIMEOUT_MS = 45_000;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runPython(args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      PYTHON,
      args,
      { cwd: REPO_ROOT, timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The last non-empty stdout line, parsed as a JSON object. */
function lastJsonLine(run: RunResult): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  const last = lines.at(-1);
  assert.ok(last, `no output on stdout; stderr: ${run.stderr}`);
  const parsed: unknown = JSON.parse(last);
  assert.ok(parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed));
  return parsed as Record<string, unknown>;
}

describe('Python client (examples/python)', { timeout: 120_000 }, () => {
  let broker: TestBroker | undefined;

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await broker?.stop();
  });

  test('demo.py sends, consumes and acks 500 messages', { timeout: 60_000 }, async () => {
    assert.ok(broker);
    const run = await runPython([
      path.join(EXAMPLES, 'demo.py'),
      broker.endpoint,
      'py-demo',
      '500',
    ]);
    assert.equal(run.code, 0, `demo.py failed (exit ${run.code}): ${run.stderr}`);
    const summary = lastJsonLine(run);
    assert.equal(summary['sent'], 500);
    assert.equal(summary['received'], 500);
    assert.equal(summary['acked'], 500);
    assert.equal(typeof summary['duplicates'], 'number');
    assert.equal(summary['unknown_command_code'], 'UNKNOWN_COMMAND');

    // Acks are answered after their delete is committed, so the broker's view is final.
    const stats = await broker.server.broker.queueStats('py-demo');
    assert.equal(stats.depth, 0);
    assert.equal(stats.acked, 500);
  });

  test(
    'malformed requests get BAD_FRAME / UNSUPPORTED_VERSION; the broker keeps serving',
    { timeout: 60_000 },
    async () => {
      assert.ok(broker);
      const run = await runPython([
        path.join(EXAMPLES, 'malformed.py'),
        broker.endpoint,
        'py-malformed',
      ]);
      const summary = lastJsonLine(run);
      assert.equal(summary['short'], 'BAD_FRAME', 'a 2-frame message');
      assert.equal(summary['version'], 'UNSUPPORTED_VERSION', 'header FERRY99');
      assert.equal(summary['header'], 'BAD_FRAME', 'a header that is not FERRYnn');
      assert.equal(summary['mismatch'], 'BAD_FRAME', 'SEND with a wrong message count');
      const sentAfter = summary['sent_after'];
      assert.ok(Array.isArray(sentAfter) && sentAfter.length === 1, 'a normal SEND still works');
      assert.equal(run.code, 0, `malformed.py failed (exit ${run.code}): ${run.stderr}`);

      // All or nothing: the refused SEND stored nothing; only the normal message is there.
      const stats = await broker.server.broker.queueStats('py-malformed');
      assert.equal(stats.depth, 1);
    },
  );

  test(
    'jobs_demo.py: a Python worker and caller, and a call to a TypeScript worker',
    { timeout: 60_000 },
    async () => {
      assert.ok(broker);
      const ts = await connect(broker.endpoint);
      try {
        await ts.worker('ts-reverse', (job) => [...job.params.toString()].reverse().join('')).ready;
        // A Python worker serves an SDK call too, once it is registered (the script starts it).
        const run = runPython([
          path.join(EXAMPLES, 'jobs_demo.py'),
          broker.endpoint,
          '50',
          'ts-reverse',
        ]);
        const r = await run;
        assert.equal(r.code, 0, `jobs_demo.py failed (exit ${r.code}): ${r.stderr}`);
        const summary = lastJsonLine(r);
        assert.equal(summary['submitted'], 50);
        assert.equal(summary['done'], 50);
        assert.equal(summary['call'], 'HELLO');
        assert.equal(summary['failure_code'], 'JOB_FAILED');
        assert.equal(summary['interop'], 'nohtyp');
        const services = await ts.services();
        assert.equal(services.find((x) => x.name === 'py-upper')?.done, 51);
      } finally {
        await ts.close({ timeoutMs: 500 });
      }
    },
  );
});
