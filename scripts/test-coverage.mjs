#!/usr/bin/env node
// `npm test`'s last step: the whole suite (scripts/run-tests.mjs, same arguments) under c8, so
// V8 coverage is collected from every Node process it starts (the test files, and the brokers
// and CLIs they spawn; a process killed with SIGKILL leaves none). Prints c8's summary and the
// line coverage per source directory, then fails if a directory of COVERAGE.floors is below
// its floor. `node scripts/run-tests.mjs` runs the same tests without coverage.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * Where coverage is taken and the floors it must keep: the one place to change when the
 * sources move.
 * - include: the compiled JavaScript (tsc's source maps lead the report back to the .ts).
 * - floors: line coverage in percent that all files under a source directory (subfolders
 *   included) must keep together. Each is set 3 points below the coverage measured on
 *   2026-12-03 (in the comment), so that ordinary changes pass and a real drop fails; raise
 *   them as coverage grows.
 */
const COVERAGE = {
  include: ['packages/ferrymq/dist/**/*.js', 'packages/ferrymq-server/dist/**/*.js'],
  floors: {
    'packages/ferrymq-server/src/core/': 92, // measured 95.2 % (4185/4394 lines)
    'packages/ferrymq/src/protocol/': 97, // measured 100 % (430/430)
    'packages/ferrymq-server/src/storage/': 96, // measured 99.1 % (1388/1401)
  },
};

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'test-artifacts', 'coverage');
const c8 = path.join(
  path.dirname(createRequire(import.meta.url).resolve('c8/package.json')),
  'bin',
  'c8.js',
);

/**
 * Compiled files with nothing to run (a .ts of types only compiles to `export {};`): nothing
 * loads them, and c8's --all would count every line of their .ts as uncovered.
 */
function typeOnlyFiles() {
  const found = [];
  function walk(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) {
        const code = fs
          .readFileSync(p, 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .replace(/\/\/.*$/gm, '')
          .replace(/\s+/g, '');
        if (code === 'export{};') found.push(path.relative(root, p).split(path.sep).join('/'));
      }
    }
  }
  // Walk the fixed part of each include glob ('packages/ferrymq/dist/**/*.js' → packages/ferrymq/dist).
  for (const glob of COVERAGE.include) {
    const dir = path.join(root, glob.split('/*')[0]);
    if (fs.existsSync(dir)) walk(dir);
  }
  return found;
}

// The tests report as usual on stdout and also as TAP to a file, whose counts make the last
// line printed (after the coverage report).
const args = process.argv.slice(2);
const tap = path.join(out, 'tests.tap');
const reporters = args.some((a) => a.startsWith('--test-reporter'))
  ? []
  : [
      `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
    ];

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const run = spawnSync(
  process.execPath,
  [
    c8,
    '--all', // a file no test loads counts, at 0 %
    ...COVERAGE.include.flatMap((g) => ['--include', g]),
    ...typeOnlyFiles().flatMap((f) => ['--exclude', f]),
    '--reporter=text-summary',
    '--reporter=json-summary',
    '--report-dir',
    out,
    '--temp-directory',
    path.join(out, 'tmp'),
    process.execPath,
    path.join(root, 'scripts', 'run-tests.mjs'),
    ...reporters,
    ...args,
  ],
  { cwd: root, stdio: 'inherit' },
);
fs.rmSync(path.join(out, 'tmp'), { recursive: true, force: true }); // ~100 MB of raw V8 data

/** "tests: N passed, N failed" from the TAP copy, or '' without one. */
function countsLine() {
  if (!fs.existsSync(tap)) return '';
  const text = fs.readFileSync(tap, 'utf8');
  const count = (what) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const failed = count('fail') + count('cancelled');
  const skipped = count('skipped');
  return `tests: ${count('pass')} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
}

if (run.status !== 0) {
  console.error(`\ntests failed (exit ${run.status ?? run.signal}): coverage floors not checked`);
  const line = countsLine();
  if (line) console.log(line);
  process.exit(run.status ?? 1);
}

/** @type {Record<string, { lines: { total: number, covered: number } }>} */
const summary = JSON.parse(fs.readFileSync(path.join(out, 'coverage-summary.json'), 'utf8'));
/** Lines covered and in all, of the files under each directory (relative to the repository). */
const dirs = new Map();
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total') continue;
  const parts = path.relative(root, file).split(path.sep).slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const dir = `${parts.slice(0, i).join('/')}/`;
    const d = dirs.get(dir) ?? { covered: 0, total: 0 };
    d.covered += s.lines.covered;
    d.total += s.lines.total;
    dirs.set(dir, d);
  }
}
const pct = (d) => (d.total === 0 ? 100 : (100 * d.covered) / d.total);

console.log('\nLine coverage per directory (all files below it):');
const width = Math.max(...[...dirs.keys()].map((d) => d.length));
for (const dir of [...dirs.keys()].sort()) {
  const d = dirs.get(dir);
  const floor = COVERAGE.floors[dir];
  console.log(
    `  ${dir.padEnd(width)}  ${pct(d).toFixed(2).padStart(6)} %  ${`${d.covered}/${d.total}`.padStart(11)}` +
      (floor === undefined ? '' : `  (floor ${floor} %)`),
  );
}

const breaches = [];
for (const [dir, floor] of Object.entries(COVERAGE.floors)) {
  const d = dirs.get(dir);
  if (!d) breaches.push(`${dir}: no files measured there (does COVERAGE.include cover it?)`);
  else if (pct(d) < floor)
    breaches.push(
      `${dir}: line coverage ${pct(d).toFixed(2)} % (${d.covered}/${d.total} lines) ` +
        `is below its floor of ${floor} %`,
    );
}
if (breaches.length > 0) {
  console.error('\nCoverage below the floor (COVERAGE in scripts/test-coverage.mjs):');
  for (const b of breaches) console.error(`  ${b}`);
}
const line = countsLine();
if (line) console.log(`\n${line}`);
process.exit(breaches.length > 0 ? 1 : 0);
