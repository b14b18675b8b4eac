/**
 * The security component, first in the start order (docs/security.md): it refuses to listen
 * beyond loopback where nothing protects an endpoint (unless `insecure`), reads the broker's
 * CURVE secret key and the auth file (a bad one stops the start with a coded error before any
 * store opens), and hands the dialects what protects them: the Ferry endpoint's CURVE and key
 * check, the session checks (ferry-access.ts), and the address allowlists of the dialects.
 * reload() re-reads the auth file (SIGHUP); a bad file keeps the one in force.
 */
import fs from 'node:fs';
import { FerryError, isCurveKey, z85Encode } from 'ferrymq/model';
import { publicKeyOf } from 'ferrymq/protocol';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { FerryAccess } from '../dialects/ferry/ferry-access.js';
import { parseAuthFile, type AuthModel } from '../security/auth-model.js';
import type { EndpointSecurity } from '../transport/zap-handler.js';
import { allowlist, type SecurityConfig } from './config-security.js';
import type { FerryConfig } from './config.js';
import type { Component } from './lifecycle.js';

/** Hosts that only this machine reaches. */
const LOOPBACK_HOST = /^(127(\.\d{1,3}){3}|\[::1\]|::1|localhost)$/i;
/** Transports that never leave the machine. */
const LOCAL_TRANSPORT = /^(ipc|inproc):\/\//;

/** True when a ZeroMQ endpoint (`tcp://host:port`) or HTTP address (`host:port`) is loopback. */
export function isLoopback(address: string): boolean {
  if (LOCAL_TRANSPORT.test(address)) return true;
  const hostPort = address.replace(/^[a-z]+:\/\//, '');
  const host = hostPort.slice(0, hostPort.lastIndexOf(':'));
  return LOOPBACK_HOST.test(host);
}

interface ExposedEndpoint {
  what: string;
  address: string;
  protectedBy: boolean;
  fix: string;
}

/** Every endpoint the config binds, with whether something protects it. */
function exposedEndpoints(config: FerryConfig): ExposedEndpoint[] {
  const out: ExposedEndpoint[] = [
    {
      what: 'the Ferry endpoint (--bind)',
      address: config.bind,
      protectedBy: config.curve !== undefined,
      fix: '--curve-secret-key-file (and --auth-file)',
    },
  ];
  if (config.http !== undefined)
    out.push({
      what: 'the HTTP gateway (--http)',
      address: config.http,
      protectedBy: config.authFile !== undefined,
      fix: '--auth-file (tokens)',
    });
  const dialect = (on: boolean, what: string, addresses: string[], allow: keyof SecurityConfig) => {
    if (!on) return;
    for (const address of addresses)
      out.push({
        what,
        address,
        protectedBy: config[allow] !== undefined,
        fix: `--${allowFlag(allow)}`,
      });
  };
  dialect(
    config.mdp !== undefined,
    'the Majordomo endpoint (--mdp)',
    [config.mdp ?? ''],
    'mdpAllow',
  );
  dialect(
    config.pzq,
    'a PZQ endpoint',
    [config.pzqReceive, config.pzqSend, ...(config.pzqMonitor ? [config.pzqMonitor] : [])],
    'pzqAllow',
  );
  dialect(config.zmws, 'a ZMWS endpoint', [config.zmwsClient, config.zmwsWorker], 'zmwsAllow');
  return out;
}

function allowFlag(key: keyof SecurityConfig): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** INSECURE_BIND for the first endpoint beyond loopback that nothing protects. */
function checkBinds(config: FerryConfig): void {
  if (config.insecure) return;
  for (const e of exposedEndpoints(config)) {
    if (e.protectedBy || isLoopback(e.address)) continue;
    throw new FerryError(
      'INSECURE_BIND',
      `refusing to listen on ${e.address} for ${e.what}: it is reachable beyond this machine ` +
        `and nothing protects it, so anyone who can reach it could read, purge or rewrite ` +
        `everything. Protect it with ${e.fix}, bind it to 127.0.0.1, or pass --insecure ` +
        'if the network is trusted (docs/security.md).',
    );
  }
}

function readText(file: string, what: string, code: 'KEY_INVALID' | 'AUTH_FILE_INVALID'): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FerryError(code, `cannot read ${what} ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The secret key of a key file (`ferry keygen`'s `.key`: Z85 text, spaces around ignored). */
function readSecretKeyFile(file: string): string {
  const key = readText(file, 'the CURVE secret key file', 'KEY_INVALID').trim();
  if (!isCurveKey(key))
    throw new FerryError(
      'KEY_INVALID',
      `${file} holds no CURVE secret key: expected 40 characters of Z85 (ferry keygen writes one)`,
    );
  return key;
}

export class SecurityComponent implements Component {
  readonly name = 'security';
  /** The broker's CURVE key pair, when CURVE is on. */
  secretKey: string | undefined;
  publicKey: string | undefined;
  private authModel: AuthModel | undefined;

  constructor(
    private readonly config: FerryConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    checkBinds(this.config);
    if (this.config.curve) {
      this.secretKey = readSecretKeyFile(this.config.curve.secretKeyFile);
      this.publicKey = publicKeyOf(this.secretKey);
    }
    if (this.config.authFile !== undefined)
      this.authModel = this.readAuthFile(this.config.authFile);
    if (this.authModel && !this.secretKey)
      this.log.warn(
        'an auth file without CURVE: the Ferry endpoint cannot tell users apart and stays open ' +
          '(loopback only unless --insecure); add --curve-secret-key-file',
      );
  }

  private readAuthFile(file: string): AuthModel {
    return parseAuthFile(readText(file, 'the auth file', 'AUTH_FILE_INVALID'), file);
  }

  /** The auth model in force (undefined without an auth file). */
  get model(): AuthModel | undefined {
    return this.authModel;
  }

  /**
   * Re-reads the auth file (SIGHUP). Sessions stay; each next request is checked against the
   * new file. A bad file is refused (thrown) and the one in force stays.
   */
  reload(): void {
    if (this.config.authFile === undefined) return;
    this.authModel = this.readAuthFile(this.config.authFile);
    this.log.info('auth file reloaded', {
      file: this.config.authFile,
      users: this.authModel.users.length,
    });
  }

  /** CURVE and the key allowlist of the Ferry endpoint (undefined: plain). */
  ferryEndpoint(): EndpointSecurity | undefined {
    if (!this.secretKey) return undefined;
    return {
      name: 'ferry',
      curveSecretKey: this.secretKey,
      // Without an auth file any key may connect (CURVE then only encrypts).
      zap: ({ publicKey }) =>
        !this.authModel ||
        (publicKey !== undefined &&
          this.authModel.userForCurveKey(z85Encode(publicKey)) !== undefined),
    };
  }

  /** The session checks of the Ferry dialect (undefined: plain endpoint, no checks). */
  ferryAccess(
    jobService: (id: string) => Promise<string | undefined>,
    clock: Clock,
  ): FerryAccess | undefined {
    if (!this.secretKey) return undefined;
    return new FerryAccess({
      serverSecretKey: this.secretKey,
      model: () => this.authModel,
      jobService,
      clock,
    });
  }

  /** The address allowlist of a dialect's endpoints (undefined: any address). */
  allowlistOf(key: 'mdpAllow' | 'pzqAllow' | 'zmwsAllow'): EndpointSecurity | undefined {
    const entries = this.config[key];
    if (!entries) return undefined;
    const allowed = allowlist(entries);
    return { name: key.replace('Allow', ''), zap: ({ address }) => allowed(address) };
  }

  async close(): Promise<void> {
    this.authModel = undefined;
  }
}
