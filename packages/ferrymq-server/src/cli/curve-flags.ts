/**
 * The CURVE flags of client commands: `--key-file` (this client's secret key file, as
 * `ferry keygen` writes it; env FERRY_KEY_FILE) and `--server-key` (the broker's public key,
 * Z85 or a `.pub` file; env FERRY_SERVER_KEY). Both or neither.
 */
import fs from 'node:fs';
import type { CurveOptions } from 'ferrymq';
import { FerryError, isCurveKey } from 'ferrymq/model';
import { publicKeyOf } from 'ferrymq/protocol';

export interface CurveFlags {
  keyFile?: string;
  serverKey?: string;
}

function readKey(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FerryError('KEY_INVALID', `cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  const key = text.trim();
  if (!isCurveKey(key))
    throw new FerryError('KEY_INVALID', `${file} holds no CURVE key (40 characters of Z85)`);
  return key;
}

/** The `curve` connect option of the flags and environment, or undefined for a plain connection. */
export function curveOptionsOf(flags: CurveFlags): CurveOptions | undefined {
  const keyFile = flags.keyFile ?? process.env['FERRY_KEY_FILE'];
  const server = flags.serverKey ?? process.env['FERRY_SERVER_KEY'];
  if (keyFile === undefined && server === undefined) return undefined;
  if (keyFile === undefined || server === undefined)
    throw new FerryError(
      'CONFIG_INVALID',
      'CURVE needs both --key-file (or FERRY_KEY_FILE) and --server-key (or FERRY_SERVER_KEY)',
    );
  const secretKey = readKey(keyFile, 'the key file');
  const serverKey = isCurveKey(server) ? server : readKey(server, 'the server key file');
  return { serverKey, publicKey: publicKeyOf(secretKey), secretKey };
}
