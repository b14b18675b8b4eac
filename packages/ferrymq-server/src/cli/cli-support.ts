/** What every `ferry` client command shares: flag parsing, the client, output helpers. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { connect, DEFAULT_ENDPOINT, type FerryClient } from 'ferrymq';
import { FerryError } from 'ferrymq/model';

export function fail(message: string, code = 2): never {
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(code);
}

export function parse(
  argv: string[],
  options: ParseArgsConfig['options'],
): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = new FerryError('CONFIG_INVALID', (err as Error).message);
    fail(`${e.code}: ${e.message}`);
  }
}

/** How long client commands wait for the broker by default. */
const DEFAULT_CLI_TIMEOUT_MS = 10_000;
export const CLIENT_FLAGS = { broker: { type: 'string' }, timeout: { type: 'string' } } as const;

export async function withClient<T>(
  values: Record<string, unknown>,
  fn: (c: FerryClient) => Promise<T>,
): Promise<T> {
  const endpoint =
    (values['broker'] as string | undefined) ?? process.env['FERRY_BROKER'] ?? DEFAULT_ENDPOINT;
  const timeout = intFlag(values['timeout'], 'timeout') ?? DEFAULT_CLI_TIMEOUT_MS;
  const client = await connect(endpoint, { requestTimeoutMs: timeout });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function intFlag(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v))
    fail(`CONFIG_INVALID: --${name} must be a whole number`);
  return Number(v);
}

export function printable(b: Buffer): string {
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `base64:${b.toString('base64')}`;
}

export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(head)}\n${rows.map(line).join('\n')}${rows.length ? '\n' : ''}`);
}
