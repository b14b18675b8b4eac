/**
 * `ferry worker <service> -- <command> [args…]`: serves a service with a shell command. Each job
 * runs the command once: the params on its stdin, its stdout the result; a non-zero exit fails
 * the attempt with the tail of its stderr. Ctrl-C (or SIGTERM) stops taking jobs, lets the
 * running ones finish, then exits.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { JobFailure, type JobContext } from 'ferrymq';
import {
  clientCommand,
  connectClient,
  fail,
  positiveNumber,
  type ClientFlags,
} from './cli-support.js';

/** The end of the command's stderr kept for the job's error message, bytes. */
const STDERR_TAIL_BYTES = 2_000;
/** Most stdout a command may write as its result, bytes (a result is one message). */
const MAX_RESULT_BYTES = 8 * 1024 * 1024;
/** How long Ctrl-C waits for running jobs before giving up on them, ms. */
const DRAIN_TIMEOUT_MS = 60_000;

/** What the command of a job sees besides the environment of `ferry worker`. */
export const WORKER_JOB_ENV = ['FERRY_JOB_ID', 'FERRY_JOB_SERVICE', 'FERRY_JOB_ATTEMPT'];

interface WorkerFlags extends ClientFlags {
  concurrency?: number;
  name?: string;
}

/** Runs `argv` once for `job`; resolves with its stdout, rejects with a JobFailure. */
function runJobCommand(argv: string[], job: JobContext): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        FERRY_JOB_ID: job.id,
        FERRY_JOB_SERVICE: job.service,
        FERRY_JOB_ATTEMPT: String(job.attempt),
      },
      signal: job.signal,
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let tooLarge = false;
    let errTail = Buffer.alloc(0);
    child.stdout.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > MAX_RESULT_BYTES) {
        tooLarge = true;
        child.kill('SIGTERM');
      } else out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      errTail = Buffer.concat([errTail, d]);
      if (errTail.length > STDERR_TAIL_BYTES) errTail = errTail.subarray(-STDERR_TAIL_BYTES);
    });
    // The command may exit without reading its stdin; that is not an error of the job.
    child.stdin.on('error', () => {});
    child.stdin.end(job.params);
    child.on('error', (err) => {
      reject(new JobFailure(`cannot run ${argv[0]}: ${err.message}`, 'JOB_FAILED'));
    });
    child.on('close', (code, signal) => {
      const tail = errTail.toString('utf8').trim();
      if (tooLarge) {
        reject(new JobFailure(`result larger than ${MAX_RESULT_BYTES} bytes`, 'JOB_FAILED', false));
      } else if (code === 0) {
        resolve(Buffer.concat(out));
      } else {
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new JobFailure(`${argv[0]} ${how}${tail ? `: ${tail}` : ''}`, 'JOB_FAILED'));
      }
    });
  });
}

export function registerWorker(program: Command): void {
  clientCommand(program, 'worker', 'serve a service with a command, run once per job')
    .argument('<service>')
    .argument('<command...>', 'after --: the command and its arguments')
    .option('--concurrency <n>', 'jobs at once (default 1)', positiveNumber)
    .option('--name <name>', 'name shown by ferry workers')
    .addHelpText(
      'after',
      '\nEach job runs the command once: the job params on its stdin, its stdout is the result.\n' +
        'A non-zero exit fails the attempt (retried up to the max attempts) with the tail of\n' +
        'its stderr. The command sees FERRY_JOB_ID, FERRY_JOB_SERVICE and FERRY_JOB_ATTEMPT.\n' +
        'Ctrl-C stops taking jobs, waits for the running ones, then exits.\n\n' +
        "Example: ferry worker upper --concurrency 4 -- sh -c 'tr a-z A-Z'",
    )
    .action(async (service: string, argv: string[], o: WorkerFlags) => {
      if (argv.length === 0 || argv[0] === '') fail('CONFIG_INVALID: no command given after --');
      const client = await connectClient(o);
      const concurrency = o.concurrency ?? 1;
      const worker = client.worker(service, (job) => runJobCommand(argv, job), {
        concurrency,
        name: o.name ?? `ferry worker ${argv[0]}`,
        onError: (err, job) => {
          const text = err instanceof Error ? err.message : String(err);
          process.stderr.write(`ferry: job ${job.id} (attempt ${job.attempt}) failed: ${text}\n`);
        },
      });
      await worker.ready;
      process.stderr.write(
        `ferry: serving ${service} with ${argv.join(' ')} (concurrency ${concurrency}); Ctrl-C to stop\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          process.stderr.write(`ferry: ${signal}: finishing running jobs, then exiting\n`);
          process.once(signal, () => process.exit(130));
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await worker.close({ timeoutMs: DRAIN_TIMEOUT_MS });
      await client.close();
    });
}
