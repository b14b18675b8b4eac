/**
 * The shapes of a `bench:peers` plan: a row of the tables (a system, or Ferry with one sync
 * policy or store), a measurement (a row and how to run it once), a group of measurements
 * printed as one table, the runs' results, and the ratio lines under a table.
 */
import type { Spread } from '../stats.js';
import type { MetricDef, RunOutput, Scope } from '../workloads.js';
import type { PeerWorkloadId, PgSystemId, SystemId } from './config.js';
import type { CallKind, FanoutMode } from './peer.js';

/** One system as a row of the tables: a peer, or Ferry with one sync policy. */
export interface SystemRow {
  key: string;
  label: string;
  systemId: SystemId | PgSystemId;
  sync: string | null;
  durability: string;
  /** The durability in a few words: the last column of the tables. */
  tag: string;
  color: string;
  /** Peers: /proc comm of the server process (its CPU is not "other load"). */
  processName?: string;
}

export interface Measurement {
  row: SystemRow;
  metrics: MetricDef[];
  timeoutMs: number;
  /** Not run: why (printed, and kept in the JSON lines). */
  skip?: string;
  run(scope: Scope, label: string): Promise<RunOutput>;
}

export interface Group {
  workload: PeerWorkloadId;
  /** Short name, e.g. "W1 100 B". */
  name: string;
  title: string;
  size: number;
  shape: Record<string, unknown>;
  measurements: Measurement[];
  /** W4 groups: durable or live. */
  fanoutMode?: FanoutMode;
  /** W3 groups: transient or durable calls. */
  callKind?: CallKind;
  /** Its own ratio lines (the pg group: against its baseline row); default: Ferry ÷ peer. */
  ratios?: (results: Result[]) => RatioLine[];
}

export interface Result {
  group: Group;
  m: Measurement;
  outputs: RunOutput[];
  failures: number;
  spreads: Record<string, Spread>;
}

export interface RatioLine {
  group: string;
  ferry: string;
  peer: string;
  metric: string;
  ratio: number;
}
