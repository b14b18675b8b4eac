#!/usr/bin/env node
// Installs what `npm start` / `npm test` need on a fresh machine: npm dependencies when
// node_modules is missing or older than package-lock.json, and (with --test) the Debian
// packages the test suite uses. With --bench-peers, also bench/peers' own package (the peer
// brokers' clients, which only `npm run bench:peers` uses; not a workspace, so the root
// install never pulls them). Uses only Node built-ins so it runs before any install.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const forTests = process.argv.includes('--test');
const forBenchPeers = process.argv.includes('--bench-peers');

function run(cmd, args, cwd = root) {
  const where = cwd === root ? '' : ` (in ${path.relative(root, cwd)})`;
  console.error(`[ensure-deps] ${cmd} ${args.join(' ')}${where}`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
}

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

/** Installs the package in `dir` when its node_modules is missing or older than its lock. */
function ensureInstalled(dir) {
  const modules = path.join(dir, 'node_modules');
  const marker = path.join(modules, '.package-lock.json');
  const lock = path.join(dir, 'package-lock.json');
  const name = path.relative(root, modules);
  // A node_modules that is a link (a git worktree sharing another checkout's install) is left
  // alone: npm ci would replace the link and empty the folder it points to.
  const linked = fs.lstatSync(modules, { throwIfNoEntry: false })?.isSymbolicLink() === true;
  if (linked) {
    console.error(`[ensure-deps] ${name} is a link: not reinstalling (run npm ci where it points)`);
  } else if (!fs.existsSync(marker) || mtime(lock) > mtime(marker)) {
    run('npm', [fs.existsSync(lock) ? 'ci' : 'install', '--no-audit', '--no-fund'], dir);
  }
}

ensureInstalled(root);
if (forBenchPeers) ensureInstalled(path.join(root, 'bench', 'peers'));

if (forTests) {
  const needed = [];
  const py = spawnSync('/usr/bin/python3', ['-c', 'import zmq'], { stdio: 'ignore' });
  if (py.status !== 0) needed.push('python3-zmq');
  // The dashboard test drives Debian's Chromium with playwright-core (no browser download).
  if (!fs.existsSync('/usr/bin/chromium')) needed.push('chromium');
  if (needed.length > 0) {
    if (process.getuid?.() !== 0) {
      console.error(`[ensure-deps] please install: apt-get install -y ${needed.join(' ')}`);
      process.exit(1);
    }
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...needed]);
  }
}

if (forTests) {
  // The store tests run against the local PostgreSQL; they fail, never skip, without it. Say
  // so once, up front, instead of through hundreds of failing cases. pg_isready comes with
  // Debian's postgresql-client (installed with the server); a TCP check stands in without it.
  const url = process.env.FERRY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const { hostname, port } = new URL(url);
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      `const s=require('node:net').connect(${Number(port || 5432)},${JSON.stringify(hostname)});` +
        `s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));` +
        `setTimeout(()=>process.exit(2),3000);`,
    ],
    { stdio: 'ignore' },
  );
  if (probe.status !== 0) {
    console.error(
      `[ensure-deps] PostgreSQL is not reachable at ${hostname}:${port || 5432}: the store ` +
        'tests need it (set FERRY_TEST_PG=postgres://user@host:port/db to use another server)',
    );
    process.exit(1);
  }
}
