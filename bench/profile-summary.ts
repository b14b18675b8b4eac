/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, and self
 * time grouped by where the code lives (Ferry's src/ folders, better-sqlite3, zeromq, node
 * internals, GC, idle).
 *
 *   BENCH_ONLY=w1 BENCH_RUNS=1 \
 *     BENCH_BROKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/ferry-prof" npm run bench
 *   node dist/bench/profile-summary.js /tmp/ferry-prof/*.cpuprofile [--top 25]
 */
import fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, name: string): string {
  if (name === '(idle)') return 'idle (waiting: I/O, timers)';
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'program (native, outside JS: sqlite, fsync, zmq…)';
  const m = /\/dist\/src\/([^/]+)\//.exec(url);
  if (m) return `ferry src/${m[1]}`;
  if (url.includes('better-sqlite3')) return 'better-sqlite3 (JS side)';
  if (url.includes('zeromq')) return 'zeromq.js (JS side)';
  if (url.startsWith('node:') || url === '') return 'node internals / native';
  return 'other';
}

function label(f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  const file = f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '');
  return file === '' ? name : `${name}  ${file}:${f.lineNumber + 1}`;
}

function summarize(profile: CpuProfile, top: number): string {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    const key = label(f);
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const a = area(f.url, f.functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const pct = (us: number): string => `${((us * 100) / total).toFixed(1).padStart(5)} %`;
  const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const lines = [`profile: ${(total / 1e6).toFixed(2)} s of wall time`, '', 'self time by area:'];
  for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1])) {
    lines.push(`  ${pct(us)} ${ms(us)}  ${a}`);
  }
  lines.push('', `top ${top} functions by self time:`);
  for (const [fn, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, top)) {
    lines.push(`  ${pct(us)} ${ms(us)}  ${fn}`);
  }
  return lines.join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 25;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--top') top = Number(args[++i]);
    else files.push(args[i]!);
  }
  if (files.length === 0) {
    console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile>… [--top n]');
    process.exit(2);
  }
  for (const f of files) {
    const profile = JSON.parse(fs.readFileSync(f, 'utf8')) as CpuProfile;
    console.log(`== ${f}\n${summarize(profile, top)}\n`);
  }
}

main();
