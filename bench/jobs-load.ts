/**
 * W3 (sequential synchronous calls through the broker to several workers) and W3-submit
 * (durable jobs submitted as fast as confirmations allow, run by the same workers).
 * Workers are SDK workers, each on its own connection, one job at a time, answering with a
 * result of the message size.
 */
import { performance } from 'node:perf_hooks';
import type { FerryClient } from 'ferrymq';

/** Calls made before measuring (connections warm, JIT settled). */
export const W3_WARMUP_CALLS = 500;
/** How often W3-submit asks the broker how many jobs are done. */
const DONE_POLL_MS = 20;

export interface CallsResult {
  /** performance.now() of the first measured call and when the last one resolved. */
  startedAt: number;
  endedAt: number;
  latencyMs: number[];
}

/** Starts `count` workers of `service` (one per client) that answer with `size` bytes. */
export async function startWorkers(
  clients: FerryClient[],
  service: string,
  size: number,
): Promise<void> {
  const result = Buffer.alloc(size, 0x72);
  await Promise.all(clients.map((c) => c.worker(service, () => result).ready));
}

/**
 * `count` calls, one after the other, after a warm-up; every latency recorded. `durable`: the
 * job is stored before it runs and its result before the answer (a durable call).
 */
export async function sequentialCalls(
  client: FerryClient,
  service: string,
  count: number,
  size: number,
  onProgress: (done: number) => void,
  durable = false,
): Promise<CallsResult> {
  const params = Buffer.alloc(size, 0x70);
  const options = { durable };
  for (let i = 0; i < W3_WARMUP_CALLS; i++) await client.call(service, params, options);
  const latencyMs: number[] = new Array<number>(count);
  const startedAt = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const r = await client.call(service, params, options);
    latencyMs[i] = performance.now() - t0;
    if (r.length !== size) throw new Error(`call ${i}: result of ${r.length} bytes`);
    if ((i & 255) === 0) onProgress(i);
  }
  return { startedAt, endedAt: performance.now(), latencyMs };
}

export interface SubmitResult {
  submitMs: number;
  /** First submit → the broker reports every job done. */
  completeMs: number;
}

/** Submits `count` durable jobs with at most `window` unconfirmed, then waits until all are done. */
export async function submitAndDrain(
  client: FerryClient,
  service: string,
  count: number,
  size: number,
  window: number,
  onProgress: (submitted: number, done: number) => void,
  timeoutMs: number,
): Promise<SubmitResult> {
  const params = Buffer.alloc(size, 0x70);
  const t0 = performance.now();
  let confirmed = 0;
  let sent = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent < count && sent - confirmed < window) {
        sent++;
        client.submit(service, params).then(
          () => {
            confirmed++;
            if (confirmed === count) resolve();
            else pump();
          },
          (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
        );
      }
    };
    pump();
  });
  const submitMs = performance.now() - t0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const services = await client.services();
    const done = services.find((s) => s.name === service)?.done ?? 0;
    onProgress(confirmed, done);
    if (done >= count) break;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${count} jobs done in time`);
    await new Promise((r) => setTimeout(r, DONE_POLL_MS));
  }
  return { submitMs, completeMs: performance.now() - t0 };
}
