/**
 * `npm run bench [-- --quick]`: Ferry's benchmarks. The broker runs as a child process (fresh
 * data dir, free loopback port, memory sampled from /proc); clients run in this process.
 * Prints a table as it goes and writes JSON lines to bench/results/<timestamp>.jsonl.
 * Settings: BENCH_* environment variables (see --help, bench/config.ts, docs/benchmarks.md).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_PATH, killAllBrokers } from './broker.js';
import { CURVE_WORKLOAD } from './curve-workloads.js';
import { ENV_HELP, loadBenchConfig, type BenchConfig } from './config.js';
import {
  machineBusySeconds,
  machineInfo,
  selfAndChildrenSeconds,
  waitForQuiet,
  type MachineInfo,
} from './machine.js';
import { fmt, spread, type Spread } from './stats.js';
import { renderChart, type Panel } from './svg-chart.js';
import {
  liveTempDirs,
  Scope,
  WORKLOADS,
  type MetricDef,
  type RunOutput,
  type Workload,
} from './workloads.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

/** Warn when other processes took more than this much of a core during a run (and wait for
 * less than this before each run, BENCH_QUIET_S). */
const OTHER_LOAD_WARN_PERCENT = 10;

/** Ratios of a workload's metric to a ceiling measured in the same run. */
interface DerivedRatio {
  workload: string;
  metric: string;
  ceiling: string;
  ceilingMetric: string;
  /** The ceiling's median is multiplied by this (units, or a count of round trips). */
  ceilingFactor: number;
  key: string;
  label: string;
  jsonLabel: string;
}

const DERIVED: DerivedRatio[] = [
  {
    workload: 'w1',
    metric: 'msgsPerSec',
    ceiling: 'push-pull',
    ceilingMetric: 'msgsPerSec',
    ceilingFactor: 1,
    key: 'ratioToPushPull',
    label: '÷ PUSH/PULL ceiling',
    jsonLabel: 'W1 msgs/s ÷ median PUSH/PULL msgs/s (same run)',
  },
  {
    workload: 'w3',
    metric: 'p50Ms',
    ceiling: 'forwarded-call',
    ceilingMetric: 'p50Ms',
    ceilingFactor: 1,
    key: 'p50OverForwarded',
    label: '÷ raw forwarded call p50',
    jsonLabel:
      'W3 p50 ÷ median p50 of a call through a raw zeromq.js forwarder process (same run; 100 % = no broker cost)',
  },
];

/**
 * The chart (docs/benchmarks/ferry.svg): per workload its throughput and its p99 (and W2's
 * peak RSS, which has a target), with the ceiling measured in the same run drawn next to
 * Ferry's bar where one applies.
 */
const CHART_FILE = path.join(REPO_ROOT, 'docs', 'benchmarks', 'ferry.svg');
const CHART_COLUMNS = 4;
const FERRY_COLOR = '#1f4e79';
const CEILING_COLOR = '#9e9e9e';
/** workload.metric → the ceiling drawn beside it (workload.metric of the same run). */
const CHART_CEILINGS: Record<string, { ceiling: string; label: string }> = {
  'w1.msgsPerSec': { ceiling: 'push-pull.msgsPerSec', label: 'raw PUSH/PULL' },
  'w3.p50Ms': { ceiling: 'forwarded-call.p50Ms', label: 'raw forwarded call' },
  'w3.p99Ms': { ceiling: 'forwarded-call.p99Ms', label: 'raw forwarded call' },
};
const CEILING_WORKLOADS = new Set([
  'push-pull',
  'dealer-router-rtt',
  'forwarded-call',
  'fdatasync',
]);

function charted(r: SummaryRow): boolean {
  if (r.metric.unit === '%') return false;
  if (r.metric.unit.endsWith('/s')) return true;
  if (/p99/i.test(r.metric.key)) return true;
  if (r.workload === 'w3' && r.metric.key === 'p50Ms') return true;
  return r.workload === 'w2' && r.metric.key === 'peakRssMB';
}

function benchChart(summary: SummaryRow[], subtitle: string): string {
  const find = (id: string): SummaryRow | undefined =>
    summary.find((s) => `${s.workload}.${s.metric.key}` === id);
  const panels: Panel[] = summary.filter(charted).map((r) => {
    const ceilingRow = CEILING_WORKLOADS.has(r.workload);
    const bars = [
      {
        label: ceilingRow ? r.workload : `Ferry ${r.workload}`,
        ...r.spread,
        color: ceilingRow ? CEILING_COLOR : FERRY_COLOR,
      },
    ];
    const c = CHART_CEILINGS[`${r.workload}.${r.metric.key}`];
    const base = c ? find(c.ceiling) : undefined;
    if (c && base) bars.push({ label: c.label, ...base.spread, color: CEILING_COLOR });
    const target = r.metric.target
      ? ` · target ${r.metric.target.op} ${fmt(r.metric.target.value)}`
      : '';
    const lower = r.metric.unit.endsWith('/s') ? 'higher is better' : 'lower is better';
    return {
      title: `${r.workload} ${r.metric.label}`,
      unit: `${r.metric.unit} (${lower})${target}`,
      bars,
      ...(r.metric.target ? { target: r.metric.target.value } : {}),
    };
  });
  return renderChart({
    title: 'Ferry benchmarks (median, whiskers min–max)',
    subtitle,
    panels,
    columns: CHART_COLUMNS,
    legend: [
      { label: 'Ferry', color: FERRY_COLOR },
      { label: 'ceiling: raw zeromq.js or the disk, same run', color: CEILING_COLOR },
    ],
  });
}

class TimeoutError extends Error {}

interface SummaryRow {
  workload: string;
  metric: MetricDef;
  spread: Spread;
  runs: number;
  ok: number;
}

function cleanupSync(): void {
  killAllBrokers();
  for (const dir of liveTempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  liveTempDirs.clear();
}

function installExitHandlers(): void {
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stdout.write(`\n${sig}: killing the broker and removing temp dirs\n`);
      cleanupSync();
      process.exit(130);
    });
  }
  process.on('unhandledRejection', (err) => {
    console.error('bench: unhandled rejection:', err);
  });
}

async function runOnce(w: Workload, cfg: BenchConfig, label: string): Promise<RunOutput> {
  const scope = new Scope();
  const timeoutMs = w.timeoutMs(cfg);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`timed out after ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  const work = w.run({ cfg, scope, label });
  work.catch(() => {}); // after a timeout, the abandoned run fails as its scope closes
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    await scope.close();
  }
}

// ------------------------------------------------------------------ output

const COLS = [17, 22, 16, 27, 5, 22];

function row(cells: string[]): string {
  return cells.map((c, i) => c.padEnd(COLS[i] ?? 10)).join(' ');
}

function targetText(m: MetricDef, s: Spread): string {
  if (!m.target) return '';
  const goal = `${m.target.op === '>=' ? '≥' : '≤'} ${fmt(m.target.value)}`;
  if (!Number.isFinite(s.median)) return `${goal}: n/a`;
  const met = m.target.op === '>=' ? s.median >= m.target.value : s.median <= m.target.value;
  return `${goal}: ${met ? 'met' : 'MISSED'}`;
}

function targetMet(m: MetricDef, s: Spread): boolean | null {
  if (!m.target || !Number.isFinite(s.median)) return null;
  return m.target.op === '>=' ? s.median >= m.target.value : s.median <= m.target.value;
}

function rangeText(s: Spread, unit: string): string {
  if (s.n === 0) return 'n/a';
  return `${fmt(s.min)}–${fmt(s.max)} ${unit}`;
}

function printRow(r: SummaryRow): void {
  console.log(
    row([
      r.workload,
      r.metric.label,
      fmt(r.spread.median, r.metric.unit),
      rangeText(r.spread, r.metric.unit),
      `${r.ok}/${r.runs}`,
      targetText(r.metric, r.spread),
    ]),
  );
}

function markdownTable(rows: SummaryRow[]): string {
  const lines = [
    '| Workload | Metric | Median | Min–max | Runs ok | Target |',
    '|---|---|---:|---:|:-:|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.workload} | ${r.metric.label} | ${fmt(r.spread.median, r.metric.unit)} | ` +
        `${rangeText(r.spread, r.metric.unit)} | ${r.ok}/${r.runs} | ${targetText(r.metric, r.spread)} |`,
    );
  }
  return lines.join('\n');
}

/** The commit measured, and whether src/ had uncommitted changes (the build is of the tree). */
function gitInfo(): { commit: string; srcDirty: boolean } | null {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe' }).trim();
    return {
      commit: git('rev-parse', '--short=12', 'HEAD'),
      srcDirty: git('status', '--porcelain', '--', 'src') !== '',
    };
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ main

function usage(): string {
  const env = ENV_HELP.map(([k, v]) => `  ${k.padEnd(24)} ${v}`).join('\n');
  return `npm run bench [-- --quick]\n\nEnvironment:\n${env}\n`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  const cfg = loadBenchConfig(argv, process.env);
  installExitHandlers();
  fs.mkdirSync(cfg.dir, { recursive: true });
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const machine: MachineInfo = machineInfo(cfg.dir);
  const git = gitInfo();
  const started = new Date();
  const resultsFile = path.join(
    RESULTS_DIR,
    `${started.toISOString().replace(/[:.]/g, '-')}${cfg.quick ? '-quick' : ''}.jsonl`,
  );
  const common = {
    startedAt: started.toISOString(),
    quick: cfg.quick,
    sync: cfg.sync,
    size: cfg.size,
    count: cfg.count,
    w2Count: cfg.w2Count,
    git,
    brokerCli: CLI_PATH,
    machine,
  };
  const out = fs.openSync(resultsFile, 'a');
  const emit = (line: Record<string, unknown>): void => {
    fs.writeSync(out, `${JSON.stringify({ ...line, ...common })}\n`);
  };

  console.log(`Ferry benchmarks${cfg.quick ? ' (--quick)' : ''} — ${started.toISOString()}`);
  console.log(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ` +
      `${(machine.totalMemBytes / 2 ** 30).toFixed(1)} GiB, Node ${machine.node}, ` +
      `${machine.platform} ${machine.kernel}`,
  );
  if (git)
    console.log(`commit ${git.commit}${git.srcDirty ? ' + uncommitted changes in src/' : ''}`);
  console.log(
    `data dirs under ${cfg.dir} (${machine.dataFs?.type ?? '?'} on ${machine.dataFs?.device ?? '?'})`,
  );
  console.log(
    `sync ${cfg.sync} · size ${cfg.size} B · W1 ${cfg.count.toLocaleString('en-US')} msgs · ` +
      `W1-paced ${cfg.pacedCount.toLocaleString('en-US')} msgs at ${cfg.rate.toLocaleString('en-US')}/s ` +
      `(+${cfg.warmupMs} ms warm-up) · W2 ${cfg.w2Count.toLocaleString('en-US')} msgs · ` +
      `window ${cfg.window} (W2 ${cfg.w2Window}) · prefetch ${cfg.prefetch} · runs ${cfg.runs}`,
  );
  if (process.env['BENCH_BROKER_CLI']) console.log(`broker CLI: ${CLI_PATH} (BENCH_BROKER_CLI)`);
  if (cfg.brokerNodeArgs.length > 0) {
    console.log(`broker node args: ${cfg.brokerNodeArgs.join(' ')}`);
  }
  console.log(`results: ${path.relative(process.cwd(), resultsFile)}\n`);
  console.log(row(['workload', 'metric', 'median', 'min–max', 'ok', 'target']));
  console.log('-'.repeat(COLS.reduce((a, b) => a + b + 1, 0)));

  const summary: SummaryRow[] = [];
  let failures = 0;
  for (const w of [...WORKLOADS, CURVE_WORKLOAD].filter((x) => cfg.only.includes(x.id))) {
    const outputs: RunOutput[] = [];
    for (let i = 1; i <= cfg.runs; i++) {
      const label = `${w.name} run ${i}/${cfg.runs}`;
      let quiet: { otherPercent: number; waitedMs: number } | null = null;
      if (cfg.quietWaitMs > 0) {
        quiet = await waitForQuiet(OTHER_LOAD_WARN_PERCENT, cfg.quietWaitMs);
        if (quiet.otherPercent >= OTHER_LOAD_WARN_PERCENT) {
          console.log(
            `  ! ${label}: machine still busy after ${(quiet.waitedMs / 1000).toFixed(0)} s ` +
              `(other processes at ${quiet.otherPercent.toFixed(0)} % of a core); running anyway`,
          );
        } else if (quiet.waitedMs > 2_000) {
          console.log(
            `  · ${label}: waited ${(quiet.waitedMs / 1000).toFixed(0)} s for a quiet machine`,
          );
        }
      }
      const t0 = Date.now();
      const busy0 = machineBusySeconds();
      const own0 = selfAndChildrenSeconds();
      /** CPU used by other processes on the machine during this run, % of one core. */
      const otherLoad = (): number => {
        const other = machineBusySeconds() - busy0 - (selfAndChildrenSeconds() - own0);
        return Math.max(0, (other * 100_000) / Math.max(1, Date.now() - t0));
      };
      try {
        const o = await runOnce(w, cfg, label);
        const otherCpuPercent = otherLoad();
        if (otherCpuPercent > OTHER_LOAD_WARN_PERCENT) {
          console.log(
            `  ! ${label}: other processes used ${otherCpuPercent.toFixed(0)} % of a core meanwhile`,
          );
        }
        o.details['otherProcessesCpuPercent'] = otherCpuPercent;
        o.details['quietWait'] = quiet;
        outputs.push(o);
        emit({
          kind: 'run',
          workload: w.name,
          title: w.title,
          run: i,
          ok: true,
          wallSeconds: (Date.now() - t0) / 1000,
          shape: w.shape(cfg),
          metrics: o.metrics,
          details: o.details,
        });
      } catch (err) {
        failures++;
        const message = err instanceof Error ? err.message : String(err);
        console.log(`  ✗ ${label} FAILED: ${message}`);
        emit({
          kind: 'run',
          workload: w.name,
          title: w.title,
          run: i,
          ok: false,
          error: message,
          timedOut: err instanceof TimeoutError,
          otherProcessesCpuPercent: otherLoad(),
          wallSeconds: (Date.now() - t0) / 1000,
          shape: w.shape(cfg),
        });
      }
    }
    for (const m of w.metrics) {
      const values = outputs.map((o) => o.metrics[m.key] ?? NaN);
      const r: SummaryRow = {
        workload: w.name,
        metric: m,
        spread: spread(values),
        runs: cfg.runs,
        ok: outputs.length,
      };
      summary.push(r);
      printRow(r);
      emit({
        kind: 'summary',
        workload: w.name,
        metric: m.key,
        label: m.label,
        unit: m.unit,
        ...r.spread,
        values,
        runs: cfg.runs,
        ok: outputs.length,
        shape: w.shape(cfg),
        target: m.target ?? null,
        targetMet: targetMet(m, r.spread),
      });
    }
    for (const d of DERIVED) {
      if (w.name !== d.workload) continue;
      const base = summary.find(
        (s) => s.workload === d.ceiling && s.metric.key === d.ceilingMetric,
      );
      const own = summary.find((s) => s.workload === d.workload && s.metric.key === d.metric);
      if (!base || !own || base.spread.n === 0 || own.spread.n === 0) continue;
      const denominator = base.spread.median * d.ceilingFactor;
      const r: SummaryRow = {
        workload: d.workload,
        metric: { key: d.key, label: d.label, unit: '%' },
        spread: {
          median: (own.spread.median / denominator) * 100,
          min: (own.spread.min / denominator) * 100,
          max: (own.spread.max / denominator) * 100,
          n: own.spread.n,
        },
        runs: cfg.runs,
        ok: own.ok,
      };
      summary.push(r);
      printRow(r);
      emit({
        kind: 'summary',
        workload: d.workload,
        metric: d.key,
        label: d.jsonLabel,
        unit: '%',
        ...r.spread,
        runs: cfg.runs,
        ok: own.ok,
      });
    }
  }
  fs.closeSync(out);
  const minutes = (Date.now() - started.getTime()) / 60_000;
  const chartFile =
    process.env['BENCH_CHART'] ??
    (cfg.quick ? resultsFile.replace(/\.jsonl$/, '.svg') : CHART_FILE);
  const subtitle =
    `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node} · ${started.toISOString().slice(0, 16)}Z · ` +
    `commit ${git?.commit ?? '?'}${git?.srcDirty ? '+' : ''} · sync ${cfg.sync} · ${cfg.size} B · ${cfg.runs} run(s)`;
  fs.mkdirSync(path.dirname(chartFile), { recursive: true });
  fs.writeFileSync(chartFile, benchChart(summary, subtitle));
  console.log(`\nDone in ${minutes.toFixed(1)} min; ${failures} failed run(s).`);
  console.log(`JSON lines: ${path.relative(process.cwd(), resultsFile)}`);
  console.log(`chart: ${path.relative(process.cwd(), chartFile)}\n`);
  console.log(markdownTable(summary));
  if (failures > 0) process.exitCode = 1;
}

main().then(
  () => {
    cleanupSync();
    // Sockets of abandoned (timed-out) runs may hold the loop open: exit explicitly.
    process.exit(process.exitCode ?? 0);
  },
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    cleanupSync();
    process.exit(2);
  },
);
