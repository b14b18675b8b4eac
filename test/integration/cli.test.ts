/** The `ferry` command as a user runs it: a real child process, real exit codes and output. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { connect } from 'ferrymq';
import { REPO_ROOT, runCli, spawnBroker, tmpDir } from '../helpers/broker.js';

const ferry = runCli;

describe('ferry CLI', () => {
  it('refuses bad flags, bad values and bad config files with one coded line', async () => {
    const bad = await ferry(['start', '--no-such-flag']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ferry: CONFIG_INVALID: .*no-such-flag/m);
    const badValue = await ferry(['start', '--sync', 'sometimes']);
    assert.equal(badValue.code, 2);
    assert.match(badValue.stderr, /CONFIG_INVALID: --sync/);
    const file = path.join(tmpDir(), 'c.json');
    fs.writeFileSync(file, JSON.stringify({ ackTimeoutMs: 5, colour: 'blue' }));
    const badFile = await ferry(['start', '--config', file]);
    assert.equal(badFile.code, 2);
    assert.match(badFile.stderr, /CONFIG_INVALID: .*colour: unknown key/);
    const badEnv = await ferry(['start'], { FERRY_ACK_TIMEOUT_MS: 'soon' });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /CONFIG_INVALID: environment FERRY_ACK_TIMEOUT_MS/);
    const version = await ferry(['--version']);
    assert.equal(version.code, 0);
    const pkg = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'packages', 'ferrymq-server', 'package.json'), 'utf8'),
    ) as { version: string };
    assert.equal(version.stdout, `ferry ${pkg.version}\n`);
    const unknown = await ferry(['frobnicate']);
    assert.equal(unknown.code, 2);
    // commander's wording since the CLI moved to it: the command quoted, coded like every error.
    assert.match(unknown.stderr, /^ferry: CONFIG_INVALID: unknown command 'frobnicate'/m);
  });

  it('refuses an unwritable data folder, a locked one, and a taken port', async () => {
    const notADir = path.join(tmpDir(), 'file');
    fs.writeFileSync(notADir, 'x');
    const unwritable = await ferry([
      'start',
      '--data',
      path.join(notADir, 'sub'),
      '--bind',
      'tcp://127.0.0.1:*',
    ]);
    assert.equal(unwritable.code, 1);
    assert.match(unwritable.stderr, /^ferry: DATA_DIR_UNWRITABLE: /m);

    const dataDir = tmpDir();
    const b = await spawnBroker(['--data', dataDir, '--bind', 'tcp://127.0.0.1:*']);
    try {
      const locked = await ferry(['start', '--data', dataDir, '--bind', 'tcp://127.0.0.1:*']);
      assert.equal(locked.code, 1);
      assert.match(locked.stderr, /^ferry: DATA_DIR_LOCKED: .*pid \d+/m);
      const taken = await ferry(['start', '--data', tmpDir(), '--bind', b.endpoint]);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /^ferry: ADDRESS_IN_USE: /m);
    } finally {
      b.child.kill('SIGKILL');
      await b.exited;
    }
  });

  it('takes over the lock of a broker that died, and stops cleanly on SIGTERM and on SIGINT', async () => {
    const dataDir = tmpDir();
    const first = await spawnBroker(['--data', dataDir, '--bind', 'tcp://127.0.0.1:*']);
    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(fs.existsSync(path.join(dataDir, 'ferry.lock')), 'a stale lock is left behind');
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const b = await spawnBroker(['--data', dataDir, '--bind', 'tcp://127.0.0.1:*']);
      const sent = await ferry(['send', 'q', `before-${signal}`, '--broker', b.endpoint]);
      assert.equal(sent.code, 0, sent.stderr);
      b.child.kill(signal);
      const { code } = await b.exited;
      assert.equal(code, 0, `exit code after ${signal}: ${b.stderr()}`);
      assert.ok(!fs.existsSync(path.join(dataDir, 'ferry.lock')), `lock released after ${signal}`);
    }
  });

  it('sends, peeks, consumes, dead-letters, redrives, purges and shows stats', async () => {
    const b = await spawnBroker(['--data', tmpDir(), '--bind', 'tcp://127.0.0.1:*']);
    const at = ['--broker', b.endpoint];
    try {
      const s1 = await ferry(['send', 'jobs', 'first', ...at, '--header', 'k=v']);
      assert.equal(s1.code, 0, s1.stderr);
      assert.match(s1.stdout, /^\d+\n$/);
      const s2 = await ferry(['send', 'jobs', 'urgent', '--priority', '9', ...at]);
      assert.equal(s2.code, 0, s2.stderr);
      const badPriority = await ferry(['send', 'jobs', 'x', '--priority', 'high', ...at]);
      assert.equal(badPriority.code, 2);
      assert.match(badPriority.stderr, /--priority must be a whole number/);
      const badQueue = await ferry(['send', 'no spaces', 'x', ...at]);
      assert.equal(badQueue.code, 1);
      assert.match(badQueue.stderr, /INVALID_QUEUE_NAME/);

      const queues = await ferry(['queues', ...at]);
      assert.equal(queues.stdout, 'jobs\n');
      const peek = await ferry(['peek', 'jobs', '--json', ...at]);
      // --json on a listing is one JSON array (it was JSON lines before the move to commander).
      const peeked = JSON.parse(peek.stdout) as { frames: string[]; headers?: object }[];
      assert.deepEqual(
        peeked.map((p) => p.frames[0]),
        ['first', 'urgent'],
      );
      assert.deepEqual(peeked[0]!.headers, { k: 'v' });

      const stats = await ferry(['stats', '--json', ...at]);
      const parsed = JSON.parse(stats.stdout) as { queues: { name: string; depth: number }[] };
      assert.equal(parsed.queues.find((q) => q.name === 'jobs')?.depth, 2);
      const table = await ferry(['stats', ...at]);
      assert.match(table.stdout, /^jobs\s+2\s+2\s+0\s+0\s+0/m);

      const consumed = await ferry(['consume', 'jobs', '--count', '1', ...at]);
      assert.match(consumed.stdout, /^\d+\turgent\n$/, 'priority 9 first');

      // Dead-letter the remaining one (rejected through the SDK), then list and redrive it.
      const sdk = await connect(b.endpoint);
      for await (const m of sdk.consume('jobs')) {
        await m.nack({ dead: true });
        break;
      }
      await sdk.close();
      const dlq = await ferry(['dlq', 'list', 'jobs', ...at]);
      // A table now (id, state, attempts, priority, age, reason, body), like every listing.
      assert.match(dlq.stdout, /^id\s+state\s+attempts\s+priority\s+age\s+reason\s+body\n/);
      assert.match(dlq.stdout, /\n\d+\s+dead\s+1\s+0\s+\S+\s+rejected\s+first\n$/);
      const redrive = await ferry(['dlq', 'redrive', 'jobs', ...at]);
      assert.match(redrive.stdout, /redrove 1 message/);
      const purged = await ferry(['purge', 'jobs', ...at]);
      assert.match(purged.stdout, /purged 1 message/);
      const empty = await ferry(['dlq', 'list', 'jobs', ...at]);
      assert.equal(empty.stdout, '');
      const missing = await ferry(['peek', 'nope', ...at]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /QUEUE_NOT_FOUND/);
    } finally {
      b.child.kill('SIGKILL');
      await b.exited;
    }
  });

  it(
    'reports an unreachable broker with an UNREACHABLE line, not a hang',
    { timeout: 30_000 },
    async () => {
      const r = await ferry(['queues', '--broker', 'tcp://127.0.0.1:9', '--timeout', '500']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^ferry: UNREACHABLE: nothing answers at tcp:\/\/127\.0\.0\.1:9/m);
      assert.match(
        r.stderr,
        /^ferry: hint: no broker answered at tcp:\/\/127\.0\.0\.1:9\. Start one with 'ferry start'/m,
      );
    },
  );
});
