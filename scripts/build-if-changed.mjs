#!/usr/bin/env node
// `npm start`'s build step: builds the two packages (tsc -b, not the tests) only when a source
// changed since the last build, so a start without changes skips the TypeScript build. A
// build is needed when a package's dist/.tsbuildinfo is missing or older than the newest of
// its sources (src/**/*.ts, its tsconfig.json, package.json) and the shared
// tsconfig.base.json. `--check` only reports: exit 0 when up to date, 1 when a build is due.
// `npm test` keeps its full `tsc -b` (pretest). Uses only Node built-ins.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const PACKAGES = ['packages/ferrymq', 'packages/ferrymq-server'];
const checkOnly = process.argv.includes('--check');

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Newest mtime under `dir` of files ending in `.ts` (declarations and sources). */
function newestSource(dir) {
  let newest = 0;
  let newestFile = '';
  const pending = [dir];
  while (pending.length > 0) {
    const d = pending.pop();
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) pending.push(p);
      else if (e.name.endsWith('.ts')) {
        const t = mtime(p) ?? 0;
        if (t > newest) [newest, newestFile] = [t, p];
      }
    }
  }
  return { newest, newestFile };
}

/** Why `pkg` needs a build, or undefined when its build is up to date. */
function staleReason(pkg) {
  const dir = path.join(root, pkg);
  const built = mtime(path.join(dir, 'dist', '.tsbuildinfo'));
  if (built === undefined) return `${pkg} was never built`;
  const inputs = [
    path.join(dir, 'tsconfig.json'),
    path.join(dir, 'package.json'),
    path.join(root, 'tsconfig.base.json'),
  ];
  for (const f of inputs) {
    if ((mtime(f) ?? 0) > built) return `${path.relative(root, f)} changed`;
  }
  const { newest, newestFile } = newestSource(path.join(dir, 'src'));
  if (newest > built) return `${path.relative(root, newestFile)} changed`;
  return undefined;
}

const reasons = PACKAGES.map(staleReason).filter((r) => r !== undefined);
if (reasons.length === 0) {
  console.error('[build-if-changed] up to date: skipping the TypeScript build');
  process.exit(0);
}
console.error(`[build-if-changed] build needed: ${reasons.join('; ')}`);
if (checkOnly) process.exit(1);
execFileSync(
  process.execPath,
  [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', ...PACKAGES],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
