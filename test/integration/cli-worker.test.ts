/**
 * `ferry worker` end to end: a real broker, a real shell command run once per job (params on
 * stdin, stdout the result), a failing command, concurrency above 1, and a graceful Ctrl-C.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FerryClient } from 'ferrymq';
import { TestResources, tmpDir, waitFor, type TestBroker } from '../helpers/broker.js';
import { runFerry, spawnFerry, type RunningFerry } from '../helpers/cli.js';

/** Polls of a shell loop waiting for a file (bounded: 20 ms × this ≈ 16 s). */
const SHELL_POLLS = 800;

/** A sh loop that waits (bounded) until `cond` holds, else exits 9. */
function shWaitUntil(cond: string): string {
  return `i=0; until ${cond}; do i=$((i+1)); [ $i -gt ${SHELL_POLLS} ] && exit 9; sleep 0.02; done`;
}

describe('ferry worker', () => {
  const res = new TestResources();
  let broker: TestBroker;
  let client: FerryClient;
  const workers: RunningFerry[] = [];
  const b = (): string[] => ['--broker', broker.endpoint];

  async function startWorker(
    service: string,
    extra: string[],
    command: string[],
  ): Promise<RunningFerry> {
    const w = spawnFerry(['worker', service, ...extra, ...b(), '--', ...command]);
    workers.push(w);
    await w.waitFor('stderr', new RegExp(`serving ${service} `));
    return w;
  }

  before(async () => {
    broker = await res.broker();
    client = await res.client(broker.endpoint);
  });

  after(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await res.closeAll();
  });

  it('runs the command once per job: params on stdin, stdout is the result', async () => {
    await startWorker('upper', [], ['sh', '-c', 'printf "%s:" "$FERRY_JOB_SERVICE"; tr a-z A-Z']);
    assert.equal((await client.call('upper', 'hello world')).toString(), 'upper:HELLO WORLD');
    // Bodies from stdin and from a file through `ferry call`.
    const viaStdin = await runFerry(['call', 'upper', '-', ...b()], { input: 'from stdin' });
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assert.equal(viaStdin.stdout, 'upper:FROM STDIN\n');
    const file = path.join(tmpDir(), 'params.txt');
    fs.writeFileSync(file, 'from a file');
    const viaFile = await runFerry(['submit', 'upper', `@${file}`, '--wait', ...b()]);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.match(viaFile.stdout, /\tdone\t.*result=upper:FROM A FILE/);
  });

  it('fails the attempt when the command exits non-zero, with the tail of its stderr', async () => {
    const w = await startWorker(
      'broken',
      [],
      ['sh', '-c', 'cat >/dev/null; echo "disk on fire" >&2; exit 3'],
    );
    const job = await client.submit('broken', 'x', { maxAttempts: 1 });
    const info = await job.wait({ timeoutMs: 15_000 });
    assert.equal(info.status, 'failed');
    assert.equal(info.error?.code, 'JOB_FAILED');
    assert.match(info.error?.message ?? '', /sh exited with code 3: disk on fire/);
    await w.waitFor('stderr', /attempt 1\) failed: sh exited with code 3/);
    const missing = await startWorker('nothing', [], ['/nonexistent/command']);
    const j2 = await client.submit('nothing', 'x', { maxAttempts: 1 });
    const i2 = await j2.wait({ timeoutMs: 15_000 });
    assert.equal(i2.status, 'failed');
    assert.match(i2.error?.message ?? '', /cannot run \/nonexistent\/command/);
    missing.child.kill('SIGTERM');
    assert.equal((await missing.exited).code, 0);
  });

  it('runs up to --concurrency jobs at once', async () => {
    const dir = tmpDir();
    // Each job leaves a mark, then waits until three are there: only 3 jobs at once can end.
    const script =
      `touch "${dir}/$FERRY_JOB_ID"; ` +
      shWaitUntil(`[ "$(ls "${dir}" | wc -l)" -ge 3 ]`) +
      '; echo done';
    await startWorker('together', ['--concurrency', '3'], ['sh', '-c', script]);
    const results = await Promise.all(
      [1, 2, 3].map((i) => client.call('together', String(i), { timeoutMs: 20_000 })),
    );
    assert.deepEqual(
      results.map((r) => r.toString()),
      ['done\n', 'done\n', 'done\n'],
    );
    const listed = await runFerry(['workers', '--json', ...b()]);
    const list = JSON.parse(listed.stdout) as { services: string[]; concurrency: number }[];
    assert.equal(list.find((x) => x.services.includes('together'))?.concurrency, 3);
  });

  it('on Ctrl-C takes no new job, finishes the running one, then exits 0', async () => {
    const dir = tmpDir();
    const script =
      `touch "${dir}/started"; ` + shWaitUntil(`[ -e "${dir}/go" ]`) + '; echo finished';
    const w = await startWorker('slow', [], ['sh', '-c', script]);
    const job = await client.submit('slow', 'x');
    await waitFor(() => fs.existsSync(path.join(dir, 'started')), 'the job started');
    w.child.kill('SIGINT');
    await w.waitFor('stderr', /SIGINT: finishing running jobs/);
    const later = await client.submit('slow', 'y');
    fs.writeFileSync(path.join(dir, 'go'), '');
    assert.equal((await w.exited).code, 0, w.stderr());
    const info = await job.wait({ timeoutMs: 15_000 });
    assert.equal(info.status, 'done');
    assert.equal(info.result?.[0]?.toString(), 'finished\n');
    assert.equal((await later.status()).status, 'queued', 'no new job after Ctrl-C');
  });
});
