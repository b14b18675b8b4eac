/**
 * Running Ferry for real: JSON logs with an HTTP access log (`--log-format json`,
 * FERRY_LOG_FORMAT), the Dockerfile (built and run where `docker info` works; otherwise its
 * user, volume and HEALTHCHECK lines are checked and its CMD and HEALTHCHECK commands run
 * directly, on loopback), and `npm start`'s build step skipping an up-to-date build.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { CLI_PATH, REPO_ROOT, freePort, tmpDir, waitFor } from '../helpers/broker.js';

const execFileAsync = promisify(execFile);
const DOCKER_TIMEOUT_MS = 600_000;

/** `docker info` succeeds: a daemon we can build and run with. */
const dockerWorks = ((): boolean => {
  try {
    return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
  } catch {
    return false;
  }
})();

interface Running {
  child: ChildProcess;
  stderrLines(): string[];
  exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderrLines: () => err.split('\n').filter((l) => l !== ''), exited };
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** Every stderr line is one JSON object (pino); returns them parsed. */
function jsonLines(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON log line: ${l}`);
    }
  });
}

/** The JSON array of a Dockerfile instruction (`CMD [...]`, `HEALTHCHECK ... CMD [...]`). */
function execForm(dockerfile: string, instruction: RegExp): string[] {
  const joined = dockerfile.replace(/\\\n\s*/g, ' ');
  const line = joined.split('\n').find((l) => instruction.test(l));
  assert.ok(line, `the Dockerfile has ${String(instruction)}`);
  const m = /CMD (\[.*\])\s*$/.exec(line);
  assert.ok(m, `exec form in: ${line}`);
  return JSON.parse(m[1]!) as string[];
}

describe('running it for real', () => {
  it('--log-format json (and FERRY_LOG_FORMAT) logs JSON lines with a debug access log', async () => {
    const httpPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const r = run(
      [
        CLI_PATH,
        'start',
        '--data',
        tmpDir(),
        '--bind',
        'tcp://127.0.0.1:*',
        '--http',
        `127.0.0.1:${httpPort}`,
        '--log-level',
        'debug',
      ],
      { FERRY_LOG_FORMAT: 'json' },
    );
    try {
      await waitFor(() => ready(base), 'the broker is ready', { timeoutMs: 20_000 });
      await fetch(`${base}/healthz?probe=1`);
      await waitFor(
        () =>
          jsonLines(r.stderrLines()).some(
            (l) => l['msg'] === 'http request' && l['url'] === '/healthz?probe=1',
          ),
        'the access log line',
      );
      const lines = jsonLines(r.stderrLines());
      const access = lines.find((l) => l['url'] === '/healthz?probe=1')!;
      assert.equal(access['level'], 20, 'debug (pino level 20)');
      assert.equal(access['method'], 'GET');
      assert.equal(access['status'], 200);
      assert.equal(access['route'], '/healthz');
      assert.equal(typeof access['ms'], 'number');
      assert.equal(typeof access['time'], 'string');
      assert.ok(lines.some((l) => l['msg'] === 'ferry broker started'));
      r.child.kill('SIGTERM');
      assert.equal(await r.exited, 0);
      // The shutdown lines (logged by the CLI with the same logger) are JSON too.
      const all = jsonLines(r.stderrLines());
      assert.ok(
        all.some((l) => l['msg'] === 'ferry broker stopped'),
        JSON.stringify(all.at(-1)),
      );
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('refuses an unknown log format with CONFIG_INVALID', async () => {
    const r = run([CLI_PATH, 'start', '--data', tmpDir(), '--log-format', 'xml', '--no-http']);
    assert.equal(await r.exited, 2);
    assert.match(
      r.stderrLines().join('\n'),
      /CONFIG_INVALID: --log-format: expected one of text, json/,
    );
  });

  const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');

  it(
    dockerWorks
      ? 'Dockerfile [docker works: the image is built and run, its HEALTHCHECK turns healthy]'
      : 'Dockerfile [no working docker here: its lines are checked and its CMD and HEALTHCHECK run directly]',
    { timeout: dockerWorks ? DOCKER_TIMEOUT_MS : 60_000 },
    async (t) => {
      // What either branch checks: a non-root user, a data volume, a HEALTHCHECK on /readyz.
      assert.match(dockerfile, /^USER (?!root\b|0\b)\S+$/m, 'runs as a non-root user');
      assert.match(dockerfile, /^VOLUME \["\/data"\]$/m, 'the data folder is a volume');
      assert.match(dockerfile, /^HEALTHCHECK .*\\\n.*\/readyz/m, 'the health check asks /readyz');
      assert.ok(fs.existsSync(path.join(REPO_ROOT, '.dockerignore')), '.dockerignore exists');
      const cmd = execForm(dockerfile, /^CMD /);
      const health = execForm(dockerfile, /^HEALTHCHECK /);
      assert.deepEqual(cmd.slice(0, 3), ['node', 'packages/ferrymq-server/bin/ferry.js', 'start']);
      assert.ok(cmd.includes('/data'), 'the CMD keeps its data on the volume');

      if (dockerWorks) {
        t.diagnostic('branch: docker info works; building and running the image');
        const tag = `ferry-test:${process.pid}`;
        await execFileAsync('docker', ['build', '-t', tag, '.'], {
          cwd: REPO_ROOT,
          timeout: DOCKER_TIMEOUT_MS,
          maxBuffer: 64 * 1024 * 1024,
        });
        const { stdout } = await execFileAsync('docker', [
          'run',
          '-d',
          '-p',
          '127.0.0.1::7480',
          tag,
        ]);
        const id = stdout.trim();
        try {
          const user = (await execFileAsync('docker', ['exec', id, 'id', '-u'])).stdout.trim();
          assert.notEqual(user, '0', 'the broker does not run as root');
          await waitFor(
            async () =>
              (
                await execFileAsync('docker', ['inspect', '-f', '{{.State.Health.Status}}', id])
              ).stdout.trim() === 'healthy',
            'the container is healthy',
            { timeoutMs: 120_000, intervalMs: 1_000 },
          );
          const port = (await execFileAsync('docker', ['port', id, '7480'])).stdout.trim();
          const url = `http://${port.split('\n')[0]!}`;
          assert.equal((await fetch(`${url}/healthz`)).status, 200);
        } finally {
          await execFileAsync('docker', ['rm', '-f', id]).catch(() => undefined);
          await execFileAsync('docker', ['rmi', tag]).catch(() => undefined);
        }
        return;
      }

      t.diagnostic('branch: docker info fails here; running the CMD and HEALTHCHECK directly');
      // The CMD as the image runs it, from the repository root (the image's /app), with its
      // container-only values moved to loopback and a temporary folder (later flags win).
      const httpPort = await freePort();
      const base = `http://127.0.0.1:${httpPort}`;
      const overrides = [
        '--data',
        tmpDir(),
        '--bind',
        'tcp://127.0.0.1:*',
        '--http',
        `127.0.0.1:${httpPort}`,
      ];
      assert.equal(cmd[0], 'node');
      const r = run([...cmd.slice(1), ...overrides]);
      const healthArgs = health
        .slice(1)
        .map((a) => a.replace('127.0.0.1:7480', `127.0.0.1:${httpPort}`));
      const healthcheck = async (): Promise<number> => {
        try {
          await execFileAsync(process.execPath, healthArgs, { timeout: 10_000 });
          return 0;
        } catch (err) {
          return (err as { code?: number }).code ?? -1;
        }
      };
      try {
        await waitFor(() => ready(base), 'the CMD serves /readyz', { timeoutMs: 20_000 });
        assert.equal(await healthcheck(), 0, 'the HEALTHCHECK passes while ready');
        jsonLines(r.stderrLines()); // the CMD logs JSON
        r.child.kill('SIGTERM');
        assert.equal(await r.exited, 0);
        assert.equal(await healthcheck(), 1, 'the HEALTHCHECK fails once the broker is gone');
      } finally {
        r.child.kill('SIGKILL');
      }
    },
  );

  it('npm start builds only when a source changed (scripts/build-if-changed.mjs)', async () => {
    const script = path.join(REPO_ROOT, 'scripts', 'build-if-changed.mjs');
    const check = async (): Promise<{ code: number; stderr: string }> => {
      try {
        const { stderr } = await execFileAsync(process.execPath, [script, '--check'], {
          cwd: REPO_ROOT,
          timeout: 30_000,
        });
        return { code: 0, stderr };
      } catch (err) {
        const e = err as { code?: number; stderr?: string };
        return { code: e.code ?? -1, stderr: e.stderr ?? '' };
      }
    };
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.match(pkg.scripts['prestart']!, /build-if-changed\.mjs/);
    assert.match(pkg.scripts['pretest']!, /npm run build/, "npm test's build is unchanged");
    // The suite runs after a build: nothing changed since.
    const fresh = await check();
    assert.deepEqual([fresh.code, /up to date/.test(fresh.stderr)], [0, true], fresh.stderr);
    // A source newer than the build: a build is due, naming the file. Its time is restored.
    const source = path.join(
      REPO_ROOT,
      'packages',
      'ferrymq-server',
      'src',
      'server',
      'readiness.ts',
    );
    const before = fs.statSync(source);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(source, later, later);
    try {
      const stale = await check();
      assert.equal(stale.code, 1, stale.stderr);
      assert.match(stale.stderr, /build needed: .*src\/server\/readiness\.ts changed/);
    } finally {
      fs.utimesSync(source, before.atime, before.mtime);
    }
    assert.equal((await check()).code, 0, 'up to date again once the time is restored');
  });
});
