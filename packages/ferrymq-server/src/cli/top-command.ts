/**
 * `ferry top`: queues and services with their rates, refreshed. On a terminal the screen is
 * redrawn in place; elsewhere each refresh is a plain snapshot followed by a blank line.
 */
import type { Command } from 'commander';
import type { FerryStats } from 'ferrymq/model';
import {
  clientCommand,
  endpointOf,
  positiveNumber,
  withClient,
  type ClientFlags,
} from './cli-support.js';
import { formatTable } from './output.js';

const DEFAULT_TOP_INTERVAL_MS = 1_000;
/** Shortest refresh interval, ms (each refresh is one STATS request). */
const MIN_TOP_INTERVAL_MS = 100;
/** Cursor home, clear screen. */
const ANSI_REDRAW = '\x1b[H\x1b[2J';

interface TopFlags extends ClientFlags {
  interval?: number;
  count?: number;
  json?: boolean;
}

interface ServiceRates {
  name: string;
  workers: number;
  idle: number;
  queued: number;
  running: number;
  donePerSec: number;
  failedPerSec: number;
  done: number;
  failed: number;
}

/** Jobs done and failed per second per service, from two snapshots `elapsedMs` apart. */
function serviceRates(
  now: FerryStats,
  before: FerryStats | undefined,
  elapsedMs: number,
): ServiceRates[] {
  return now.services.map((s) => {
    const prev = before?.services.find((p) => p.name === s.name);
    const per = (a: number, b: number | undefined): number =>
      b === undefined || elapsedMs <= 0 ? 0 : Math.max(0, ((a - b) * 1000) / elapsedMs);
    return {
      name: s.name,
      workers: s.workers,
      idle: s.idleSlots,
      queued: s.queued,
      running: s.running,
      donePerSec: per(s.done, prev?.done),
      failedPerSec: per(s.failed, prev?.failed),
      done: s.done,
      failed: s.failed,
    };
  });
}

function render(endpoint: string, s: FerryStats, services: ServiceRates[]): string {
  const b = s.broker;
  const head =
    `ferry top  ${endpoint}  ${new Date().toISOString().slice(11, 19)}  up ${Math.round(b.uptimeMs / 1000)} s, ` +
    `${b.connections} connections, ${b.consumers} consumers, ${s.workers.total} workers, ` +
    `sync=${b.storage.sync}\n\n`;
  const queues = formatTable(
    ['QUEUE', 'DEPTH', 'READY', 'LEASED', 'SCHEDULED', 'DEAD', 'IN/S', 'ACK/S', 'CONSUMERS'],
    s.queues.map((q) => [
      q.name,
      String(q.depth),
      String(q.ready),
      String(q.leased),
      String(q.scheduled),
      String(q.dead),
      q.enqueueRate.toFixed(1),
      q.ackRate.toFixed(1),
      String(q.consumers),
    ]),
  );
  const jobs = formatTable(
    ['SERVICE', 'WORKERS', 'IDLE', 'QUEUED', 'RUNNING', 'DONE/S', 'FAILED/S', 'DONE', 'FAILED'],
    services.map((x) => [
      x.name,
      String(x.workers),
      String(x.idle),
      String(x.queued),
      String(x.running),
      x.donePerSec.toFixed(1),
      x.failedPerSec.toFixed(1),
      String(x.done),
      String(x.failed),
    ]),
  );
  return `${head}${queues}\n${jobs}`;
}

export function registerTopCommand(program: Command): void {
  clientCommand(program, 'top', 'queues and services with rates, refreshed')
    .option(
      '--interval <ms>',
      `refresh every ms (default ${DEFAULT_TOP_INTERVAL_MS}, at least ${MIN_TOP_INTERVAL_MS})`,
      positiveNumber,
    )
    .option('--count <n>', 'stop after n refreshes (default: until Ctrl-C)', positiveNumber)
    .option('--json', 'one JSON object per refresh (JSON lines)')
    .action(async (o: TopFlags) => {
      const intervalMs = Math.max(MIN_TOP_INTERVAL_MS, o.interval ?? DEFAULT_TOP_INTERVAL_MS);
      const count = o.count ?? Infinity;
      const tty = process.stdout.isTTY === true && !o.json;
      let stopped = false;
      let wake: (() => void) | undefined;
      const stop = (): void => {
        stopped = true;
        wake?.();
      };
      process.once('SIGINT', stop);
      await withClient(o, async (c) => {
        let before: { stats: FerryStats; at: number } | undefined;
        for (let i = 0; i < count && !stopped; i++) {
          const stats = await c.stats();
          const at = Date.now();
          const services = serviceRates(stats, before?.stats, before ? at - before.at : 0);
          before = { stats, at };
          if (o.json) {
            process.stdout.write(`${JSON.stringify({ at, queues: stats.queues, services })}\n`);
          } else {
            const frame = render(endpointOf(o), stats, services);
            process.stdout.write(tty ? `${ANSI_REDRAW}${frame}` : `${frame}\n`);
          }
          if (i + 1 < count && !stopped) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, intervalMs);
            });
          }
        }
      });
      process.off('SIGINT', stop);
    });
}
