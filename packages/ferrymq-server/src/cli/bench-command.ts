/**
 * `ferry bench queue|call`: a small load generator against a running broker. `queue` sends N
 * messages of S bytes from P producers to a durable queue while C consumers take and ack them;
 * `call` makes N calls of S bytes from P callers to C echo workers (transient jobs, or stored
 * ones with --durable). Prints the rates and the latency percentiles, labelled.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { FerryClient } from 'ferrymq';
import { FerryError } from 'ferrymq/model';
import {
  clientCommand,
  connectClient,
  endpointOf,
  positiveNumber,
  subcommand,
  type ClientFlags,
} from './cli-support.js';
import { formatMs, ProgressBar } from './output.js';

const DEFAULT_BENCH_COUNT = 10_000;
const DEFAULT_BENCH_SIZE_BYTES = 128;
/** Sends a producer keeps in flight (the SDK batches those made in one tick). */
const PRODUCER_WINDOW = 100;
/** A bench that sees no progress for this long gives up with TIMEOUT, ms. */
const BENCH_STALL_MS = 10_000;
/** The header carrying the send time, for the end-to-end latency. */
const SENT_AT_HEADER = 'bench-sent-at';

interface BenchFlags extends ClientFlags {
  count?: number;
  size?: number;
  producers?: number;
  consumers?: number;
  json?: boolean;
}

interface QueueBenchFlags extends BenchFlags {
  queue?: string;
}

interface CallBenchFlags extends BenchFlags {
  service?: string;
  durable?: boolean;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface BenchReport {
  what: string;
  count: number;
  sizeBytes: number;
  elapsedMs: number;
  rates: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

function report(r: BenchReport, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const l = r.latencyMs;
  const rates = Object.entries(r.rates)
    .map(([k, v]) => `${k} ${Math.round(v)}/s`)
    .join(', ');
  process.stdout.write(
    `${r.what}\n` +
      `${r.count} × ${r.sizeBytes} B in ${formatMs(r.elapsedMs)}: ${rates}\n` +
      `latency p50 ${formatMs(l.p50)}, p90 ${formatMs(l.p90)}, p99 ${formatMs(l.p99)}, max ${formatMs(l.max)}\n`,
  );
}

function latencies(samples: number[]): BenchReport['latencyMs'] {
  const s = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    max: s.at(-1) ?? 0,
  };
}

/** `n` split into `parts` shares that add up to `n`. */
function shares(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

/** Resolves when `done()` holds; rejects with TIMEOUT when `progress()` stalls. */
async function untilDone(done: () => boolean, progress: () => number, what: string): Promise<void> {
  let last = progress();
  let lastAt = Date.now();
  while (!done()) {
    await new Promise((r) => setTimeout(r, 20));
    const now = progress();
    if (now !== last) {
      last = now;
      lastAt = Date.now();
    } else if (Date.now() - lastAt > BENCH_STALL_MS) {
      throw new FerryError('TIMEOUT', `bench: no ${what} for ${BENCH_STALL_MS} ms (${now} so far)`);
    }
  }
}

async function benchQueue(o: QueueBenchFlags): Promise<void> {
  const count = o.count ?? DEFAULT_BENCH_COUNT;
  const size = o.size ?? DEFAULT_BENCH_SIZE_BYTES;
  const queue = o.queue ?? `bench.${randomBytes(4).toString('hex')}`;
  const clients: FerryClient[] = [];
  const connectOne = async (): Promise<FerryClient> => {
    const c = await connectClient(o);
    clients.push(c);
    return c;
  };
  try {
    const admin = await connectOne();
    const sync = (await admin.stats()).broker.storage.sync;
    const body = Buffer.alloc(size, 'x');
    const samples: number[] = [];
    const bar = new ProgressBar(`bench ${queue}`, count);
    const consumers = await Promise.all(
      Array.from({ length: o.consumers ?? 1 }, async () => (await connectOne()).consume(queue)),
    );
    for (const consumer of consumers) {
      void (async () => {
        for await (const m of consumer) {
          samples.push(
            performance.timeOrigin + performance.now() - Number(m.headers[SENT_AT_HEADER]),
          );
          bar.tick();
          // Not awaited: acks of one tick go out together, as a real consumer's would.
          m.ack().catch(() => {});
        }
      })().catch(() => {});
    }
    const producers = await Promise.all(
      shares(count, o.producers ?? 1).map(async (n) => ({ c: await connectOne(), n })),
    );
    const started = performance.now();
    let sent = 0;
    let sentAt = started;
    await Promise.all(
      producers.map(async ({ c, n }) => {
        for (let i = 0; i < n; i += PRODUCER_WINDOW) {
          const batch = Math.min(PRODUCER_WINDOW, n - i);
          await Promise.all(
            Array.from({ length: batch }, () =>
              c.send(queue, body, {
                headers: { [SENT_AT_HEADER]: String(performance.timeOrigin + performance.now()) },
              }),
            ),
          );
          sent += batch;
        }
        sentAt = performance.now();
      }),
    );
    await untilDone(
      () => samples.length >= count,
      () => samples.length,
      'message received',
    );
    const elapsedMs = performance.now() - started;
    bar.finish();
    await Promise.all(consumers.map((c) => c.cancel()));
    await admin.purge(queue);
    report(
      {
        what:
          `durable queue ${queue} at ${endpointOf(o)} (stored, sync=${sync}): ` +
          `${producers.length} producer(s), ${consumers.length} consumer(s); latency is send → receive`,
        count,
        sizeBytes: size,
        elapsedMs,
        rates: {
          sent: (sent * 1000) / (sentAt - started),
          'received+acked': (count * 1000) / elapsedMs,
        },
        latencyMs: latencies(samples),
      },
      o.json,
    );
  } finally {
    await Promise.all(clients.map((c) => c.close({ timeoutMs: 1_000 }).catch(() => {})));
  }
}

async function benchCall(o: CallBenchFlags): Promise<void> {
  const count = o.count ?? DEFAULT_BENCH_COUNT;
  const size = o.size ?? DEFAULT_BENCH_SIZE_BYTES;
  const service = o.service ?? `bench.echo.${randomBytes(4).toString('hex')}`;
  const clients: FerryClient[] = [];
  try {
    if (o.service === undefined) {
      // Our own echo workers, one client each.
      for (let i = 0; i < (o.consumers ?? 1); i++) {
        const w = await connectClient(o);
        clients.push(w);
        await w.worker(service, (job) => job.params, { concurrency: 16 }).ready;
      }
    }
    const callers: FerryClient[] = [];
    for (let i = 0; i < (o.producers ?? 1); i++) callers.push(await connectClient(o));
    clients.push(...callers);
    const params = Buffer.alloc(size, 'x');
    const samples: number[] = [];
    const bar = new ProgressBar(`bench ${service}`, count);
    const started = performance.now();
    await Promise.all(
      shares(count, callers.length).map(async (n, i) => {
        for (let k = 0; k < n; k++) {
          const t0 = performance.now();
          await callers[i]!.call(service, params, o.durable ? { durable: true } : {});
          samples.push(performance.now() - t0);
          bar.tick();
        }
      }),
    );
    const elapsedMs = performance.now() - started;
    bar.finish();
    report(
      {
        what:
          `${o.durable ? 'durable (stored) jobs' : 'transient (in-memory) calls'} to ${service} at ${endpointOf(o)}: ` +
          `${callers.length} caller(s) one call at a time, ` +
          `${o.service === undefined ? `${o.consumers ?? 1} echo worker(s) in this process` : 'its own workers'}; ` +
          'latency is the call round trip',
        count,
        sizeBytes: size,
        elapsedMs,
        rates: { calls: (count * 1000) / elapsedMs },
        latencyMs: latencies(samples),
      },
      o.json,
    );
  } finally {
    await Promise.all(clients.map((c) => c.close({ timeoutMs: 1_000 }).catch(() => {})));
  }
}

export function registerBench(program: Command): void {
  const bench = subcommand(program, 'bench', 'a small load generator (queue or call)');
  const common = (c: Command): Command =>
    c
      .option('--count <n>', `messages or calls (default ${DEFAULT_BENCH_COUNT})`, positiveNumber)
      .option('--size <bytes>', `body size (default ${DEFAULT_BENCH_SIZE_BYTES})`, positiveNumber)
      .option('--json', 'the result as one JSON object');
  common(clientCommand(bench, 'queue', 'send and consume through a durable queue'))
    .option('--queue <name>', 'queue to use (default bench.<random>; purged after)')
    .option('--producers <n>', 'sending clients (default 1)', positiveNumber)
    .option('--consumers <n>', 'consuming clients (default 1)', positiveNumber)
    .action(benchQueue);
  common(clientCommand(bench, 'call', 'call a service: round trips through the job server'))
    .option('--service <name>', 'call this service (its workers must run); default: our echo')
    .option('--producers <n>', 'calling clients (default 1)', positiveNumber)
    .option('--consumers <n>', 'echo workers started here (default 1)', positiveNumber)
    .option('--durable', 'durable (stored) jobs instead of transient calls')
    .action(benchCall);
}
