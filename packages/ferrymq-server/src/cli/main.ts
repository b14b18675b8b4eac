#!/usr/bin/env node
/**
 * The `ferry` command (commander). `ferry start` runs a broker; the other commands talk to one
 * (--broker, or FERRY_BROKER, default tcp://127.0.0.1:7400). Every failure is one line on
 * stderr, `ferry: CODE: message`; exit 2 for bad usage (CONFIG_INVALID), 1 for a failure.
 * docs/cli.md describes every command.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { DEFAULT_ENDPOINT } from 'ferrymq';
import { registerBench } from './bench-command.js';
import { codedErrors, describeFailure, EXIT_FAILURE, EXIT_USAGE } from './cli-support.js';
import { registerCompletion } from './completion-command.js';
import { registerJobCommands } from './job-commands.js';
import { registerKeygen } from './keygen-command.js';
import { registerMigrate } from './migrate-command.js';
import { exitQuietlyOnClosedStdout } from './output.js';
import { registerPing } from './ping-command.js';
import { registerQueueAdminCommands } from './queue-admin-commands.js';
import { registerQueueCommands } from './queue-commands.js';
import { registerStart } from './start-command.js';
import { registerTopCommand } from './top-command.js';
import { registerTopicCommands } from './topic-commands.js';
import { registerWorker, WORKER_JOB_ENV } from './worker-command.js';
import { unknownFerryVariables } from '../server/config.js';

/** The version of this broker package (ferrymq-server's package.json, beside dist/). */
function serverVersion(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

function buildProgram(): Command {
  const program = codedErrors(new Command('ferry'))
    .description('ferry — durable message broker and job server for ZeroMQ')
    .version(`ferry ${serverVersion()}`, '-V, --version', 'print the version')
    .helpCommand('help [command]', 'help for a command')
    .addHelpText(
      'after',
      `\nClient commands take --broker <endpoint> (env FERRY_BROKER, default ${DEFAULT_ENDPOINT}),\n` +
        '--key-file and --server-key for CURVE (env FERRY_KEY_FILE, FERRY_SERVER_KEY),\n' +
        "and --timeout <ms>. 'ferry <command> --help' for a command's flags; docs/cli.md for all.\n",
    );
  registerStart(program);
  registerQueueCommands(program);
  registerQueueAdminCommands(program);
  registerJobCommands(program);
  registerTopicCommands(program);
  registerWorker(program);
  registerTopCommand(program);
  registerBench(program);
  registerPing(program);
  registerKeygen(program);
  registerMigrate(program);
  registerCompletion(program);
  return program;
}

/** Unknown FERRY_* variables: a warning, never a stop (they may be meant for something else). */
function warnUnknownEnvironment(): void {
  const unknown = unknownFerryVariables(process.env, WORKER_JOB_ENV);
  if (unknown.length > 0) {
    process.stderr.write(
      `ferry: warning: ignoring unknown environment variable(s) ${unknown.join(', ')}\n`,
    );
  }
}

async function main(argv: string[]): Promise<void> {
  exitQuietlyOnClosedStdout();
  warnUnknownEnvironment();
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp();
    return;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    // Help and --version end in a CommanderError with exit code 0; bad usage was printed already.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    throw err;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`ferry: ${describeFailure(err)}\n`);
  process.exit(EXIT_FAILURE);
});
