/** `ferry call|submit|job|jobs|services|workers`: the job server from the shell. */
import type { SubmitOptions } from 'ferrymq';
import type { JobInfo, JobStatus } from 'ferrymq/model';
import {
  CLIENT_FLAGS,
  fail,
  intFlag,
  parse,
  printable,
  printTable,
  withClient,
} from './cli-support.js';

const JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled', 'expired'];

function describeJob(info: JobInfo): string {
  const parts = [`${info.id}\t${info.service}\t${info.status}\tattempts=${info.attempts}`];
  if (info.progress !== undefined) parts.push(`progress=${JSON.stringify(info.progress)}`);
  if (info.error) parts.push(`error=${info.error.code}: ${info.error.message}`);
  if (info.result) parts.push(`result=${info.result.map(printable).join('\t')}`);
  return parts.join('\t');
}

function jobJson(info: JobInfo): string {
  const { result, ...rest } = info;
  return JSON.stringify(result ? { ...rest, result: result.map(printable) } : rest);
}

/** Exit 1 with the job's error when it did not end `done`. */
function failUnlessDone(info: JobInfo): void {
  if (info.status === 'done') return;
  const code =
    info.status === 'cancelled'
      ? 'JOB_CANCELLED'
      : info.status === 'expired'
        ? 'JOB_EXPIRED'
        : 'JOB_FAILED';
  fail(`${code}: job ${info.id} ${info.status}${info.error ? ` (${info.error.message})` : ''}`, 1);
}

export async function cmdCall(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    durable: { type: 'boolean' },
    progress: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const [service, ...params] = positionals;
  if (!service || params.length === 0) fail('usage: ferry call <service> <params…>');
  const timeoutMs = intFlag(values['timeout'], 'timeout');
  await withClient(values, async (c) => {
    const frames = await c.callFrames(service, params.length === 1 ? params[0]! : params, {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(values['durable'] ? { durable: true } : {}),
      ...(values['progress']
        ? {
            onProgress: (p: unknown) => process.stderr.write(`progress ${JSON.stringify(p)}\n`),
            onPartial: (f: Buffer[], seq: number) =>
              process.stderr.write(`partial ${seq}\t${f.map(printable).join('\t')}\n`),
          }
        : {}),
    });
    if (values['json']) process.stdout.write(`${JSON.stringify(frames.map(printable))}\n`);
    else process.stdout.write(`${frames.map(printable).join('\t')}\n`);
  });
}

export async function cmdSubmit(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    priority: { type: 'string' },
    delay: { type: 'string' },
    ttl: { type: 'string' },
    dedup: { type: 'string' },
    'max-attempts': { type: 'string' },
    wait: { type: 'boolean' },
  });
  const [service, ...params] = positionals;
  if (!service || params.length === 0) fail('usage: ferry submit <service> <params…>');
  const options: SubmitOptions = {};
  const priority = intFlag(values['priority'], 'priority');
  const delayMs = intFlag(values['delay'], 'delay');
  const ttlMs = intFlag(values['ttl'], 'ttl');
  const maxAttempts = intFlag(values['max-attempts'], 'max-attempts');
  if (priority !== undefined) options.priority = priority;
  if (delayMs !== undefined) options.delayMs = delayMs;
  if (ttlMs !== undefined) options.ttlMs = ttlMs;
  if (maxAttempts !== undefined) options.maxAttempts = maxAttempts;
  if (values['dedup'] !== undefined) options.dedupKey = values['dedup'] as string;
  await withClient(values, async (c) => {
    const job = await c.submit(service, params.length === 1 ? params[0]! : params, options);
    process.stdout.write(`${job.id}\n`);
    if (values['wait']) {
      const info = await job.wait();
      process.stdout.write(`${describeJob(info)}\n`);
      failUnlessDone(info);
    }
  });
}

export async function cmdJob(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    wait: { type: 'boolean' },
    follow: { type: 'boolean' },
    cancel: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const id = positionals[0];
  if (!id) fail('usage: ferry job <id> [--wait] [--follow] [--cancel]');
  const show = (info: JobInfo): void => {
    process.stdout.write(`${values['json'] ? jobJson(info) : describeJob(info)}\n`);
  };
  await withClient(values, async (c) => {
    const job = c.job(id);
    if (values['cancel']) {
      show(await job.cancel());
      return;
    }
    if (values['follow']) {
      for await (const u of job.updates()) {
        if (u.type === 'final') show(u.job);
        else if (u.type === 'status') process.stdout.write(`status\t${u.status}\t${u.attempt}\n`);
        else if (u.type === 'progress')
          process.stdout.write(`progress\t${JSON.stringify(u.progress)}\n`);
        else process.stdout.write(`partial ${u.seq}\t${u.frames.map(printable).join('\t')}\n`);
      }
      return;
    }
    const info = values['wait'] ? await job.wait() : await job.status();
    show(info);
    if (values['wait']) failUnlessDone(info);
  });
}

export async function cmdJobs(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...CLIENT_FLAGS,
    service: { type: 'string' },
    status: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  const status = values['status'] as string | undefined;
  if (status !== undefined && !JOB_STATUSES.includes(status)) {
    fail(`CONFIG_INVALID: --status must be one of ${JOB_STATUSES.join(', ')}`);
  }
  const limit = intFlag(values['limit'], 'limit');
  await withClient(values, async (c) => {
    const list = await c.jobs({
      ...(values['service'] !== undefined ? { service: values['service'] as string } : {}),
      ...(status !== undefined ? { status: status as JobStatus } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    for (const j of list) process.stdout.write(`${values['json'] ? jobJson(j) : describeJob(j)}\n`);
  });
}

export async function cmdServices(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
  await withClient(values, async (c) => {
    const list = await c.services();
    if (values['json']) {
      process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    printTable(
      ['service', 'workers', 'idle', 'queued', 'running', 'done', 'failed', 'cancelled', 'expired'],
      list.map((s) => [
        s.name,
        String(s.workers),
        String(s.idleSlots),
        String(s.queued),
        String(s.running),
        String(s.done),
        String(s.failed),
        String(s.cancelled),
        String(s.expired),
      ]),
    );
  });
}

export async function cmdWorkers(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
  await withClient(values, async (c) => {
    const list = await c.workers();
    if (values['json']) {
      process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    const now = Date.now();
    printTable(
      ['worker', 'name', 'protocol', 'services', 'slots', 'running', 'done', 'failed', 'last job'],
      list.map((w) => [
        w.id,
        w.name,
        w.protocol,
        w.services.join(','),
        String(w.concurrency),
        String(w.running),
        String(w.completed),
        String(w.failed),
        w.lastJobAt === null ? '-' : `${((now - w.lastJobAt) / 1000).toFixed(1)}s ago`,
      ]),
    );
  });
}
