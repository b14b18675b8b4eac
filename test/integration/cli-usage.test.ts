/**
 * The `ferry` command's surface as a user meets it: help for every command, the version,
 * suggestions, completion scripts, coded usage errors, warnings about unknown FERRY_*
 * variables, and a reader of stdout that goes away (`ferry stats | head`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT, startBroker, tmpDir, type TestBroker } from '../helpers/broker.js';
import { runFerry, spawnFerry } from '../helpers/cli.js';

/** Every command and subcommand; checked against `ferry --help` so a new one needs a line here. */
const COMMANDS = [
  'start',
  'send',
  'consume',
  'stats',
  'queues',
  'peek',
  'dlq',
  'dlq list',
  'dlq redrive',
  'purge',
  'queue',
  'queue delete',
  'queue pause',
  'queue resume',
  'queue policy',
  'unsubscribe',
  'call',
  'submit',
  'job',
  'jobs',
  'services',
  'workers',
  'publish',
  'subscribe',
  'retained',
  'config',
  'config set',
  'config get',
  'config status',
  'worker',
  'top',
  'bench',
  'bench queue',
  'bench call',
  'ping',
  'keygen',
  'migrate',
  'completion',
];
/** Help runs started at once (each is a node process). */
const HELP_PARALLEL = 4;

describe('ferry usage', () => {
  let broker: TestBroker;
  const b = (): string[] => ['--broker', broker.endpoint];

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await broker.stop();
  });

  it('answers --help for every command with exit 0, and lists them all in ferry --help', async () => {
    const top = await runFerry(['--help']);
    assert.equal(top.code, 0, top.stderr);
    const listed = [...top.stdout.matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]!);
    const topLevel = COMMANDS.filter((c) => !c.includes(' '));
    assert.deepEqual(listed.filter((c) => c !== 'help').sort(), [...topLevel].sort());
    for (let i = 0; i < COMMANDS.length; i += HELP_PARALLEL) {
      await Promise.all(
        COMMANDS.slice(i, i + HELP_PARALLEL).map(async (cmd) => {
          const r = await runFerry([...cmd.split(' '), '--help']);
          assert.equal(r.code, 0, `${cmd} --help: ${r.stderr}`);
          assert.match(r.stdout, new RegExp(`^Usage: ferry ${cmd} `), cmd);
        }),
      );
    }
    const start = await runFerry(['start', '--help']);
    assert.match(start.stdout, /--ack-timeout <value>[\s\S]*?env\s+FERRY_ACK_TIMEOUT_MS/);
    assert.match(start.stdout, /--no-http/);
    const viaHelp = await runFerry(['help', 'send']);
    assert.equal(viaHelp.code, 0);
    assert.match(viaHelp.stdout, /--file <path>/);
  });

  it('prints the package version for --version and -V', async () => {
    const pkg = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'packages', 'ferrymq-server', 'package.json'), 'utf8'),
    ) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runFerry([flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `ferry ${pkg.version}\n`);
    }
  });

  it('suggests the command meant by a misspelt one, with a coded error and exit 2', async () => {
    const r = await runFerry(['stat']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ferry: CONFIG_INVALID: unknown command 'stat'/m);
    assert.match(r.stderr, /Did you mean .*\bstats\b/);
    const sub = await runFerry(['dlq', 'lst']);
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /Did you mean .*\blist\b/);
  });

  it('refuses unknown flags, bad values and missing arguments with CONFIG_INVALID and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['queues', '--frobnicate', ...b()], /CONFIG_INVALID: unknown option '--frobnicate'/],
      [['top', '--count', '0', ...b()], /CONFIG_INVALID: --count must be at least 1 \(got '0'\)/],
      [
        ['peek', 'q', '--state', 'asleep', ...b()],
        /CONFIG_INVALID: --state must be one of ready, leased, scheduled, dead/,
      ],
      [
        ['consume', 'q', '--timeout', 'soon', ...b()],
        /CONFIG_INVALID: --timeout must be a whole number/,
      ],
      [['send', ...b()], /CONFIG_INVALID: missing required argument 'queue'/],
      [['send', 'q', ...b()], /CONFIG_INVALID: missing body/],
      [
        ['send', 'q', 'x', '--header', 'novalue', ...b()],
        /CONFIG_INVALID: --header must be key=value/,
      ],
      [['worker', 'svc', ...b()], /CONFIG_INVALID: missing required argument 'command'/],
      [['completion', 'fish'], /CONFIG_INVALID: .*must be one of bash, zsh/],
      [['start', 'extra'], /CONFIG_INVALID: too many arguments/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runFerry(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
      assert.match(r.stderr, /^usage: ferry /m, `${args.join(' ')} shows its usage`);
    }
  });

  it('warns about unknown FERRY_* variables and goes on, for client commands and start', async () => {
    const env = { FERRY_TEST_SEED: '42', FERRY_BOGUS: 'x' };
    const q = await runFerry(['queues', ...b()], { env });
    assert.equal(q.code, 0, q.stderr);
    assert.match(
      q.stderr,
      /^ferry: warning: ignoring unknown environment variable\(s\) FERRY_BOGUS, FERRY_TEST_SEED$/m,
    );
    const quiet = await runFerry(['queues', ...b()], { env: { FERRY_BROKER: broker.endpoint } });
    assert.doesNotMatch(quiet.stderr, /warning/);
    const started = spawnFerry(
      [
        'start',
        '--data',
        tmpDir(),
        '--bind',
        'tcp://127.0.0.1:*',
        '--no-http',
        '--log-level',
        'warn',
      ],
      { env },
    );
    try {
      await started.waitFor('stdout', /listening on tcp:/);
      assert.match(
        started.stderr(),
        /unknown environment variable\(s\) FERRY_BOGUS, FERRY_TEST_SEED/,
      );
    } finally {
      started.child.kill('SIGTERM');
    }
    assert.equal((await started.exited).code, 0, started.stderr());
    // An unknown key in a config file is still refused.
    const file = path.join(tmpDir(), 'c.json');
    fs.writeFileSync(file, JSON.stringify({ colour: 'blue' }));
    const bad = await runFerry(['start', '--config', file]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CONFIG_INVALID: .*colour: unknown key/);
  });

  it('exits quietly (0, no stack trace) when the reader of stdout has gone', async () => {
    for (const args of [['stats', ...b()], ['--help'], ['completion', 'bash']]) {
      const r = spawnFerry(args, { closeStdout: true });
      const { code } = await r.exited;
      assert.equal(code, 0, `${args.join(' ')}: ${r.stderr()}`);
      assert.doesNotMatch(r.stderr(), /EPIPE|Error|at /, args.join(' '));
    }
  });

  it('prints bash and zsh completion scripts that complete commands and flags', async () => {
    const bash = await runFerry(['completion', 'bash']);
    assert.equal(bash.code, 0, bash.stderr);
    const script = path.join(tmpDir(), 'ferry.bash');
    fs.writeFileSync(script, bash.stdout);
    const complete = (words: string[]): string => {
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source "$0"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); ` +
            `COMP_CWORD=${words.length - 1}; _ferry; echo "\${COMPREPLY[*]}"`,
          script,
        ],
        { encoding: 'utf8', timeout: 10_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    assert.equal(complete(['ferry', 'sta']), 'start stats');
    assert.equal(complete(['ferry', 'dlq', '']), 'list redrive');
    assert.equal(complete(['ferry', 'send', 'q', '--pri']), '--priority');
    assert.equal(complete(['ferry', 'bench', 'queue', '--prod']), '--producers');
    const zsh = await runFerry(['completion', 'zsh']);
    assert.equal(zsh.code, 0, zsh.stderr);
    assert.match(zsh.stdout, /^#compdef ferry/);
    assert.match(zsh.stdout, /_ferry_subs\['ferry dlq'\]='list redrive'/);
    assert.match(zsh.stdout, /compdef _ferry ferry/);
  });
});
