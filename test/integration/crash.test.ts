/**
 * Crash test: the broker runs as a child process; a producer streams messages and records
 * every send the broker acknowledged; the broker is killed with SIGKILL at a random point,
 * restarted on the same data folder and port; then everything is consumed. Every
 * acknowledged message must come back. Duplicates are counted and reported, not failed
 * (delivery is at least once). Repeated several times with different kill points.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { freePort, killHard, spawnBroker, tmpDir, waitFor } from '../helpers/broker.js';
import { prng, seeded } from '../helpers/seed.js';

const ROUNDS = 3;
/** Messages the producer confirms in total per round (before and after the kill). */
const TARGET_ACKED = 3_000;
/** Most unconfirmed sends in flight at once. */
const WINDOW = 200;

describe('crash safety (kill -9)', () => {
  for (let round = 1; round <= ROUNDS; round++) {
    it(
      `round ${round}: every acknowledged message survives a SIGKILL of the broker`,
      seeded(async (t) => {
        const dataDir = tmpDir();
        const port = await freePort();
        const endpoint = `tcp://127.0.0.1:${port}`;
        const args = ['--data', dataDir, '--bind', endpoint, '--heartbeat', '200'];
        let broker = await spawnBroker(args);
        let producer: FerryClient | undefined;
        let consumer: FerryClient | undefined;
        try {
          producer = await connect(endpoint, { heartbeatMs: 100, requestTimeoutMs: 60_000 });
          const acked = new Set<string>();
          let sent = 0;
          let inflight = 0;
          let failed = 0;
          const killAfter = 200 + prng(`crash round ${round}`).int(1_500);
          let killed = false;
          const deadline = Date.now() + 60_000;
          await new Promise<void>((resolve, reject) => {
            const pump = (): void => {
              while (inflight < WINDOW && sent < TARGET_ACKED * 2 && Date.now() < deadline) {
                const body = `r${round}-m${sent++}`;
                inflight++;
                producer!.send('crash', body).then(
                  () => {
                    inflight--;
                    acked.add(body);
                    if (acked.size >= TARGET_ACKED) resolve();
                    else pump();
                  },
                  () => {
                    inflight--;
                    failed++;
                    pump();
                  },
                );
              }
              if (Date.now() >= deadline)
                reject(new Error(`only ${acked.size} acked before the deadline`));
            };
            pump();
            void (async () => {
              await waitFor(() => acked.size >= killAfter, 'the kill point', { timeoutMs: 30_000 });
              await killHard(broker);
              killed = true;
              broker = await spawnBroker(args);
            })().catch(reject);
          });
          assert.ok(killed, 'the broker was killed mid-stream');
          await producer.close();
          producer = undefined;

          consumer = await connect(endpoint);
          const seen = new Map<string, number>();
          const c = consumer.consume('crash', { prefetch: 1_000 });
          const drained = (async () => {
            for await (const m of c) {
              const body = m.body.toString();
              seen.set(body, (seen.get(body) ?? 0) + 1);
              void m.ack().catch(() => {});
              if ([...acked].every((b) => seen.has(b)) && seen.size >= acked.size) break;
            }
          })();
          await waitFor(
            () => [...acked].every((b) => seen.has(b)),
            'every acknowledged message consumed',
            {
              timeoutMs: 30_000,
              intervalMs: 50,
            },
          );
          await drained.catch(() => {});
          const lost = [...acked].filter((b) => !seen.has(b));
          const duplicates = [...seen.values()].filter((n) => n > 1).length;
          t.diagnostic(
            `killed after ~${killAfter} acks; acked ${acked.size}, consumed ${seen.size} distinct, ` +
              `${duplicates} duplicates, ${failed} sends failed and were not counted as acked`,
          );
          assert.deepEqual(lost, [], 'no acknowledged message may be lost');
        } finally {
          await producer?.close({ timeoutMs: 0 });
          await consumer?.close({ timeoutMs: 0 });
          broker.child.kill('SIGKILL');
          await broker.exited;
        }
      }),
    );
  }
});
