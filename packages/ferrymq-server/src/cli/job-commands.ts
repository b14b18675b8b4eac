/** `ferry call|submit|job|jobs|services|workers`: the job server from the shell. */
import type { Command } from 'commander';
import type { FerryClient, SubmitOptions } from 'ferrymq';
import { JOB_STATUSES, type JobInfo, type JobStatus } from 'ferrymq/model';
import {
  clientCommand,
  EXIT_FAILURE,
  fail,
  oneOf,
  positiveNumber,
  printable,
  readBodies,
  WAITING_HINT_AFTER_MS,
  wholeNumber,
  withClient,
  type ClientFlags,
} from './cli-support.js';
import { formatMs, printJson, printListing, printTable } from './output.js';

interface JsonFlags extends ClientFlags {
  json?: boolean;
}

function describeJob(info: JobInfo): string {
  const parts = [`${info.id}\t${info.service}\t${info.status}\tattempts=${info.attempts}`];
  if (info.progress !== undefined) parts.push(`progress=${JSON.stringify(info.progress)}`);
  if (info.error) parts.push(`error=${info.error.code}: ${info.error.message}`);
  if (info.result) parts.push(`result=${info.result.map(printable).join('\t')}`);
  return parts.join('\t');
}

function jobJson(info: JobInfo): object {
  const { result, ...rest } = info;
  return result ? { ...rest, result: result.map(printable) } : rest;
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
  fail(
    `${code}: job ${info.id} ${info.status}${info.error ? ` (${info.error.message})` : ''}`,
    EXIT_FAILURE,
  );
}

/** Says once on stderr when no worker serves `service`, so a wait is not silent. */
function hintIfNoWorker(c: FerryClient, service: string): NodeJS.Timeout {
  return setTimeout(() => {
    void c
      .services()
      .then((list) => {
        const s = list.find((x) => x.name === service);
        if (s === undefined || s.workers === 0) {
          process.stderr.write(
            `ferry: no worker serves ${service} yet; the job waits queued. ` +
              `Start one, e.g. ferry worker ${service} -- <command>\n`,
          );
        }
      })
      .catch(() => {});
  }, WAITING_HINT_AFTER_MS);
}

/** --timeout bounds `--wait` too (TIMEOUT, exit 1); without it the wait has no end. */
function waitOptions(o: ClientFlags): { timeoutMs?: number } {
  return o.timeout !== undefined ? { timeoutMs: o.timeout } : {};
}

interface CallFlags extends JsonFlags {
  durable?: boolean;
  progress?: boolean;
}

interface SubmitFlags extends ClientFlags {
  priority?: number;
  delay?: number;
  ttl?: number;
  dedup?: string;
  maxAttempts?: number;
  wait?: boolean;
}

function registerCallAndSubmit(program: Command): void {
  clientCommand(program, 'call', 'run a job and print its result')
    .argument('<service>')
    .argument('<params...>', "frames: text, '-' for stdin, '@path' for a file")
    .option('--durable', 'a durable job (survives a broker restart)')
    .option('--progress', 'show progress and partial results on stderr')
    .option('--json', 'the result frames as a JSON array')
    .action(async (service: string, params: string[], o: CallFlags) => {
      await withClient(o, async (c) => {
        const hint = hintIfNoWorker(c, service);
        const frames = await c
          .callFrames(service, readBodies(params), {
            ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}),
            ...(o.durable ? { durable: true } : {}),
            ...(o.progress
              ? {
                  onProgress: (p: unknown) =>
                    process.stderr.write(`progress ${JSON.stringify(p)}\n`),
                  onPartial: (f: Buffer[], seq: number) =>
                    process.stderr.write(`partial ${seq}\t${f.map(printable).join('\t')}\n`),
                }
              : {}),
          })
          .finally(() => clearTimeout(hint));
        if (o.json) process.stdout.write(`${JSON.stringify(frames.map(printable))}\n`);
        else process.stdout.write(`${frames.map(printable).join('\t')}\n`);
      });
    });

  clientCommand(program, 'submit', 'queue a job; print its id (and with --wait its outcome)')
    .argument('<service>')
    .argument('<params...>', "frames: text, '-' for stdin, '@path' for a file")
    .option('--priority <n>', 'priority 0–255 (higher first)', wholeNumber)
    .option('--delay <ms>', 'run after this long', wholeNumber)
    .option('--ttl <ms>', 'expire if not started within this', wholeNumber)
    .option('--dedup <key>', 'deduplication key')
    .option('--max-attempts <n>', 'runs before it is failed', positiveNumber)
    .option('--wait', 'wait for the outcome (exit 1 unless done)')
    .action(async (service: string, params: string[], o: SubmitFlags) => {
      const options: SubmitOptions = {
        ...(o.priority !== undefined ? { priority: o.priority } : {}),
        ...(o.delay !== undefined ? { delayMs: o.delay } : {}),
        ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}),
        ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
        ...(o.dedup !== undefined ? { dedupKey: o.dedup } : {}),
      };
      await withClient(o, async (c) => {
        const job = await c.submit(service, readBodies(params), options);
        process.stdout.write(`${job.id}\n`);
        if (!o.wait) return;
        const hint = hintIfNoWorker(c, service);
        const info = await job.wait(waitOptions(o)).finally(() => clearTimeout(hint));
        process.stdout.write(`${describeJob(info)}\n`);
        failUnlessDone(info);
      });
    });
}

interface JobFlags extends JsonFlags {
  wait?: boolean;
  follow?: boolean;
  cancel?: boolean;
}

interface JobsFlags extends JsonFlags {
  service?: string;
  status?: JobStatus;
  limit?: number;
}

function registerJob(program: Command): void {
  clientCommand(program, 'job', 'show a job; --wait, --follow or --cancel it')
    .argument('<id>')
    .option('--wait', 'wait for the outcome (exit 1 unless done)')
    .option('--follow', 'print status, progress and partial results as they come')
    .option('--cancel', 'cancel the job')
    .option('--json', 'the job as JSON')
    .action(async (id: string, o: JobFlags) => {
      const show = (info: JobInfo): void => {
        process.stdout.write(`${o.json ? JSON.stringify(jobJson(info)) : describeJob(info)}\n`);
      };
      await withClient(o, async (c) => {
        const job = c.job(id);
        if (o.cancel) return show(await job.cancel());
        if (o.follow) {
          for await (const u of job.updates()) {
            if (u.type === 'final') show(u.job);
            else if (u.type === 'status')
              process.stdout.write(`status\t${u.status}\t${u.attempt}\n`);
            else if (u.type === 'progress')
              process.stdout.write(`progress\t${JSON.stringify(u.progress)}\n`);
            else process.stdout.write(`partial ${u.seq}\t${u.frames.map(printable).join('\t')}\n`);
          }
          return;
        }
        const info = o.wait ? await job.wait(waitOptions(o)) : await job.status();
        show(info);
        if (o.wait) failUnlessDone(info);
      });
    });

  clientCommand(program, 'jobs', 'recent jobs, newest first')
    .option('--service <name>', 'only this service')
    .option('--status <status>', `only ${JOB_STATUSES.join('|')}`, oneOf(JOB_STATUSES))
    .option('--limit <n>', 'at most n jobs', positiveNumber)
    .option('--json', 'a JSON array of jobs')
    .action(async (o: JobsFlags) => {
      await withClient(o, async (c) => {
        const list = await c.jobs({
          ...(o.service !== undefined ? { service: o.service } : {}),
          ...(o.status !== undefined ? { status: o.status } : {}),
          ...(o.limit !== undefined ? { limit: o.limit } : {}),
        });
        if (o.json) return printJson(list.map(jobJson));
        const now = Date.now();
        printListing(
          ['id', 'service', 'status', 'attempts', 'age', 'outcome'],
          list.map((j) => [
            j.id,
            j.service,
            j.status,
            String(j.attempts),
            formatMs(Math.max(0, now - j.createdAt)),
            j.error
              ? `${j.error.code}: ${j.error.message}`.slice(0, 60)
              : j.result && j.result.length > 0
                ? j.result.map(printable).join(' | ').slice(0, 60)
                : '-',
          ]),
          'no jobs',
        );
      });
    });
}

function registerServicesAndWorkers(program: Command): void {
  clientCommand(program, 'services', 'services with their workers and job counts')
    .option('--json', 'a JSON array of services')
    .action(async (o: JsonFlags) => {
      await withClient(o, async (c) => {
        const list = await c.services();
        if (o.json) return printJson(list);
        printTable(
          [
            'service',
            'workers',
            'idle',
            'queued',
            'running',
            'done',
            'failed',
            'cancelled',
            'expired',
          ],
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
    });

  clientCommand(program, 'workers', 'connected workers')
    .option('--json', 'a JSON array of workers')
    .action(async (o: JsonFlags) => {
      await withClient(o, async (c) => {
        const list = await c.workers();
        if (o.json) return printJson(list);
        const now = Date.now();
        printTable(
          [
            'worker',
            'name',
            'protocol',
            'services',
            'slots',
            'running',
            'done',
            'failed',
            'last job',
          ],
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
    });
}

export function registerJobCommands(program: Command): void {
  registerCallAndSubmit(program);
  registerJob(program);
  registerServicesAndWorkers(program);
}
