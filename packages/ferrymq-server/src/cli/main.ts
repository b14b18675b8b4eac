#!/usr/bin/env node
/**
 * The `ferry` command. `ferry start` runs a broker; the other commands talk to one
 * (--broker, or FERRY_BROKER, default tcp://127.0.0.1:7400).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { DEFAULT_ENDPOINT } from 'ferrymq';
import { FerryError, quantileOf } from 'ferrymq/model';
import {
  CLIENT_FLAGS,
  fail,
  intFlag,
  parse,
  printable,
  printTable,
  withClient,
} from './cli-support.js';
import { cmdCall, cmdJob, cmdJobs, cmdServices, cmdSubmit, cmdWorkers } from './job-commands.js';
import { cmdConfig, cmdPublish, cmdRetained, cmdSubscribe } from './topic-commands.js';
import { CONFIG_SCHEMA, HTTP_OFF, loadConfig, type FerryConfig } from '../server/config.js';
import { createLogger } from '../server/logger.js';
import { startServer } from '../server/server.js';

/** After the first SIGINT/SIGTERM, a second one (or this long) forces exit. */
const FORCE_EXIT_AFTER_MS = 15_000;

const USAGE = `ferry — durable message broker for ZeroMQ

Usage:
  ferry --version
  ferry start [--config file.json] [--data dir] [--bind endpoint] [--sync always|batch:<ms>|off]
              [--ack-timeout ms] [--max-attempts n] [--max-depth n] [--max-bytes n] …
  ferry send <queue> <body…> [--priority n] [--delay ms] [--ttl ms] [--dedup key] [--header k=v]
  ferry consume <queue> [--count n] [--prefetch n] [--no-ack] [--json]
  ferry stats [queue] [--json]
  ferry queues
  ferry peek <queue> [--limit n] [--state ready|leased|scheduled|dead] [--json]
  ferry dlq list <queue> [--limit n] [--json]
  ferry dlq redrive <queue> [--limit n] [--id id …]
  ferry purge <queue> [--dead]
  ferry call <service> <params…> [--timeout ms] [--durable] [--progress] [--json]
  ferry submit <service> <params…> [--priority n] [--delay ms] [--ttl ms] [--dedup key]
               [--max-attempts n] [--wait]
  ferry job <id> [--wait] [--follow] [--cancel] [--json]
  ferry jobs [--service s] [--status st] [--limit n] [--json]
  ferry services [--json]
  ferry workers [--json]
  ferry publish <topic> <body…> [--retain] [--ttl ms] [--header k=v]
  ferry subscribe <pattern> [--snapshot] [--durable name] [--group name] [--node name]
                  [--count n] [--json]
  ferry retained [pattern] [--json]
  ferry config set <topic> <value> [--ttl ms] [--nodes a,b,c] [--wait ms]
  ferry config get [pattern] [--json]
  ferry config status <pattern> [--json]

Client commands take --broker <endpoint> (env FERRY_BROKER, default ${DEFAULT_ENDPOINT})
and --timeout <ms> (default 10000).
Run 'ferry start --help' for every broker option.`;

function startHelp(): string {
  const lines = Object.entries(CONFIG_SCHEMA)
    .filter(([, s]) => s.flag !== '')
    .map(([key, s]) => `  --${s.flag.padEnd(20)} ${s.help} (config key ${key}, env ${s.env})`);
  return `ferry start [options]\n\n  --config <file>        JSON config file\n${lines.join('\n')}\n  --no-http              turn the HTTP gateway off (same as --http ${HTTP_OFF})\n`;
}

async function cmdStart(argv: string[]): Promise<void> {
  const options: NonNullable<ParseArgsConfig['options']> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
    'no-http': { type: 'boolean' },
  };
  for (const s of Object.values(CONFIG_SCHEMA))
    if (s.flag !== '') options[s.flag] = { type: s.kind === 'bool' ? 'boolean' : 'string' };
  const { values, positionals } = parse(argv, options);
  if (values['help']) {
    process.stdout.write(startHelp());
    return;
  }
  if (positionals.length > 0) fail(`CONFIG_INVALID: unexpected argument ${positionals[0]}`);
  if (values['no-http']) {
    if (values['http'] !== undefined)
      fail('CONFIG_INVALID: --http and --no-http exclude each other');
    values['http'] = HTTP_OFF;
  }
  delete values['no-http'];
  let config: FerryConfig;
  try {
    config = loadConfig({
      file: (values['config'] as string | undefined) ?? process.env['FERRY_CONFIG'],
      env: process.env,
      flags: values as Record<string, string | boolean | undefined>,
    });
  } catch (err) {
    const e = err as FerryError;
    fail(`${e.code ?? 'CONFIG_INVALID'}: ${e.message}`);
  }
  const log = createLogger(config.logLevel);
  let server;
  try {
    server = await startServer(config, { logger: log });
  } catch (err) {
    const e = err instanceof FerryError ? err : new FerryError('INTERNAL', String(err));
    fail(`${e.code}: ${e.message}`, 1);
  }
  process.stdout.write(`ferry listening on ${server.endpoint} (data ${config.dataDir})\n`);
  if (server.httpUrl !== undefined) {
    process.stdout.write(`ferry http (REST, dashboard, /metrics) on ${server.httpUrl}\n`);
  }
  if (server.mdpEndpoint !== undefined) {
    process.stdout.write(`ferry mdp (Majordomo, MMI, Titanic) on ${server.mdpEndpoint}\n`);
  }
  if (server.cloneEndpoints !== undefined) {
    const e = server.cloneEndpoints;
    process.stdout.write(
      `ferry clone (12/CHP) snapshot ${e.snapshot}, publisher ${e.publisher}, collector ${e.collector}\n`,
    );
  }
  if (server.pzqEndpoints !== undefined) {
    const p = server.pzqEndpoints;
    process.stdout.write(
      `ferry pzq producers on ${p.receive}, consumers on ${p.send}, monitor on ${p.monitor}\n`,
    );
  }
  if (server.zmwsEndpoints !== undefined) {
    const z = server.zmwsEndpoints;
    process.stdout.write(`ferry zmws clients on ${z.client}, workers on ${z.worker}\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn(`second ${signal}: forcing exit`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal}: draining and shutting down (send again to force)`);
    const force = setTimeout(() => {
      log.error('shutdown took too long; forcing exit');
      process.exit(1);
    }, FORCE_EXIT_AFTER_MS);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { err: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function cmdSend(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    priority: { type: 'string' },
    delay: { type: 'string' },
    ttl: { type: 'string' },
    dedup: { type: 'string' },
    header: { type: 'string', multiple: true },
  });
  const [queue, ...bodies] = positionals;
  if (!queue || bodies.length === 0) fail('usage: ferry send <queue> <body…>');
  const headers: Record<string, string> = {};
  for (const h of (values['header'] as string[] | undefined) ?? []) {
    const i = h.indexOf('=');
    if (i <= 0) fail(`CONFIG_INVALID: --header must be key=value; got ${h}`);
    headers[h.slice(0, i)] = h.slice(i + 1);
  }
  await withClient(values, async (c) => {
    const id = await c.send(queue, bodies.length === 1 ? bodies[0]! : bodies, {
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      ...(values['priority'] !== undefined
        ? { priority: intFlag(values['priority'], 'priority')! }
        : {}),
      ...(values['delay'] !== undefined ? { delayMs: intFlag(values['delay'], 'delay')! } : {}),
      ...(values['ttl'] !== undefined ? { ttlMs: intFlag(values['ttl'], 'ttl')! } : {}),
      ...(values['dedup'] !== undefined ? { dedupKey: values['dedup'] as string } : {}),
    });
    process.stdout.write(`${id}\n`);
  });
}

async function cmdConsume(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    count: { type: 'string' },
    prefetch: { type: 'string' },
    'no-ack': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const queue = positionals[0];
  if (!queue) fail('usage: ferry consume <queue>');
  const count = intFlag(values['count'], 'count') ?? Infinity;
  // Never hold more than will be handled: at most --count messages prefetched.
  const prefetch =
    intFlag(values['prefetch'], 'prefetch') ??
    (Number.isFinite(count) ? Math.min(count, 100) : undefined);
  await withClient(values, async (c) => {
    let n = 0;
    if (n >= count) return;
    const consumer = c.consume(queue, prefetch !== undefined ? { prefetch } : {});
    const stop = (): void => void consumer.cancel();
    process.once('SIGINT', stop);
    for await (const m of consumer) {
      if (values['json']) {
        process.stdout.write(
          `${JSON.stringify({ id: m.id, attempts: m.attempts, headers: m.headers, frames: m.frames.map(printable) })}\n`,
        );
      } else {
        process.stdout.write(`${m.id}\t${m.frames.map(printable).join('\t')}\n`);
      }
      if (!values['no-ack']) await m.ack();
      if (++n >= count) break;
    }
    process.off('SIGINT', stop);
  });
}

async function cmdStats(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    json: { type: 'boolean' },
  });
  await withClient(values, async (c) => {
    const s = await c.stats(positionals[0]);
    if (values['json']) {
      process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
      return;
    }
    const b = s.broker;
    const st = b.storage;
    const p99 = quantileOf(st.commitMs, 0.99);
    const byDialect = ` (${Object.entries(s.connections)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`;
    process.stdout.write(
      `broker: up ${Math.round(b.uptimeMs / 1000)} s, ${b.connections} connections${byDialect}, ` +
        `${b.consumers} consumers, ${b.queues} queues\n` +
        `storage: ${st.backend} sync=${st.sync} ${Math.round(st.sizeBytes / 1024)} KiB, ` +
        `${st.commits} commits, avg batch ${st.avgBatchOps.toFixed(1)} ops, ` +
        `avg commit ${st.avgCommitMs.toFixed(2)} ms` +
        (p99 !== null ? `, p99 ≤ ${p99} ms` : '') +
        `, ${st.fsyncs} fsyncs\n`,
    );
    const services = s.services;
    if (services.length > 0 || s.workers.total > 0) {
      const sum = (k: 'queued' | 'running' | 'done' | 'failed'): number =>
        services.reduce((n, x) => n + x[k], 0);
      process.stdout.write(
        `jobs: ${services.length} services, ${s.workers.total} workers, ` +
          `${sum('queued')} queued, ${sum('running')} running, ${sum('done')} done, ${sum('failed')} failed\n`,
      );
    }
    const head = [
      'queue',
      'depth',
      'ready',
      'leased',
      'delayed',
      'dead',
      'in/s',
      'ack/s',
      'oldest',
    ];
    const rows = s.queues.map((q) => [
      q.name,
      String(q.depth),
      String(q.ready),
      String(q.leased),
      String(q.scheduled),
      String(q.dead),
      q.enqueueRate.toFixed(1),
      q.ackRate.toFixed(1),
      q.oldestAgeMs === null ? '-' : `${(q.oldestAgeMs / 1000).toFixed(1)}s`,
    ]);
    printTable(head, rows);
  });
}

async function cmdQueues(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...CLIENT_FLAGS });
  await withClient(values, async (c) => {
    for (const q of await c.queues()) process.stdout.write(`${q}\n`);
  });
}

async function cmdPeek(argv: string[], dead = false): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    limit: { type: 'string' },
    state: { type: 'string' },
    json: { type: 'boolean' },
  });
  const queue = positionals[0];
  if (!queue) fail(`usage: ferry ${dead ? 'dlq list' : 'peek'} <queue>`);
  const limit = intFlag(values['limit'], 'limit');
  await withClient(values, async (c) => {
    const state = values['state'] as 'ready' | 'leased' | 'scheduled' | 'dead' | undefined;
    const opts = {
      ...(limit !== undefined ? { limit } : {}),
      ...(state !== undefined ? { state } : {}),
    };
    const msgs = dead ? await c.deadLetters(queue, opts) : await c.peek(queue, opts);
    for (const m of msgs) {
      const { body: _b, frames, ...meta } = m;
      if (values['json']) {
        process.stdout.write(`${JSON.stringify({ ...meta, frames: frames.map(printable) })}\n`);
      } else {
        const why = m.deadReason ? ` (${m.deadReason})` : '';
        process.stdout.write(
          `${m.id}\t${m.state}${why}\tattempts=${m.attempts}\t${frames.map(printable).join('\t')}\n`,
        );
      }
    }
  });
}

async function cmdDlq(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'list') return cmdPeek(rest, true);
  if (sub === 'redrive') {
    const { values, positionals } = parse(rest, {
      ...CLIENT_FLAGS,
      limit: { type: 'string' },
      id: { type: 'string', multiple: true },
    });
    const queue = positionals[0];
    if (!queue) fail('usage: ferry dlq redrive <queue>');
    const limit = intFlag(values['limit'], 'limit');
    const ids = values['id'] as string[] | undefined;
    await withClient(values, async (c) => {
      const n = await c.redrive(queue, {
        ...(ids ? { ids } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      process.stdout.write(`redrove ${n} message(s) to ${queue}\n`);
    });
    return;
  }
  fail('usage: ferry dlq list|redrive <queue>');
}

async function cmdPurge(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    dead: { type: 'boolean' },
  });
  const queue = positionals[0];
  if (!queue) fail('usage: ferry purge <queue> [--dead]');
  await withClient(values, async (c) => {
    const n = await c.purge(queue, { dead: values['dead'] === true });
    process.stdout.write(
      `purged ${n} message(s) from ${queue}${values['dead'] ? ' (dead letters)' : ''}\n`,
    );
  });
}

/** The version of this broker package (ferrymq-server's package.json, beside dist/). */
function serverVersion(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      return cmdStart(rest);
    case 'send':
      return cmdSend(rest);
    case 'consume':
      return cmdConsume(rest);
    case 'stats':
      return cmdStats(rest);
    case 'queues':
      return cmdQueues(rest);
    case 'peek':
      return cmdPeek(rest);
    case 'dlq':
      return cmdDlq(rest);
    case 'purge':
      return cmdPurge(rest);
    case 'call':
      return cmdCall(rest);
    case 'submit':
      return cmdSubmit(rest);
    case 'job':
      return cmdJob(rest);
    case 'jobs':
      return cmdJobs(rest);
    case 'services':
      return cmdServices(rest);
    case 'workers':
      return cmdWorkers(rest);
    case 'publish':
      return cmdPublish(rest);
    case 'subscribe':
      return cmdSubscribe(rest);
    case 'retained':
      return cmdRetained(rest);
    case 'config':
      return cmdConfig(rest);
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`ferry ${serverVersion()}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command ${cmd}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err instanceof FerryError ? err : new FerryError('INTERNAL', String(err));
  fail(`${e.code}: ${e.message}`, 1);
});
