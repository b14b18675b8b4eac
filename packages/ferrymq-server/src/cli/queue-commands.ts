/** `ferry send|consume|stats|queues|peek|dlq|purge`: durable queues from the shell. */
import type { Command } from 'commander';
import type { FerryClient, PeekedMessage, SendOptions } from 'ferrymq';
import { MESSAGE_STATES, quantileOf, type MessageState } from 'ferrymq/model';
import {
  clientCommand,
  EXIT_FAILURE,
  fail,
  headerFlag,
  oneOf,
  positiveNumber,
  printable,
  readBodies,
  readInput,
  subcommand,
  WAITING_HINT_AFTER_MS,
  wholeNumber,
  withClient,
  type ClientFlags,
} from './cli-support.js';
import { formatMs, printJson, printListing, printTable, ProgressBar } from './output.js';

/** Most bytes `send --file` reads (the lines are held in memory), bytes. */
const MAX_BULK_FILE_BYTES = 256 * 1024 * 1024;
/** Messages per SEND request in `send --file`. */
const BULK_SEND_BATCH = 500;
/** Dead letters per DLQ_REDRIVE request when redriving a whole queue. */
const REDRIVE_BATCH = 1_000;
/** Body text shown in a table cell, characters. */
const BODY_CELL_CHARS = 60;

interface SendFlags extends ClientFlags {
  priority?: number;
  delay?: number;
  ttl?: number;
  dedup?: string;
  header?: Record<string, string>;
  file?: string;
}

function sendOptions(o: SendFlags): SendOptions {
  return {
    ...(o.header ? { headers: o.header } : {}),
    ...(o.priority !== undefined ? { priority: o.priority } : {}),
    ...(o.delay !== undefined ? { delayMs: o.delay } : {}),
    ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}),
    ...(o.dedup !== undefined ? { dedupKey: o.dedup } : {}),
  };
}

async function sendFile(c: FerryClient, queue: string, file: string, o: SendFlags): Promise<void> {
  const text = readInput(file, MAX_BULK_FILE_BYTES).toString('utf8');
  const lines = text.split('\n').filter((l) => l !== '');
  if (o.dedup !== undefined) fail('CONFIG_INVALID: --dedup cannot be used with --file');
  const options = sendOptions(o);
  const bar = new ProgressBar(`send ${queue}`, lines.length);
  for (let i = 0; i < lines.length; i += BULK_SEND_BATCH) {
    const batch = lines.slice(i, i + BULK_SEND_BATCH).map((body) => ({ body, ...options }));
    await c.sendBatch(queue, batch);
    bar.tick(batch.length);
  }
  bar.finish();
  process.stdout.write(`sent ${lines.length} message(s) to ${queue}\n`);
}

function registerSend(program: Command): void {
  clientCommand(program, 'send', 'store a message (or one per line of --file)')
    .argument('<queue>')
    .argument('[body...]', "frames: text, '-' for stdin, '@path' for a file")
    .option('--priority <n>', 'priority 0–255 (higher first)', wholeNumber)
    .option('--delay <ms>', 'deliver after this long', wholeNumber)
    .option('--ttl <ms>', 'drop if not consumed within this', wholeNumber)
    .option('--dedup <key>', 'deduplication key')
    .option('--header <k=v>', 'a header (repeatable)', headerFlag)
    .option('--file <path>', "one message per non-empty line ('-' for stdin)")
    .action(async (queue: string, bodies: string[], o: SendFlags, cmd: Command) => {
      if (o.file !== undefined && bodies.length > 0) cmd.error('give bodies or --file, not both');
      if (o.file === undefined && bodies.length === 0)
        cmd.error('missing body (text, -, @file or --file)');
      await withClient(o, async (c) => {
        if (o.file !== undefined) return sendFile(c, queue, o.file, o);
        const id = await c.send(queue, readBodies(bodies), sendOptions(o));
        process.stdout.write(`${id}\n`);
      });
    });
}

interface ConsumeFlags extends ClientFlags {
  count?: number;
  prefetch?: number;
  ack: boolean;
  json?: boolean;
}

/** Says once on stderr why nothing arrives yet: what the queue holds. */
async function waitingHint(c: FerryClient, queue: string): Promise<void> {
  const s = await c.stats(queue).catch(() => undefined);
  const q = s?.queues.find((x) => x.name === queue);
  const what = q
    ? `ready ${q.ready}, leased ${q.leased} (to other consumers), scheduled ${q.scheduled}, dead ${q.dead}`
    : 'the queue does not exist yet';
  process.stderr.write(
    `ferry: waiting for messages on ${queue}: ${what}; nothing sends to it yet? (Ctrl-C to stop)\n`,
  );
}

function registerConsume(program: Command): void {
  clientCommand(program, 'consume', 'receive messages, print them, ack them')
    .argument('<queue>')
    .option('--count <n>', 'stop after n messages', wholeNumber)
    .option('--prefetch <n>', 'messages held at once', positiveNumber)
    .option('--no-ack', 'do not ack (the messages are redelivered later)')
    .option('--json', 'one JSON object per message (JSON lines)')
    .addHelpText(
      'after',
      '\n--timeout <ms> also ends consume after that long without a message\n' +
        '(exit 0, or exit 1 with TIMEOUT when --count was not reached).',
    )
    .action(async (queue: string, o: ConsumeFlags) => {
      const count = o.count ?? Infinity;
      // Never hold more than will be handled: at most --count messages prefetched.
      const prefetch = o.prefetch ?? (Number.isFinite(count) ? Math.min(count, 100) : undefined);
      let n = 0;
      let timedOut = false;
      await withClient(o, async (c) => {
        if (count === 0) return;
        const consumer = c.consume(queue, prefetch !== undefined ? { prefetch } : {});
        const stop = (): void => void consumer.cancel();
        process.once('SIGINT', stop);
        const hint = setTimeout(() => {
          if (n === 0) void waitingHint(c, queue);
        }, WAITING_HINT_AFTER_MS);
        let idle: NodeJS.Timeout | undefined;
        const armIdle = (): void => {
          if (o.timeout === undefined) return;
          clearTimeout(idle);
          idle = setTimeout(() => {
            timedOut = true;
            stop();
          }, o.timeout);
        };
        armIdle();
        try {
          for await (const m of consumer) {
            armIdle();
            const frames = m.frames.map(printable);
            process.stdout.write(
              o.json
                ? `${JSON.stringify({ id: m.id, attempts: m.attempts, headers: m.headers, frames })}\n`
                : `${m.id}\t${frames.join('\t')}\n`,
            );
            if (o.ack) await m.ack();
            if (++n >= count) break;
          }
        } finally {
          clearTimeout(hint);
          clearTimeout(idle);
          process.off('SIGINT', stop);
        }
      });
      if (timedOut && Number.isFinite(count) && n < count)
        fail(
          `TIMEOUT: got ${n} of ${count} message(s) from ${queue} within ${o.timeout} ms`,
          EXIT_FAILURE,
        );
    });
}

interface JsonFlags extends ClientFlags {
  json?: boolean;
}

function registerStats(program: Command): void {
  clientCommand(program, 'stats', 'broker, storage, jobs and per-queue numbers')
    .argument('[queue]', 'only this queue')
    .option('--json', 'the whole snapshot as JSON')
    .action(async (queue: string | undefined, o: JsonFlags) => {
      await withClient(o, async (c) => {
        const s = await c.stats(queue);
        if (o.json) return printJson(s);
        const b = s.broker;
        const st = b.storage;
        const p99 = quantileOf(st.commitMs, 0.99);
        const byDialect = Object.entries(s.connections)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
        process.stdout.write(
          `broker: up ${Math.round(b.uptimeMs / 1000)} s, ${b.connections} connections (${byDialect}), ` +
            `${b.consumers} consumers, ${b.queues} queues\n` +
            `storage: ${st.backend} sync=${st.sync} ${Math.round(st.sizeBytes / 1024)} KiB, ` +
            `${st.commits} commits, avg batch ${st.avgBatchOps.toFixed(1)} ops, ` +
            `avg commit ${st.avgCommitMs.toFixed(2)} ms` +
            (p99 !== null ? `, p99 ≤ ${p99} ms` : '') +
            `, ${st.fsyncs} fsyncs\n`,
        );
        if (s.cluster) {
          // A shared store: queue and job numbers below are the whole cluster's.
          const now = Date.now();
          const nodes = s.cluster.nodes
            .map((n) => `${n.id}${n.self ? ' (this)' : ''} ${Math.max(0, now - n.heartbeatAt)} ms`)
            .join(', ');
          process.stdout.write(`cluster: ${s.cluster.nodes.length} brokers: ${nodes}\n`);
        }
        const services = s.services;
        if (services.length > 0 || s.workers.total > 0) {
          const sum = (k: 'queued' | 'running' | 'done' | 'failed'): number =>
            services.reduce((n, x) => n + x[k], 0);
          process.stdout.write(
            `jobs: ${services.length} services, ${s.workers.total} workers, ` +
              `${sum('queued')} queued, ${sum('running')} running, ${sum('done')} done, ${sum('failed')} failed\n`,
          );
        }
        printTable(
          ['queue', 'depth', 'ready', 'leased', 'scheduled', 'dead', 'in/s', 'ack/s', 'oldest'],
          s.queues.map((q) => [
            q.name,
            String(q.depth),
            String(q.ready),
            String(q.leased),
            String(q.scheduled),
            String(q.dead),
            q.enqueueRate.toFixed(1),
            q.ackRate.toFixed(1),
            q.oldestAgeMs === null ? '-' : `${(q.oldestAgeMs / 1000).toFixed(1)}s`,
          ]),
        );
      });
    });
}

function registerQueues(program: Command): void {
  clientCommand(program, 'queues', 'the queue names, one a line')
    .option('--json', 'a JSON array of names')
    .action(async (o: JsonFlags) => {
      await withClient(o, async (c) => {
        const names = await c.queues();
        if (o.json) printJson(names);
        else for (const q of names) process.stdout.write(`${q}\n`);
      });
    });
}

function cell(frames: Buffer[]): string {
  const text = frames.map(printable).join(' | ').replace(/\s+/g, ' ');
  return text.length > BODY_CELL_CHARS ? `${text.slice(0, BODY_CELL_CHARS - 1)}…` : text;
}

function printMessages(msgs: PeekedMessage[], json: boolean | undefined): void {
  if (json) {
    printJson(
      msgs.map(({ body: _b, frames, ...meta }) => ({ ...meta, frames: frames.map(printable) })),
    );
    return;
  }
  const now = Date.now();
  printListing(
    ['id', 'state', 'attempts', 'priority', 'age', 'reason', 'body'],
    msgs.map((m) => [
      m.id,
      m.state,
      String(m.attempts),
      String(m.priority),
      formatMs(Math.max(0, now - m.enqueuedAt)),
      m.deadReason ?? '-',
      cell(m.frames),
    ]),
    'no messages',
  );
}

interface PeekFlags extends JsonFlags {
  limit?: number;
  state?: MessageState;
}

function registerPeek(program: Command): void {
  clientCommand(program, 'peek', 'look at messages without taking them')
    .argument('<queue>')
    .option('--limit <n>', 'at most n messages', positiveNumber)
    .option(`--state <state>`, `only ${MESSAGE_STATES.join('|')}`, oneOf(MESSAGE_STATES))
    .option('--json', 'a JSON array of messages')
    .action(async (queue: string, o: PeekFlags) => {
      await withClient(o, async (c) => {
        const msgs = await c.peek(queue, {
          ...(o.limit !== undefined ? { limit: o.limit } : {}),
          ...(o.state !== undefined ? { state: o.state } : {}),
        });
        printMessages(msgs, o.json);
      });
    });
}

interface RedriveFlags extends ClientFlags {
  limit?: number;
  id?: string[];
}

/** Redrives in batches with a progress bar; bounded by the dead count seen at the start. */
async function redriveAll(
  c: FerryClient,
  queue: string,
  limit: number | undefined,
): Promise<number> {
  const q = (await c.stats(queue)).queues.find((x) => x.name === queue);
  const target = Math.min(limit ?? Infinity, q?.dead ?? 0);
  const bar = new ProgressBar(`redrive ${queue}`, target);
  let moved = 0;
  while (moved < target) {
    const n = await c.redrive(queue, { limit: Math.min(REDRIVE_BATCH, target - moved) });
    if (n === 0) break;
    moved += n;
    bar.tick(n);
  }
  bar.finish();
  return moved;
}

function registerDlq(program: Command): void {
  const dlq = subcommand(program, 'dlq', 'dead letters: list or redrive them');
  clientCommand(dlq, 'list', 'the dead letters of a queue')
    .argument('<queue>')
    .option('--limit <n>', 'at most n messages', positiveNumber)
    .option('--json', 'a JSON array of messages')
    .action(async (queue: string, o: PeekFlags) => {
      await withClient(o, async (c) => {
        const msgs = await c.deadLetters(queue, o.limit !== undefined ? { limit: o.limit } : {});
        printMessages(msgs, o.json);
      });
    });
  clientCommand(dlq, 'redrive', 'put dead letters back as ready')
    .argument('<queue>')
    .option('--limit <n>', 'at most n messages', positiveNumber)
    .option('--id <id>', 'only this message (repeatable)', (v: string, p: string[] = []) => [
      ...p,
      v,
    ])
    .action(async (queue: string, o: RedriveFlags) => {
      await withClient(o, async (c) => {
        const n =
          o.id !== undefined
            ? await c.redrive(queue, {
                ids: o.id,
                ...(o.limit !== undefined ? { limit: o.limit } : {}),
              })
            : await redriveAll(c, queue, o.limit);
        process.stdout.write(`redrove ${n} message(s) to ${queue}\n`);
      });
    });
}

function registerPurge(program: Command): void {
  clientCommand(program, 'purge', 'delete every live message (or with --dead every dead letter)')
    .argument('<queue>')
    .option('--dead', 'purge the dead letters instead')
    .action(async (queue: string, o: ClientFlags & { dead?: boolean }) => {
      await withClient(o, async (c) => {
        const q = (await c.stats(queue)).queues.find((x) => x.name === queue);
        const bar = new ProgressBar(`purge ${queue}`, o.dead ? (q?.dead ?? 0) : (q?.depth ?? 0));
        const n = await c.purge(queue, { dead: o.dead === true });
        bar.tick(n);
        bar.finish();
        process.stdout.write(
          `purged ${n} message(s) from ${queue}${o.dead ? ' (dead letters)' : ''}\n`,
        );
      });
    });
}

export function registerQueueCommands(program: Command): void {
  registerSend(program);
  registerConsume(program);
  registerStats(program);
  registerQueues(program);
  registerPeek(program);
  registerDlq(program);
  registerPurge(program);
}
