/**
 * CURVE's cost: W1 and W3 with CURVE on (and an auth file, so every request is also checked
 * against the user's grants) against the same workloads in the clear, in the same run: each
 * repetition runs plain, CURVE, CURVE, plain, each on a fresh broker. Reports the ratio of W1 throughputs and the
 * difference of W3 p50 latencies (docs/benchmarks.md "CURVE").
 */
import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPair } from 'ferrymq';
import { runW1, runW3, type RunContext, type RunOutput, type Workload } from './workloads.js';

const US_PER_MS = 1_000;
const ALL = ['**'];

/** A key pair for the broker and one for the clients, and an auth file granting everything. */
function curveSetup(ctx: RunContext): NonNullable<RunContext['curve']> {
  const dir = fs.mkdtempSync(path.join(ctx.cfg.dir, 'ferry-bench-curve-'));
  ctx.scope.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const server = generateKeyPair();
  const client = generateKeyPair();
  const keyFile = path.join(dir, 'server.key');
  fs.writeFileSync(keyFile, server.secretKey, { mode: 0o600 });
  const authFile = path.join(dir, 'auth.json');
  const allow = Object.fromEntries(
    ['queue:send', 'queue:consume', 'service:call', 'service:serve', 'admin'].map((v) => [v, ALL]),
  );
  fs.writeFileSync(
    authFile,
    JSON.stringify({ users: [{ name: 'bench', curveKeys: [client.publicKey], allow }] }),
  );
  return {
    flags: ['--curve-secret-key-file', keyFile, '--auth-file', authFile],
    client: { serverKey: server.publicKey, ...client },
  };
}

export const CURVE_WORKLOAD: Workload = {
  id: 'curve',
  name: 'curve',
  title: 'CURVE + auth file vs plain, same run: W1 throughput and W3 call latency',
  metrics: [
    { key: 'w1PlainMsgsPerSec', label: 'W1 plain', unit: 'msgs/s' },
    { key: 'w1CurveMsgsPerSec', label: 'W1 CURVE', unit: 'msgs/s' },
    { key: 'w1Ratio', label: 'W1 CURVE ÷ plain', unit: '×', target: { op: '>=', value: 0.8 } },
    { key: 'w3PlainP50Us', label: 'W3 p50 plain', unit: 'µs' },
    { key: 'w3CurveP50Us', label: 'W3 p50 CURVE', unit: 'µs' },
    {
      key: 'w3OverheadP50Us',
      label: 'W3 p50 CURVE − plain',
      unit: 'µs',
      target: { op: '<=', value: 50 },
    },
  ],
  timeoutMs: (cfg) => 8 * cfg.timeoutMs,
  shape: (cfg) => ({ messages: cfg.count, calls: cfg.w3Count, size: cfg.size }),
  async run(ctx) {
    const curve = { ...ctx, curve: curveSetup(ctx) };
    const w1 = (c: RunContext, tag: string) =>
      runW1({ ...c, label: `${ctx.label} W1 ${tag}` }, false);
    const w3 = (c: RunContext, tag: string) =>
      runW3({ ...c, label: `${ctx.label} W3 ${tag}` }, false);
    // A B B A: a load that drifts during the run (another process starting or ending) weighs
    // on both sides alike.
    const w1Plain = [await w1(ctx, 'plain')];
    const w1Curve = [await w1(curve, 'CURVE'), await w1(curve, 'CURVE')];
    w1Plain.push(await w1(ctx, 'plain'));
    const w3Plain = [await w3(ctx, 'plain')];
    const w3Curve = [await w3(curve, 'CURVE'), await w3(curve, 'CURVE')];
    w3Plain.push(await w3(ctx, 'plain'));
    const mean = (runs: RunOutput[], key: string) =>
      runs.reduce((sum, r) => sum + r.metrics[key]!, 0) / runs.length;
    const w1p = mean(w1Plain, 'msgsPerSec');
    const w1c = mean(w1Curve, 'msgsPerSec');
    const w3p = mean(w3Plain, 'p50Ms') * US_PER_MS;
    const w3c = mean(w3Curve, 'p50Ms') * US_PER_MS;
    return {
      metrics: {
        w1PlainMsgsPerSec: w1p,
        w1CurveMsgsPerSec: w1c,
        w1Ratio: w1c / w1p,
        w3PlainP50Us: w3p,
        w3CurveP50Us: w3c,
        w3OverheadP50Us: w3c - w3p,
      },
      details: {
        order: 'plain, CURVE, CURVE, plain (W1, then W3); each side the mean of its two',
        w1Plain: w1Plain.map((r) => r.metrics),
        w1Curve: w1Curve.map((r) => r.metrics),
        w3Plain: w3Plain.map((r) => r.metrics),
        w3Curve: w3Curve.map((r) => r.metrics),
      },
    };
  },
};
