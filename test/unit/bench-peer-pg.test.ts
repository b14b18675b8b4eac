/**
 * `bench:peers`' PostgreSQL group without load: its settings (defaults, --quick, bad values
 * named), the flags that put Ferry on a store with a node id per broker, the tables it plans
 * (rows, labels, what each stores) for the systems chosen, its ratio lines, the shared job
 * loops driven by an in-memory target, and the graphile-worker / pg-boss adapters' labels and
 * configurations (when `npm run prebench:peers` compiled them).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import pg from 'pg';
import { loadPeersConfig } from '../../bench/peers/config.js';
import { storeFlags } from '../../bench/peers/pg-ferry.js';
import { pgGroups, type PgReady } from '../../bench/peers/pg-group.js';
import {
  enqueueThenProcess,
  pacedLatency,
  type JobPayload,
  type PgJobsTarget,
  type PgPeer,
} from '../../bench/peers/pg-load.js';
import type { Group, Result } from '../../bench/peers/rows.js';

function throwsNaming(fn: () => unknown, name: string): void {
  assert.throws(fn, (err: Error) => err.message.includes(name));
}

function fakePeer(label: string): PgPeer {
  return {
    label,
    settings: { jobs: `${label} jobs settings`, latency: `${label} latency settings` },
    open: () => Promise.reject(new Error('not in a unit test')),
  };
}

/** A PgReady whose pool never connects (pg.Pool connects lazily). */
function fakeReady(): PgReady {
  return {
    pool: new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }),
    version: '15.0',
    durability: 'synchronous_commit on, fsync on',
    peers: [
      { id: 'graphile-worker', peer: fakePeer('graphile-worker') },
      { id: 'pg-boss', peer: fakePeer('pg-boss') },
    ],
    skipped: [],
  };
}

/** A system in memory: adds stored in an array, workers called on the next tick. */
function memoryTarget(o: { repeat?: number } = {}): PgJobsTarget & { added: number } {
  const stored: JobPayload[] = [];
  let onJob: ((p: JobPayload) => void) | undefined;
  const run = (): void => {
    while (onJob && stored.length > 0) {
      const p = stored.shift()!;
      onJob(p);
      if (p.i === o.repeat) onJob(p);
    }
  };
  return {
    added: 0,
    addBatch(payloads) {
      this.added += payloads.length;
      stored.push(...payloads);
      setImmediate(run);
      return Promise.resolve();
    },
    addOne(payload) {
      this.added++;
      stored.push(payload);
      setImmediate(run);
      return Promise.resolve();
    },
    startWorkers(cb) {
      onJob = cb;
      setImmediate(run);
      return Promise.resolve();
    },
    pending: () => Promise.resolve(stored.length),
  };
}

function rowsOf(g: Group): string[] {
  return g.measurements.map((m) => m.row.label);
}

describe('bench:peers PostgreSQL group', () => {
  it('reads its settings, scales them for --quick, and names a bad one', () => {
    const d = loadPeersConfig([], {}).pg;
    assert.equal(d.url, 'postgres://postgres@127.0.0.1:5432/test');
    assert.deepEqual(d.systems, ['ferry', 'graphile-worker', 'pg-boss']);
    assert.equal(d.pacedCount, d.rate * 10);
    const q = loadPeersConfig(['--quick'], {}).pg;
    assert.ok(q.jobs < d.jobs && q.w1Count < d.w1Count && q.calls < d.calls);
    const set = loadPeersConfig([], {
      BENCH_PG_JOBS: '5_000',
      BENCH_PG_RATE: '50',
      BENCH_PG_PACED_S: '4',
      BENCH_PG_SYSTEMS: 'pg-boss',
    }).pg;
    assert.equal(set.jobs, 5_000);
    assert.equal(set.pacedCount, 200);
    assert.deepEqual(set.systems, ['pg-boss']);
    assert.ok(loadPeersConfig([], { BENCH_ONLY: 'pg' }).only.includes('pg'));
    throwsNaming(() => loadPeersConfig([], { BENCH_PG_URL: 'mysql://x' }), 'BENCH_PG_URL');
    throwsNaming(() => loadPeersConfig([], { BENCH_PG_SYSTEMS: 'oban' }), 'BENCH_PG_SYSTEMS');
    throwsNaming(() => loadPeersConfig([], { BENCH_PG_RATE: '0' }), 'BENCH_PG_RATE');
    throwsNaming(() => loadPeersConfig([], { BENCH_PG_BATCH: 'x' }), 'BENCH_PG_BATCH');
  });

  it('puts each broker on the store with a node id of its own', () => {
    assert.deepEqual(storeFlags({ kind: 'sqlite' }, 0), []);
    const store = { kind: 'pg' as const, url: 'postgres://p@127.0.0.1/t', schema: 's1' };
    const a = storeFlags(store, 0);
    const b = storeFlags(store, 1);
    assert.deepEqual(a.slice(0, 4), ['--store', store.url, '--store-schema', 's1']);
    assert.deepEqual([a[5], b[5]], ['bench-a', 'bench-b']);
  });

  it('plans four tables with the SQLite baseline, labelled by store and broker count', async () => {
    const ready = fakeReady();
    try {
      const cfg = loadPeersConfig(['--quick'], { BENCH_ONLY: 'pg' });
      const groups = pgGroups(cfg, ready);
      assert.deepEqual(
        groups.map((g) => g.name),
        ['PG jobs', 'PG latency', 'PG queue 1/2 brokers', 'PG calls 1/2 brokers'],
      );
      const [jobs, latency, queue, calls] = groups as [Group, Group, Group, Group];
      assert.deepEqual(rowsOf(jobs), [
        'Ferry SQLite (baseline)',
        'Ferry PG, 1 broker',
        'graphile-worker',
        'pg-boss',
      ]);
      assert.deepEqual(rowsOf(latency), [
        'Ferry SQLite (baseline)',
        'Ferry PG, 1 broker',
        'graphile-worker',
        'pg-boss (notify)',
      ]);
      assert.deepEqual(rowsOf(queue), [
        'Ferry SQLite (baseline)',
        'Ferry PG, 1 broker',
        'Ferry PG, 2 brokers A→B',
      ]);
      assert.deepEqual(rowsOf(calls), [
        'Ferry SQLite call (baseline)',
        'Ferry PG, 1 broker, call',
        'Ferry PG, 1 broker, durable call',
        'Ferry PG, 2 brokers A→B, call',
      ]);
      // Each row says what it stores and when it is flushed; the peers' rows their settings.
      assert.match(jobs.measurements[0]!.row.tag, /SQLite, fsync’d before ack/);
      assert.match(jobs.measurements[1]!.row.tag, /WAL flushed before ack/);
      assert.match(jobs.measurements[2]!.row.durability, /graphile-worker jobs settings/);
      assert.match(latency.measurements[3]!.row.durability, /pg-boss latency settings/);
      assert.match(calls.measurements[0]!.row.tag, /not stored/);
      assert.match(calls.measurements[3]!.row.tag, /stored \(worker elsewhere\)/);
      assert.match(jobs.title, new RegExp(`${cfg.pg.jobs.toLocaleString('en-US')} no-op jobs`));
      for (const g of groups) assert.equal(g.workload, 'pg');

      const peersOnly = pgGroups(
        loadPeersConfig([], { BENCH_PG_SYSTEMS: 'graphile-worker,pg-boss' }),
        ready,
      );
      assert.deepEqual(
        peersOnly.map((g) => g.name),
        ['PG jobs', 'PG latency'],
        'no Ferry: the one/two-broker tables have no row and are left out',
      );
    } finally {
      await ready.pool.end();
    }
  });

  it('takes ratios against the baseline, and Ferry on PostgreSQL against each peer', async () => {
    const ready = fakeReady();
    try {
      const [jobs] = pgGroups(loadPeersConfig([], {}), ready) as [Group];
      const values: Record<string, number> = {
        'Ferry SQLite (baseline)': 4_000,
        'Ferry PG, 1 broker': 2_000,
        'graphile-worker': 1_000,
        'pg-boss': 500,
      };
      const results: Result[] = jobs.measurements.map((m) => {
        const v = values[m.row.label]!;
        const s = (x: number) => ({ median: x, min: x, max: x, n: 1 });
        return {
          group: jobs,
          m,
          outputs: [{ metrics: {}, details: {} }],
          failures: 0,
          spreads: { enqueuePerSec: s(v), processPerSec: s(v * 2) },
        };
      });
      const lines = jobs.ratios!(results).map(
        (l) => `${l.ferry} ÷ ${l.peer} ${l.metric} ${l.ratio}`,
      );
      assert.deepEqual(lines, [
        'Ferry PG, 1 broker ÷ Ferry SQLite (baseline) enqueuePerSec 0.5',
        'Ferry PG, 1 broker ÷ Ferry SQLite (baseline) processPerSec 0.5',
        'Ferry PG, 1 broker ÷ graphile-worker enqueuePerSec 2',
        'Ferry PG, 1 broker ÷ graphile-worker processPerSec 2',
        'Ferry PG, 1 broker ÷ pg-boss enqueuePerSec 4',
        'Ferry PG, 1 broker ÷ pg-boss processPerSec 4',
      ]);
    } finally {
      await ready.pool.end();
    }
  });

  it('enqueues in batches, then processes, counting each job once, with hooks around', async () => {
    const target = memoryTarget({ repeat: 7 });
    const events: string[] = [];
    const hook = (name: string) => () => Promise.resolve(void events.push(name));
    const r = await enqueueThenProcess(target, {
      count: 250,
      batch: 100,
      timeoutMs: 5_000,
      onProgress: () => {},
      hooks: { start: hook('start'), enqueued: hook('enqueued'), end: hook('end') },
    });
    assert.equal(target.added, 250);
    assert.deepEqual(events, ['start', 'enqueued', 'end']);
    assert.equal(r.details['jobs'], 250);
    assert.equal(r.details['duplicates'], 1, 'job 7 ran twice: counted once, and as a repeat');
    assert.ok(r.metrics['enqueuePerSec']! > 0 && r.metrics['processPerSec']! > 0);
  });

  it('adds one job at a time at the rate, measuring add → start after the warm-up', async () => {
    const target = memoryTarget();
    const r = await pacedLatency(target, {
      rate: 2_000,
      count: 40,
      warmup: 10,
      tickMs: 1,
      timeoutMs: 5_000,
      onProgress: () => {},
    });
    assert.equal(target.added, 50);
    assert.equal((r.details['latencyMs'] as { count: number }).count, 40);
    assert.ok(r.metrics['p50Ms']! >= 0 && r.metrics['p99Ms']! >= r.metrics['p50Ms']!);
  });

  it('labels the graphile-worker and pg-boss adapters with their configurations', async (t) => {
    const dir = new URL('../../bench/peers/adapters/', import.meta.url);
    const ids = ['graphile-worker', 'pg-boss'];
    const missing = ids.filter((id) => !fs.existsSync(fileURLToPath(new URL(`${id}.js`, dir))));
    if (missing.length > 0) {
      t.skip(`adapters not compiled: ${missing.join(', ')} (npm run prebench:peers)`);
      return;
    }
    const load = async (id: string): Promise<PgPeer> =>
      ((await import(new URL(`${id}.js`, dir).href)) as { createPgPeer(): PgPeer }).createPgPeer();
    const gw = await load('graphile-worker');
    assert.equal(gw.label, 'graphile-worker');
    assert.match(gw.settings.jobs, /localQueue.size 200, completeJobBatchDelay 0/);
    assert.match(gw.settings.latency, /concurrency 10/);
    const boss = await load('pg-boss');
    assert.equal(boss.label, 'pg-boss');
    assert.match(boss.settings.jobs, /batchSize 100, localConcurrency 4/);
    assert.match(boss.settings.latency, /useListenNotify/);
  });
});
