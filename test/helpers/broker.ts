/** Test helpers: a real broker on tcp://127.0.0.1:* with a fresh data folder; waiting for conditions. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect, type FerryClient } from 'ferrymq';
import { loadConfig, startServer, type FerryConfig, type RunningServer } from 'ferrymq-server';
import { PG_TEST_URL, storeSchemaFor } from './postgres.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI_PATH = path.join(
  REPO_ROOT,
  'packages',
  'ferrymq-server',
  'dist',
  'cli',
  'main.js',
);
const execFileAsync = promisify(execFile);

export function tmpDir(prefix = 'ferry-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestBroker {
  server: RunningServer;
  endpoint: string;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * With FERRY_TEST_STORE=postgres (the suites under test/integration/on-postgres), brokers
 * started here keep their data in the local PostgreSQL: one schema per data folder, so a
 * broker restarted on the same folder finds its data again.
 */
function storeFlags(dataDir: string): Record<string, string> {
  if (process.env.FERRY_TEST_STORE !== 'postgres') return {};
  return { store: PG_TEST_URL, 'store-schema': storeSchemaFor(dataDir) };
}

/** Starts a broker in this process. `flags` are CLI flag names → values (e.g. {'ack-timeout': '200'}). */
export async function startBroker(
  flags: Record<string, string> = {},
  extra: Partial<FerryConfig> = {},
): Promise<TestBroker> {
  const dataDir = flags['data'] ?? tmpDir();
  const config = {
    ...loadConfig({
      // The HTTP gateway is off unless a test asks for it (`http: '127.0.0.1:0'`).
      flags: {
        bind: 'tcp://127.0.0.1:*',
        'log-level': 'silent',
        http: 'off',
        ...storeFlags(dataDir),
        ...flags,
        data: dataDir,
      },
    }),
    ...extra,
  };
  const server = await startServer(config);
  return {
    server,
    endpoint: server.endpoint,
    dataDir,
    stop: () => server.close(),
  };
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls until `cond` holds; throws with `what` after the timeout. Never a fixed sleep. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  options: WaitOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 5;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface ChildBroker {
  child: ChildProcess;
  endpoint: string;
  /** Everything the broker wrote to stderr so far. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `ferry start` as a child process; resolves once it printed its endpoint. */
export async function spawnBroker(args: string[], timeoutMs = 20_000): Promise<ChildBroker> {
  // The HTTP gateway is off unless the test passes --http.
  const http = args.includes('--http') ? [] : ['--no-http'];
  const data = args[args.indexOf('--data') + 1];
  const store =
    data !== undefined && args.includes('--data') && !args.includes('--store')
      ? Object.entries(storeFlags(data)).flatMap(([k, v]) => [`--${k}`, v])
      : [];
  const child = spawn(
    process.execPath,
    [CLI_PATH, 'start', '--log-level', 'warn', ...http, ...store, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start: ${err}`)), timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before starting: ${err}`));
    });
  });
  return { child, endpoint, stderr: () => err, exited };
}

/** Kills a child broker with SIGKILL (as a crash would) and waits until it is gone. */
export async function killHard(b: ChildBroker): Promise<void> {
  b.child.kill('SIGKILL');
  const { signal } = await b.exited;
  if (signal !== 'SIGKILL')
    throw new Error(`the broker exited with ${signal ?? 'a code'}, not SIGKILL`);
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for restarts on the same endpoint). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `ferry` command; never throws for a non-zero exit. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

/**
 * Brokers and clients a test file opens, closed together by `closeAll()` (call it in `after`).
 * `broker()` starts an in-process broker; `client()` connects with a short heartbeat.
 */
export class TestResources {
  readonly brokers: TestBroker[] = [];
  readonly clients: FerryClient[] = [];

  async broker(flags: Record<string, string> = {}): Promise<TestBroker> {
    const b = await startBroker(flags);
    this.brokers.push(b);
    return b;
  }

  async client(endpoint: string, heartbeatMs = 200): Promise<FerryClient> {
    const c = await connect(endpoint, { heartbeatMs, requestTimeoutMs: 20_000 });
    this.clients.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    for (const c of this.clients.splice(0)) await c.close({ timeoutMs: 500 }).catch(() => {});
    for (const b of this.brokers.splice(0)) await b.stop().catch(() => {});
  }
}
