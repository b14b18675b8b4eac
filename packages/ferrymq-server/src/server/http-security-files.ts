/**
 * The files the HTTP gateway's security reads at start: the TLS certificate and key (checked
 * to be PEM that Node's TLS takes, and a pair), and the auth file when no holder of it is
 * handed in. A missing, unreadable or bad file stops the start with a coded error naming it.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { FerryError } from 'ferrymq/model';
import { parseAuthFile, type AuthModel } from '../security/auth-model.js';
import type { FerryConfig } from './config.js';

function readFile(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new FerryError(
      'CONFIG_INVALID',
      `${what} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { cause: err },
    );
  }
}

/** The certificate and key of `tlsCert` / `tlsKey`, or undefined when TLS is off. */
export function readTlsFiles(config: FerryConfig): { cert: Buffer; key: Buffer } | undefined {
  const { tlsCert, tlsKey } = config;
  if (tlsCert === undefined && tlsKey === undefined) return undefined;
  if (tlsCert === undefined || tlsKey === undefined) {
    throw new FerryError(
      'CONFIG_INVALID',
      `--tls-cert and --tls-key go together; only ${tlsCert === undefined ? '--tls-key' : '--tls-cert'} is set`,
    );
  }
  const cert = readFile(tlsCert, '--tls-cert');
  const key = readFile(tlsKey, '--tls-key');
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new FerryError(
      'CONFIG_INVALID',
      `--tls-cert ${tlsCert} / --tls-key ${tlsKey}: not a PEM certificate and its key (${(err as Error).message})`,
      { cause: err },
    );
  }
  return { cert, key };
}

/** The auth file of `authFile`, parsed (AUTH_FILE_INVALID names what is wrong). */
export function readAuthFile(path: string): AuthModel {
  return parseAuthFile(readFile(path, '--auth-file').toString('utf8'), path);
}
