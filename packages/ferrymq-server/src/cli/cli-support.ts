/**
 * What every `ferry` command shares: the commander wiring (coded errors, client flags, value
 * parsers), the client connection, and bodies read from arguments, stdin (`-`) or files (`@f`).
 */
import fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { connect, DEFAULT_ENDPOINT, type FerryClient } from 'ferrymq';
import { curveOptionsOf, type CurveFlags } from './curve-flags.js';
import { FerryError } from 'ferrymq/model';

/** Exit code for a bad flag, value, argument or config file. */
export const EXIT_USAGE = 2;
/** Exit code for a failure reported by the broker (or of the work asked for). */
export const EXIT_FAILURE = 1;
/** After this long with nothing to show, `consume` and `submit --wait` say why (once). */
export const WAITING_HINT_AFTER_MS = 1_000;
/** How long client commands wait for the broker by default. */
const DEFAULT_CLI_TIMEOUT_MS = 10_000;

export function fail(message: string, code = EXIT_USAGE): never {
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(code);
}

/** commander's "error: …" text as one coded line: `ferry: CONFIG_INVALID: …` (+ usage). */
function codedError(text: string, cmd: Command | undefined): string {
  const [first = '', ...rest] = text
    .replace(/^error: /, '')
    .trimEnd()
    .split('\n');
  // "option '--x <n>' argument 'v' is invalid. must be …" → "--x must be … (got 'v')"
  const bad = /^option '(-\S+)(?:, (--\S+))?[^']*' argument '(.*)' is invalid\. (.*)$/.exec(first);
  const line = bad ? `${bad[2] ?? bad[1]} ${bad[4]} (got '${bad[3]}')` : first;
  const out = [`ferry: CONFIG_INVALID: ${line}`, ...rest];
  if (cmd?.parent) out.push(`usage: ferry ${commandPath(cmd)} ${cmd.usage()}`);
  return `${out.join('\n')}\n`;
}

/** "dlq list" for the `list` subcommand of `dlq`. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Makes commander's errors coded lines on stderr; `main` turns them into exit code 2. */
export function codedErrors(cmd: Command): Command {
  return cmd.exitOverride().configureOutput({
    outputError: (text, write) => write(codedError(text, cmd)),
  });
}

/** A subcommand with the coded error style (`parent.command()` plus {@link codedErrors}). */
export function subcommand(parent: Command, nameAndArgs: string, description: string): Command {
  return codedErrors(parent.command(nameAndArgs).description(description));
}

export interface ClientFlags extends CurveFlags {
  broker?: string;
  timeout?: number;
}

/** A command that talks to a broker: takes --broker and --timeout. */
export function clientCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return subcommand(parent, nameAndArgs, description)
    .option(
      '--broker <endpoint>',
      `broker endpoint (env FERRY_BROKER, default ${DEFAULT_ENDPOINT})`,
    )
    .option(
      '--timeout <ms>',
      `how long to wait for the broker, ms (default ${DEFAULT_CLI_TIMEOUT_MS})`,
      wholeNumber,
    )
    .option('--key-file <file>', 'CURVE: this client secret key file (env FERRY_KEY_FILE)')
    .option(
      '--server-key <key>',
      'CURVE: the broker public key or its .pub file (env FERRY_SERVER_KEY)',
    );
}

/** commander value parser: a whole number (0 or more). */
export function wholeNumber(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('must be a whole number');
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('is too large');
  return n;
}

/** commander value parser: a whole number of at least 1. */
export function positiveNumber(v: string): number {
  const n = wholeNumber(v);
  if (n < 1) throw new InvalidArgumentError('must be at least 1');
  return n;
}

/** commander value parser for a repeatable `--header k=v`. */
export function headerFlag(
  v: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('must be key=value');
  return { ...previous, [v.slice(0, i)]: v.slice(i + 1) };
}

/** commander value parser factory: one of a fixed list. */
export function oneOf<T extends string>(choices: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(choices as readonly string[]).includes(v))
      throw new InvalidArgumentError(`must be one of ${choices.join(', ')}`);
    return v as T;
  };
}

/** The endpoint a client command uses: --broker, FERRY_BROKER, or the default. */
export function endpointOf(flags: ClientFlags): string {
  return flags.broker ?? process.env['FERRY_BROKER'] ?? DEFAULT_ENDPOINT;
}

/** Tags an error as raised while connecting, so `main` can add a hint how to start a broker. */
class ConnectFailure extends Error {
  constructor(
    readonly endpoint: string,
    readonly reason: unknown,
  ) {
    super(String(reason));
  }
}

/** Connects (with --broker/--timeout), runs `fn`, closes. */
export async function withClient<T>(
  flags: ClientFlags,
  fn: (c: FerryClient) => Promise<T>,
): Promise<T> {
  const client = await connectClient(flags);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export async function connectClient(flags: ClientFlags): Promise<FerryClient> {
  const endpoint = endpointOf(flags);
  try {
    const curve = curveOptionsOf(flags);
    return await connect(endpoint, {
      requestTimeoutMs: flags.timeout ?? DEFAULT_CLI_TIMEOUT_MS,
      ...(curve ? { curve } : {}),
    });
  } catch (err) {
    throw new ConnectFailure(endpoint, err);
  }
}

/** Most bytes one body argument (`-`, `@path`) may hold: the broker's default largest request. */
const MAX_BODY_ARG_BYTES = 64 * 1024 * 1024;
/** Pause before reading a non-blocking stdin again, ms. */
const STDIN_RETRY_MS = 10;
/** Read size when reading a file or stdin, bytes. */
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * The bytes of a file or stdin (`-`), refusing more than `maxBytes` with CONFIG_INVALID: a
 * device or an endless pipe (`/dev/zero`) ends in a coded error, not a hang or an exhausted heap.
 */
export function readInput(source: string, maxBytes: number = MAX_BODY_ARG_BYTES): Buffer {
  const name = source === '-' ? 'stdin' : source;
  let fd: number;
  try {
    fd = source === '-' ? 0 : fs.openSync(source, 'r');
  } catch (err) {
    fail(`CONFIG_INVALID: cannot read ${name} (${(err as Error).message})`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, READ_CHUNK_BYTES, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking stdin with nothing yet: wait a little without spinning.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STDIN_RETRY_MS);
          continue;
        }
        if ((err as NodeJS.ErrnoException).code === 'EOF') break;
        fail(`CONFIG_INVALID: cannot read ${name} (${(err as Error).message})`);
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) fail(`CONFIG_INVALID: ${name} holds more than ${maxBytes} bytes`);
      chunks.push(chunk.subarray(0, n));
    }
  } finally {
    if (fd !== 0) fs.closeSync(fd);
  }
  return Buffer.concat(chunks);
}

let stdinUsed = false;

/**
 * One body (or params) argument: `-` is all of stdin, `@path` the whole file, anything else
 * the text itself. Stdin can be read once per command.
 */
function readBody(arg: string): Buffer {
  if (arg === '-') {
    if (stdinUsed) fail('CONFIG_INVALID: stdin (-) can be used once');
    stdinUsed = true;
    return readInput('-');
  }
  if (arg.startsWith('@') && arg.length > 1) return readInput(arg.slice(1));
  return Buffer.from(arg, 'utf8');
}

/** The bodies of a command: one argument is one frame, several are a multi-frame message. */
export function readBodies(args: string[]): Buffer | Buffer[] {
  const frames = args.map(readBody);
  return frames.length === 1 ? frames[0]! : frames;
}

/** Text when the bytes are UTF-8, else `base64:…`. */
export function printable(b: Buffer): string {
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `base64:${b.toString('base64')}`;
}

/** The one-line `ferry: CODE: message` for an error reaching `main`, with a hint if useful. */
export function describeFailure(err: unknown): string {
  const connecting = err instanceof ConnectFailure ? err : undefined;
  const cause = connecting ? connecting.reason : err;
  const e = cause instanceof FerryError ? cause : new FerryError('INTERNAL', String(cause));
  let text = `${e.code}: ${e.message}`;
  const code = e.code as string;
  if (connecting && (code === 'UNREACHABLE' || code === 'TIMEOUT')) {
    text +=
      `\nferry: hint: no broker answered at ${connecting.endpoint}. Start one with 'ferry start'` +
      ` (or point --broker / FERRY_BROKER at a running one).`;
  }
  return text;
}
