/**
 * examples/node run as written (only FERRY_ENDPOINT points them at a test broker), each in its
 * own process against a broker in its own process — which the tests stop mid-run, gracefully
 * (SIGTERM) and with kill -9, and start again on the same endpoint and data folder.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from 'ferrymq';
import {
  REPO_ROOT,
  freePort,
  spawnBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
} from '../helpers/broker.js';

const EXAMPLES = path.join(REPO_ROOT, 'examples', 'node');
const EXAMPLE_TIMEOUT_MS = 60_000;
const LONG_WAIT = { timeoutMs: 45_000 };

interface Example {
  child: ChildProcess;
  lines: string[];
  stderr(): string;
  exited: Promise<number | null>;
}

const running: ChildProcess[] = [];
after(() => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts examples/node/<name>.mjs; its stdout lines are collected as they come. */
function runExample(name: string, endpoint: string, env: Record<string, string> = {}): Example {
  const child = spawn(process.execPath, [path.join(EXAMPLES, `${name}.mjs`)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, FERRY_ENDPOINT: endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: EXAMPLE_TIMEOUT_MS,
  });
  running.push(child);
  const lines: string[] = [];
  let partial = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, stderr: () => err, exited };
}

/** A broker in a child process on a fixed endpoint and data folder, restartable. */
class RestartableBroker {
  private current!: ChildBroker;
  private constructor(
    readonly endpoint: string,
    private readonly args: string[],
  ) {}

  static async start(): Promise<RestartableBroker> {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const b = new RestartableBroker(endpoint, ['--bind', endpoint, '--data', tmpDir()]);
    await b.spawn();
    return b;
  }

  private async spawn(): Promise<void> {
    this.current = await spawnBroker(this.args);
    running.push(this.current.child);
  }

  /** Stops it with `signal` (SIGTERM: graceful; SIGKILL: kill -9) and starts it again. */
  async restart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    this.current.child.kill(signal);
    await this.current.exited;
    await this.spawn();
  }

  async stop(): Promise<void> {
    this.current.child.kill('SIGTERM');
    await this.current.exited;
  }
}

function count(lines: string[], pattern: RegExp): number {
  return lines.filter((l) => pattern.test(l)).length;
}

describe('examples/node', () => {
  it('producer and consumer: every message acked once through a graceful and a kill -9 restart', async () => {
    const broker = await RestartableBroker.start();
    const total = 40;
    try {
      const consumer = runExample('consumer', broker.endpoint);
      const producer = runExample('producer', broker.endpoint, { COUNT: String(total) });
      const ackedBodies = (): Set<string> =>
        new Set(
          consumer.lines
            .filter((l) => l.startsWith('acked '))
            .map((l) => l.split(' ').slice(2).join(' ')),
        );
      await waitFor(
        () => ackedBodies().size >= 10,
        'ten acked before the first restart',
        LONG_WAIT,
      );
      await broker.restart('SIGTERM');
      await waitFor(
        () => ackedBodies().size >= 20,
        'twenty acked after a graceful restart',
        LONG_WAIT,
      );
      await broker.restart('SIGKILL');
      assert.equal(await producer.exited, 0, `producer failed: ${producer.stderr()}`);
      assert.equal(count(producer.lines, /^sent \d+ as \S+$/), total);
      await waitFor(() => ackedBodies().size === total, `all ${total} acked`, LONG_WAIT);
      for (let i = 1; i <= total; i++) {
        assert.ok(ackedBodies().has(JSON.stringify({ to: `user${i}@example.com` })), `user${i}`);
      }
      // Stored once each (dedup keys, idempotent re-sends) and all deleted by their acks.
      const admin = await connect(broker.endpoint);
      try {
        const stats = await admin.stats('emails');
        assert.equal(stats.queues.find((q) => q.name === 'emails')?.depth, 0);
      } finally {
        await admin.close();
      }
      consumer.child.kill('SIGINT');
      assert.equal(await consumer.exited, 0, `consumer failed: ${consumer.stderr()}`);
    } finally {
      await broker.stop();
    }
  });

  it('worker and caller: jobs finish through a graceful and a kill -9 restart mid-job', async () => {
    const broker = await RestartableBroker.start();
    try {
      const worker = runExample('worker', broker.endpoint, { RESIZE_MS: '300' });
      await waitFor(() => worker.lines.includes('serving resize'), 'worker ready', LONG_WAIT);
      const jobs = 5;
      const caller = runExample('caller', broker.endpoint, { COUNT: String(jobs) });
      await waitFor(
        () => count(worker.lines, /^resizing /) >= 2,
        'a second job running',
        LONG_WAIT,
      );
      await broker.restart('SIGTERM');
      const seen = count(worker.lines, /^resizing /);
      await waitFor(
        () => count(worker.lines, /^resizing /) > seen,
        'a job running again',
        LONG_WAIT,
      );
      await broker.restart('SIGKILL');
      assert.equal(await caller.exited, 0, `caller failed: ${caller.stderr()}`);
      const results = caller.lines.filter((l) => /^job \S+ result /.test(l));
      assert.equal(results.length, jobs, caller.lines.join('\n'));
      results.forEach((l, i) => assert.match(l, new RegExp(`"width":${100 * (i + 1)}\\b`)));
      assert.ok(caller.lines.some((l) => l.startsWith('call result {"width":64')));
      worker.child.kill('SIGINT');
      assert.equal(await worker.exited, 0, `worker failed: ${worker.stderr()}`);
    } finally {
      await broker.stop();
    }
  });

  it('publisher and subscriber: the durable subscriber gets the last reading after a restart', async () => {
    const broker = await RestartableBroker.start();
    try {
      // Whenever it subscribes, it gets the retained reading first, then every later one.
      const subscriber = runExample('subscriber', broker.endpoint);
      const total = 20;
      const publisher = runExample('publisher', broker.endpoint, { COUNT: String(total) });
      await waitFor(() => count(publisher.lines, /^published /) >= 5, 'five published', LONG_WAIT);
      await broker.restart('SIGTERM');
      assert.equal(await publisher.exited, 0, `publisher failed: ${publisher.stderr()}`);
      const last = publisher.lines.filter((l) => l.startsWith('published ')).at(-1)!;
      assert.match(last, new RegExp(`^published ${total} `));
      const lastSeq = last.split(' ').at(-1)!;
      await waitFor(
        () => subscriber.lines.some((l) => l.endsWith(`seq ${lastSeq}`)),
        `the subscriber got seq ${lastSeq}`,
        LONG_WAIT,
      );
      subscriber.child.kill('SIGINT');
      assert.equal(await subscriber.exited, 0, `subscriber failed: ${subscriber.stderr()}`);
    } finally {
      await broker.stop();
    }
  });
});
