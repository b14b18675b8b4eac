/**
 * The benchmarks' own logic, without brokers: their settings refuse garbage with a message that
 * names the variable, the shared producer loop keeps its window, the fan-out runner counts
 * every subscriber's messages once (duplicates, losses, dropped subscribers), and the chart and
 * progress bar render what they are given.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENV_HELP, loadBenchConfig } from '../../bench/config.js';
import { HEADER_BYTES, newCounters, produceWith } from '../../bench/ferry-load.js';
import { loadPeersConfig, PEERS_ENV_HELP } from '../../bench/peers/config.js';
import { progressBar } from '../../bench/progress.js';
import { fanoutLoad, type FanoutHandlers, type FanoutTarget } from '../../bench/pubsub-load.js';
import { renderChart } from '../../bench/svg-chart.js';

/** Settings that are not whole numbers (checked by their own cases below). */
const NOT_INTEGERS = new Set([
  'BENCH_SYNC',
  'BENCH_ONLY',
  'BENCH_DIR',
  'BENCH_BROKER_NODE_ARGS',
  'BENCH_BROKER_CLI',
  'BENCH_CHART',
  'BENCH_SIZES',
  'BENCH_FERRY_SYNCS',
  'BENCH_W2_FERRY_SYNCS',
  'BENCH_SYSTEMS',
  'BENCH_AMQP_URL',
  'BENCH_NATS_URL',
  'BENCH_REDIS_URL',
]);

const throwsNaming = (fn: () => unknown, name: string): void => {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, new RegExp(name));
    return true;
  });
};

describe('bench settings', () => {
  it('npm run bench: every numeric BENCH_* refuses garbage, naming the variable', () => {
    const names = ENV_HELP.map(([k]) => k).filter((k) => !NOT_INTEGERS.has(k));
    assert.ok(names.length >= 20, `only ${names.length} numeric settings found`);
    for (const name of names) {
      for (const bad of ['abc', '1.5', '-3']) {
        throwsNaming(() => loadBenchConfig([], { [name]: bad }), name);
      }
    }
    throwsNaming(() => loadBenchConfig([], { BENCH_SYNC: 'sometimes' }), 'BENCH_SYNC');
    throwsNaming(() => loadBenchConfig([], { BENCH_ONLY: 'w1,w9' }), 'BENCH_ONLY');
    throwsNaming(() => loadBenchConfig(['--fast'], {}), 'unknown argument --fast');
  });

  it('npm run bench: defaults, --quick, and values given', () => {
    const full = loadBenchConfig([], {});
    const quick = loadBenchConfig(['--quick'], {});
    assert.equal(full.count, 100_000);
    assert.equal(full.runs, 3);
    assert.equal(full.sync, 'always');
    assert.ok(quick.count < full.count && quick.runs === 1);
    const set = loadBenchConfig([], { BENCH_N: '2_000', BENCH_SYNC: 'batch:10', BENCH_ONLY: 'w1' });
    assert.equal(set.count, 2_000);
    assert.equal(set.sync, 'batch:10');
    assert.deepEqual(set.only, ['w1']);
  });

  it('npm run bench:peers: every setting refuses garbage, naming the variable', () => {
    const names = PEERS_ENV_HELP.map(([k]) => k).filter((k) => !NOT_INTEGERS.has(k));
    assert.ok(names.length >= 15, `only ${names.length} numeric settings found`);
    for (const name of names) {
      throwsNaming(() => loadPeersConfig([], { [name]: 'abc' }), name);
    }
    throwsNaming(() => loadPeersConfig([], { BENCH_SIZES: '100,10' }), 'BENCH_SIZES');
    throwsNaming(() => loadPeersConfig([], { BENCH_SIZES: ',' }), 'BENCH_SIZES');
    throwsNaming(() => loadPeersConfig([], { BENCH_SYSTEMS: 'ferry,kafka' }), 'BENCH_SYSTEMS');
    throwsNaming(() => loadPeersConfig([], { BENCH_ONLY: 'w5' }), 'BENCH_ONLY');
    throwsNaming(() => loadPeersConfig([], { BENCH_FERRY_SYNCS: 'never' }), 'BENCH_FERRY_SYNCS');
    throwsNaming(
      () =>
        loadPeersConfig([], { BENCH_FERRY_SYNCS: 'always', BENCH_W2_FERRY_SYNCS: 'always,off' }),
      'BENCH_W2_FERRY_SYNCS',
    );
    throwsNaming(() => loadPeersConfig(['--full'], {}), 'unknown argument --full');
  });

  it('npm run bench:peers: defaults and --quick', () => {
    const full = loadPeersConfig([], {});
    assert.deepEqual(full.sizes, [100, 1024]);
    assert.deepEqual(full.only, ['ceilings', 'w1', 'w1-paced', 'w2', 'w3', 'w4', 'pg']);
    assert.deepEqual(full.systems, ['ferry', 'rabbitmq', 'jetstream', 'bullmq']);
    assert.deepEqual(full.ferrySyncs, ['always', 'batch:1000', 'off']);
    assert.deepEqual(full.w2FerrySyncs, ['always', 'off']);
    assert.equal(full.base.runs, 3);
    // The default W2 policies follow a narrower BENCH_FERRY_SYNCS instead of failing.
    assert.deepEqual(loadPeersConfig([], { BENCH_FERRY_SYNCS: 'off' }).w2FerrySyncs, ['off']);
    const quick = loadPeersConfig(['--quick'], {});
    assert.equal(quick.base.runs, 1);
    assert.ok(quick.w4Count < full.w4Count && quick.pacedCount < full.pacedCount);
  });
});

describe('bench load loops', () => {
  it('the producer loop never has more than `window` sends unconfirmed, and confirms all', async () => {
    const counters = newCounters();
    let inflight = 0;
    let most = 0;
    const seqs: number[] = [];
    const r = await produceWith(
      (body) => {
        inflight++;
        most = Math.max(most, inflight);
        seqs.push(body.readUInt32LE(8));
        return new Promise<void>((resolve) =>
          setImmediate(() => {
            inflight--;
            resolve();
          }),
        );
      },
      { count: 500, size: 64, window: 7, counters },
    );
    assert.equal(most, 7);
    assert.equal(counters.confirmed, 500);
    assert.deepEqual(
      seqs,
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.ok(r.lastConfirmAt >= r.firstSendAt);
  });

  it('the producer loop rejects on the first failed send', async () => {
    let n = 0;
    await assert.rejects(
      produceWith(() => (++n === 3 ? Promise.reject(new Error('refused')) : Promise.resolve()), {
        count: 10,
        size: 32,
        window: 2,
        counters: newCounters(),
      }),
      /refused/,
    );
  });

  it('the fan-out runner counts each subscriber once per message: duplicates, losses, drops', async () => {
    const subscribers = 4;
    const count = 50;
    let h: FanoutHandlers | undefined;
    const target: FanoutTarget = {
      async startSubscribers(handlers) {
        h = handlers;
      },
      publish(body) {
        const seq = body.readUInt32LE(8);
        setImmediate(() => {
          // 0: gets everything, every 10th twice; 1: closed after 5 messages; 2: never gets 7;
          // 3: gets everything once.
          h!.onMessage(0, body);
          if (seq % 10 === 0) h!.onMessage(0, body);
          if (seq < 5) h!.onMessage(1, body);
          if (seq === 5) h!.onClosed(1, 'connection closed');
          if (seq !== 7) h!.onMessage(2, body);
          h!.onMessage(3, body);
        });
        return Promise.resolve();
      },
    };
    const r = await fanoutLoad(target, {
      subscribers,
      count,
      size: HEADER_BYTES,
      window: 10,
      settleMs: 500, // idle time that ends the run: generous, so a busy machine cannot end it early
    });
    assert.equal(r.duplicates, count / 10);
    assert.equal(r.delivered, count + 5 + (count - 1) + count);
    assert.equal(r.lost, subscribers * count - r.delivered);
    assert.equal(r.settled, true, 'subscriber 2 never completes: the idle timeout ends the run');
    assert.equal(r.subscribers[1]!.closed, 'connection closed');
    assert.equal(r.subscribers[2]!.received, count - 1);
    assert.equal(r.subscribers[3]!.closed, null);
    assert.equal(r.latencyMs.count, r.delivered);
  });

  it('the fan-out runner ends as soon as every subscriber has everything', async () => {
    let h: FanoutHandlers | undefined;
    const target: FanoutTarget = {
      async startSubscribers(handlers) {
        h = handlers;
      },
      publish(body) {
        setImmediate(() => {
          h!.onMessage(0, body);
          h!.onMessage(1, body);
        });
        return Promise.resolve();
      },
    };
    // A settle timeout far longer than the test: finishing must not wait for it.
    const r = await fanoutLoad(target, {
      subscribers: 2,
      count: 20,
      size: 32,
      window: 5,
      settleMs: 600_000,
    });
    assert.equal(r.settled, false);
    assert.equal(r.lost, 0);
    assert.equal(r.delivered, 40);
  });
});

describe('bench output', () => {
  it('the progress bar shows the share done, clamped to 0–100 %', () => {
    assert.equal(progressBar(0), `[${' '.repeat(20)}]   0 %`);
    assert.equal(progressBar(0.5), `[${'#'.repeat(10)}${' '.repeat(10)}]  50 %`);
    assert.equal(progressBar(1.7), `[${'#'.repeat(20)}] 100 %`);
    assert.equal(progressBar(Number.NaN), `[${' '.repeat(20)}]   0 %`);
  });

  it('the chart draws a bar per measured system, a note for an unmeasured one, and the target', () => {
    const svg = renderChart({
      title: 'T <&>',
      subtitle: 's',
      columns: 2,
      legend: [{ label: 'Ferry', color: '#123456' }],
      panels: [
        {
          title: 'W1 msgs/s',
          unit: 'msgs/s',
          target: 100_000,
          bars: [
            { label: 'Ferry', median: 75_000, min: 70_000, max: 78_000, color: '#123456' },
            {
              label: 'Peer',
              median: Number.NaN,
              min: Number.NaN,
              max: Number.NaN,
              color: '#654321',
            },
          ],
        },
      ],
    });
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /T &lt;&amp;&gt;/);
    assert.equal((svg.match(/<rect [^>]*fill="#123456"/g) ?? []).length, 2); // bar + legend
    assert.match(svg, /Ferry: 75k \(70k–78k\) msgs\/s/);
    assert.match(svg, />n\/a</);
    assert.match(svg, /target 100k/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });
});
