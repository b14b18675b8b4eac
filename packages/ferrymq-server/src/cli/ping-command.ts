/** `ferry ping`: connects and measures PING round trips, like `nats rtt`. */
import type { Command } from 'commander';
import {
  clientCommand,
  connectClient,
  endpointOf,
  positiveNumber,
  type ClientFlags,
} from './cli-support.js';
import { formatMs } from './output.js';

const DEFAULT_PING_COUNT = 5;

interface PingFlags extends ClientFlags {
  endpoint?: string;
  count?: number;
  json?: boolean;
}

export function registerPing(program: Command): void {
  clientCommand(program, 'ping', 'connect and measure round trips to the broker')
    .option('--endpoint <endpoint>', 'same as --broker')
    .option('--count <n>', `round trips (default ${DEFAULT_PING_COUNT})`, positiveNumber)
    .option('--json', 'the result as one JSON object')
    .action(async (o: PingFlags) => {
      const flags: ClientFlags = {
        ...o,
        ...(o.endpoint !== undefined ? { broker: o.endpoint } : {}),
      };
      const endpoint = endpointOf(flags);
      const started = performance.now();
      const client = await connectClient(flags);
      const connectMs = performance.now() - started;
      try {
        const rtts: number[] = [];
        for (let i = 0; i < (o.count ?? DEFAULT_PING_COUNT); i++) rtts.push(await client.ping());
        const min = Math.min(...rtts);
        const max = Math.max(...rtts);
        const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ endpoint, connectMs, rttMs: rtts, minMs: min, avgMs: avg, maxMs: max })}\n`,
          );
          return;
        }
        process.stdout.write(`${endpoint}: connected in ${formatMs(connectMs)}\n`);
        rtts.forEach((r, i) => process.stdout.write(`  ${i + 1}: rtt ${formatMs(r)}\n`));
        process.stdout.write(
          `${endpoint}: rtt min ${formatMs(min)}, avg ${formatMs(avg)}, max ${formatMs(max)} (${rtts.length} round trips)\n`,
        );
      } finally {
        await client.close();
      }
    });
}
