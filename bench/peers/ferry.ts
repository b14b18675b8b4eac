/**
 * Ferry's side of `bench:peers`. W1, W2 and the ceilings are the very measurements of
 * `npm run bench` (bench/workloads.ts), run with this bench's size and sync policy. W3 uses the
 * job server through the SDK (`ferry.worker` / `ferry.call`).
 */
import { connect } from '../../src/client/client.js';
import { startBroker } from '../broker.js';
import type { BenchConfig } from '../config.js';
import { makeTempDir, WORKLOADS, type RunOutput, type Scope, type Workload } from '../workloads.js';
import { W3_CALL_TIMEOUT_MS } from './config.js';
import { sequentialCalls, w3Result } from './peer.js';

const CLIENT_OPTIONS = { requestTimeoutMs: 120_000, name: 'ferry-bench-peers' };

/** One of `npm run bench`'s workloads by its name (w1, w2, push-pull, …). */
export function ferryWorkload(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`no Ferry workload ${name}`);
  return w;
}

/** Runs one of `npm run bench`'s workloads once with another size / sync / count. */
export function runFerryWorkload(
  name: string,
  base: BenchConfig,
  overrides: Partial<BenchConfig>,
  scope: Scope,
  label: string,
): Promise<RunOutput> {
  const cfg: BenchConfig = { ...base, ...overrides };
  return ferryWorkload(name).run({ cfg, scope, label });
}

export interface FerryW3Options {
  base: BenchConfig;
  sync: string;
  calls: number;
  workers: number;
  size: number;
  scope: Scope;
  onProgress: (done: number) => void;
}

/** W3 on Ferry: 1 caller, `workers` workers (concurrency 1, a connection each). */
export async function ferryW3(o: FerryW3Options): Promise<RunOutput> {
  const dataDir = makeTempDir(o.base, o.scope, 'ferry-bench-w3-');
  const broker = await startBroker({ dataDir, sync: o.sync, nodeArgs: o.base.brokerNodeArgs });
  o.scope.add(() => broker.stop());
  const service = 'bench-w3';
  for (let i = 0; i < o.workers; i++) {
    const wc = await connect(broker.endpoint, CLIENT_OPTIONS);
    o.scope.add(() => wc.close({ timeoutMs: 0 }));
    const w = wc.worker(service, (job) => w3Result(job.params.length), { concurrency: 1 });
    await w.ready;
    o.scope.add(() => w.close());
  }
  const caller = await connect(broker.endpoint, CLIENT_OPTIONS);
  o.scope.add(() => caller.close({ timeoutMs: 0 }));
  const r = await sequentialCalls(
    (params) => caller.call(service, params, { timeoutMs: W3_CALL_TIMEOUT_MS }),
    { calls: o.calls, size: o.size, onProgress: o.onProgress },
  );
  broker.mem.sample();
  r.metrics['peakRssMB'] = broker.mem.peakRssKiB / 1024;
  return r;
}
