/**
 * The broker under test, as a child process: `node packages/ferrymq-server/dist/cli/main.js start` on a free
 * loopback port with a fresh data dir. Its memory is sampled from /proc/<pid>/status every
 * ~100 ms. Every child started here is killed when the bench exits, however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The broker's CLI: this build's, or another build's (BENCH_BROKER_CLI) for A/B runs. */
export const CLI_PATH =
  process.env['BENCH_BROKER_CLI'] ??
  path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '../../packages/ferrymq-server/dist/cli/main.js',
  );
const RSS_SAMPLE_MS = 100;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 20_000;

const live = new Set<ChildProcess>();

/** Kills every broker child still running (SIGKILL); safe to call from an 'exit' handler. */
export function killAllBrokers(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

/** A free TCP port on 127.0.0.1 (bound then released; the broker binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export interface MemSample {
  rssKiB: number;
  hwmKiB: number;
  /** RSS split: anonymous (heaps: V8, SQLite page cache, ZeroMQ buffers), file-backed, shmem. */
  anonKiB: number;
  fileKiB: number;
  shmemKiB: number;
}

/** VmRSS and VmHWM of a process, KiB; null once it is gone. */
export function readMem(pid: number): MemSample | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(text);
  if (!rss || !hwm) return null;
  const kib = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssKiB: Number(rss[1]),
    hwmKiB: Number(hwm[1]),
    anonKiB: kib('RssAnon'),
    fileKiB: kib('RssFile'),
    shmemKiB: kib('RssShmem'),
  };
}

/** Tracks the largest sampled VmRSS since the last reset, and the kernel's VmHWM. */
export class MemSampler {
  private timer: NodeJS.Timeout | undefined;
  peakRssKiB = 0;
  lastRssKiB = 0;
  hwmKiB = 0;
  samples = 0;
  /** The sample with the largest RSS so far (its anon / file / shmem split). */
  peakSample: MemSample | undefined;

  constructor(private readonly pid: number) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
    this.timer.unref();
  }

  sample(): void {
    const m = readMem(this.pid);
    if (!m) return;
    this.samples++;
    this.lastRssKiB = m.rssKiB;
    if (m.rssKiB > this.peakRssKiB) this.peakRssKiB = m.rssKiB;
    if (!this.peakSample || m.rssKiB > this.peakSample.rssKiB) this.peakSample = m;
    if (m.hwmKiB > this.hwmKiB) this.hwmKiB = m.hwmKiB;
  }

  /** Peak sampled RSS since the previous call (a phase marker); the sampler keeps running. */
  takePhasePeak(): number {
    this.sample();
    const p = this.peakRssKiB;
    this.peakRssKiB = this.lastRssKiB;
    return p;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export interface BrokerOptions {
  dataDir: string;
  sync: string;
  /** Extra arguments for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Extra `ferry start` flags. */
  flags?: string[];
}

export interface BrokerChild {
  readonly endpoint: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly mem: MemSampler;
  /** The last lines the broker wrote to stderr (for failure reports). */
  stderrTail(): string;
  /** SIGTERM, wait for a clean exit (so --cpu-prof profiles get written), else SIGKILL. */
  stop(): Promise<number | null>;
}

export async function startBroker(options: BrokerOptions): Promise<BrokerChild> {
  const port = await freePort();
  const endpoint = `tcp://127.0.0.1:${port}`;
  const args = [
    ...(options.nodeArgs ?? []),
    CLI_PATH,
    'start',
    '--data',
    options.dataDir,
    '--bind',
    endpoint,
    '--sync',
    options.sync,
    '--log-level',
    'warn',
    // The broker alone: the HTTP gateway (on by default) is a separate component, measured apart.
    ...(options.flags?.some((f) => f.startsWith('--http')) ? [] : ['--no-http']),
    ...(options.flags ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let exited = false;
  let exitCode: number | null = null;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      exited = true;
      exitCode = code;
      live.delete(child);
      resolve();
    });
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`broker did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.stdout.on('data', (s: string) => {
        stdout += s;
        if (stdout.includes('ferry listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`broker exited before listening (code ${code}, ${signal}): ${stderr}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const pid = child.pid!;
  const mem = new MemSampler(pid);
  mem.start();
  let stopping: Promise<number | null> | undefined;
  return {
    endpoint,
    pid,
    dataDir: options.dataDir,
    mem,
    stderrTail: () => stderr,
    stop() {
      stopping ??= (async () => {
        mem.sample();
        mem.stop();
        if (!exited) {
          child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            exitedP,
            new Promise<void>((r) => {
              timer = setTimeout(r, STOP_TIMEOUT_MS);
            }),
          ]);
          clearTimeout(timer);
          if (!exited) {
            child.kill('SIGKILL');
            await exitedP;
          }
        }
        return exitCode;
      })();
      return stopping;
    },
  };
}

/** Bytes a folder takes on disk (allocated blocks) and its apparent size. */
export function diskUsage(dir: string): { allocated: number; apparent: number } {
  let allocated = 0;
  let apparent = 0;
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p)) walk(path.join(p, e));
      return;
    }
    allocated += st.blocks * 512;
    apparent += st.size;
  };
  walk(dir);
  return { allocated, apparent };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN if gone. */
export function cpuSeconds(pid: number): number {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux platform Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;
