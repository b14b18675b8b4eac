/**
 * Per-operation counts from the broker's own counters (stats): fsyncs, commits, SQL statements
 * and ZeroMQ messages per message or call. Unlike times, they do not move with a noisy
 * machine, so a regression shows as a count. Taken as the difference of two snapshots around
 * the measured part of a run (the snapshots' own STATS requests add 2 messages in all).
 */
import type { FerryClient } from 'ferrymq';

export interface CounterSnapshot {
  commits: number;
  fsyncs: number;
  sqlStatements: number;
  sqlControlStatements: number;
  zmqIn: number;
  zmqOut: number;
}

/** The metrics keys this module adds to a workload's output. */
export const OP_COUNT_METRICS = [
  { key: 'fsyncsPerOp', label: 'fsyncs per op', unit: 'fsync/op' },
  { key: 'commitsPerOp', label: 'commits per op', unit: 'commit/op' },
  { key: 'sqlPerOp', label: 'SQL statements per op (work + transaction)', unit: 'stmt/op' },
  { key: 'zmqPerOp', label: 'ZeroMQ messages per op (in + out)', unit: 'msg/op' },
] as const;

export async function snapshotCounters(client: FerryClient): Promise<CounterSnapshot> {
  const s = await client.stats();
  const st = s.broker.storage;
  let zmqIn = 0;
  let zmqOut = 0;
  for (const p of Object.values(s.peers ?? {})) {
    zmqIn += p.messagesIn;
    zmqOut += p.messagesOut;
  }
  return {
    commits: st.commits,
    fsyncs: st.fsyncs,
    sqlStatements: st.sqlStatements,
    sqlControlStatements: st.sqlControlStatements,
    zmqIn,
    zmqOut,
  };
}

/** Counts per operation between two snapshots, as metrics (keys of OP_COUNT_METRICS). */
export function perOp(
  before: CounterSnapshot,
  after: CounterSnapshot,
  ops: number,
): Record<(typeof OP_COUNT_METRICS)[number]['key'], number> {
  const d = (k: keyof CounterSnapshot): number => (after[k] - before[k]) / ops;
  return {
    fsyncsPerOp: d('fsyncs'),
    commitsPerOp: d('commits'),
    sqlPerOp: d('sqlStatements') + d('sqlControlStatements'),
    zmqPerOp: d('zmqIn') + d('zmqOut'),
  };
}
