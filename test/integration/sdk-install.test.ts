/**
 * The SDK installs apart from the broker: `npm pack` of packages/ferrymq, installed into an
 * empty project, brings zeromq and nothing of the broker (no better-sqlite3, no fastify), and
 * the installed client talks to a real broker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, startBroker, tmpDir, type TestBroker } from '../helpers/broker.js';

const run = promisify(execFile);
const NPM_TIMEOUT_MS = 240_000;
const BROKER_PACKAGES = ['better-sqlite3', 'fastify', '@fastify/swagger', 'prom-client', 'pino'];

const brokers: TestBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop();
});

/** Every package folder under node_modules (scoped ones as @scope/name). */
function installedPackages(modules: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(modules)) {
    if (e.startsWith('.')) continue;
    if (e.startsWith('@')) {
      for (const s of fs.readdirSync(path.join(modules, e))) out.push(`${e}/${s}`);
    } else out.push(e);
  }
  return out;
}

describe('SDK package', () => {
  it('a client-only install pulls zeromq and none of the broker, and works', async () => {
    const dir = tmpDir('ferry-sdk-install-');
    const { stdout: packed } = await run(
      'npm',
      ['pack', '--silent', '--pack-destination', dir, path.join(REPO_ROOT, 'packages', 'ferrymq')],
      { timeout: NPM_TIMEOUT_MS },
    );
    const tarball = path.join(dir, packed.trim().split('\n').pop()!);
    assert.ok(fs.existsSync(tarball), `npm pack wrote ${tarball}`);
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'sdk-only-app', private: true, type: 'module' }),
    );
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts=false', tarball],
      { cwd: app, timeout: NPM_TIMEOUT_MS },
    );
    const installed = installedPackages(path.join(app, 'node_modules'));
    assert.ok(installed.includes('ferrymq') && installed.includes('zeromq'), installed.join(' '));
    for (const p of BROKER_PACKAGES) {
      assert.ok(!installed.includes(p), `${p} is not installed with the SDK`);
    }
    assert.ok(!installed.includes('ferrymq-server'), 'the broker is not installed with the SDK');

    const b = await startBroker();
    brokers.push(b);
    const script = path.join(app, 'hello.mjs');
    fs.writeFileSync(
      script,
      [
        "import { connect } from 'ferrymq';",
        `const ferry = await connect('${b.endpoint}');`,
        "const id = await ferry.send('sdk-only', 'hi');",
        "for await (const m of ferry.consume('sdk-only')) {",
        '  console.log(id === m.id, m.body.toString());',
        '  await m.ack();',
        '  break;',
        '}',
        'await ferry.close();',
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, [script], { cwd: app, timeout: 20_000 });
    assert.equal(stdout, 'true hi\n');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
