/**
 * Running the built `ferry` command as a user does: a real child process, with stdin input,
 * a long-running command watched as it prints, and the reader of stdout going away early.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_PATH, type CliResult } from './broker.js';

/** A `ferry` run gets this long before it is killed and the test fails. */
const CLI_RUN_TIMEOUT_MS = 30_000;

export interface FerryRunOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  timeoutMs?: number;
  /** Close our end of its stdout at once, as `| head` does once it has read enough. */
  closeStdout?: boolean;
}

/** Runs `ferry args…` to its end; never throws for a non-zero exit. */
export function runFerry(args: string[], options: FerryRunOptions = {}): Promise<CliResult> {
  const running = spawnFerry(args, options);
  return running.exited.then(({ code }) => ({
    code: code ?? -1,
    stdout: running.stdout(),
    stderr: running.stderr(),
  }));
}

export interface RunningFerry {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stdout (or stderr) matches; rejects after `timeoutMs` or if it exits first. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs?: number): Promise<void>;
}

/** Starts `ferry args…` and returns at once; killed with SIGKILL after the run timeout. */
export function spawnFerry(args: string[], options: FerryRunOptions = {}): RunningFerry {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const text = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  const changed = (): void => {
    for (const l of [...listeners]) l();
  };
  child.stdout.on('data', (d: Buffer) => {
    text.stdout += d.toString();
    changed();
  });
  child.stderr.on('data', (d: Buffer) => {
    text.stderr += d.toString();
    changed();
  });
  if (options.closeStdout) child.stdout.destroy();
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  let done = false;
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? CLI_RUN_TIMEOUT_MS);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      done = true;
      changed();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    exited,
    waitFor: (stream, pattern, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(text[stream])) {
            finish();
            resolve();
          } else if (done) {
            finish();
            reject(new Error(`ferry exited before ${stream} matched ${pattern}: ${text.stderr}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out waiting for ${stream} to match ${pattern}: ${text[stream]}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
  };
}
