/**
 * Broker memory for one very large message: a broker child with its limits raised, one
 * message of `--mib` MiB (default 128) sent, then consumed and acked, by the SDK. Prints the
 * broker's RSS before, its peak (VmHWM) after the send and after the delivery, as multiples of
 * the message size.
 *
 *   node dist/bench/big-message.js [--mib 128]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from 'ferrymq';
import { killAllBrokers, readMem, startBroker } from './broker.js';

const MIB = 1024 * 1024;
const LIMIT_HEADROOM_BYTES = MIB;
const REQUEST_TIMEOUT_MS = 120_000;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string' } } });
  const size = Number(values.mib ?? '128') * MIB;
  const limit = String(size + LIMIT_HEADROOM_BYTES);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-big-'));
  const broker = await startBroker({
    dataDir,
    sync: 'off',
    flags: ['--max-message-bytes', limit, '--max-request-bytes', limit],
  });
  const mib = (kib: number): string => (kib / 1024).toFixed(0);
  const times = (kib: number, base: number): string => (((kib - base) * 1024) / size).toFixed(2);
  try {
    const client = await connect(broker.endpoint, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    const before = readMem(broker.pid)!;
    await client.send('big', Buffer.alloc(size, 7));
    const afterSend = readMem(broker.pid)!;
    const got = await new Promise<number>((resolve, reject) => {
      const c = client.consume('big', { prefetch: 1 });
      void (async () => {
        try {
          for await (const m of c) {
            const n = m.body.length;
            await m.ack();
            resolve(n);
            return;
          }
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      })();
    });
    const afterDelivery = readMem(broker.pid)!;
    await client.close();
    console.log(
      `message ${size / MIB} MiB (received ${got / MIB} MiB): broker RSS before ${mib(before.rssKiB)} MiB; ` +
        `peak after send ${mib(afterSend.hwmKiB)} MiB (+${times(afterSend.hwmKiB, before.rssKiB)}× the message); ` +
        `peak after delivery ${mib(afterDelivery.hwmKiB)} MiB (+${times(afterDelivery.hwmKiB, before.rssKiB)}×)`,
    );
  } finally {
    await broker.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

process.on('exit', killAllBrokers);
main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
