/** `ferry start`: runs a broker with every option of the config schema as a flag. */
import { Option, type Command } from 'commander';
import { FerryError } from 'ferrymq/model';
import { EXIT_FAILURE, fail, subcommand } from './cli-support.js';
import { CONFIG_SCHEMA, HTTP_OFF, loadConfig, type FerryConfig } from '../server/config.js';
import type { RunningServer } from '../server/server.js';

/** After the first SIGINT/SIGTERM, a second one (or this long) forces exit. */
const FORCE_EXIT_AFTER_MS = 15_000;

export function registerStart(program: Command): void {
  const cmd = subcommand(program, 'start', 'run a broker (every option also in a config file)')
    .option('--config <file>', 'JSON config file (env FERRY_CONFIG)')
    .addHelpText(
      'after',
      '\nLayers: defaults < config file < environment (FERRY_*) < flags. See docs/operations.md.',
    );
  for (const [key, s] of Object.entries(CONFIG_SCHEMA)) {
    if (s.flag === '') continue;
    const flags = s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <value>`;
    cmd.addOption(new Option(flags, `${s.help} (config key ${key}, env ${s.env})`));
  }
  cmd.option('--no-http', `turn the HTTP gateway off (same as --http ${HTTP_OFF})`);
  cmd.action(async (_opts: Record<string, unknown>, self: Command) => {
    await runStart(self);
  });
}

/** The flag values by flag name (as CONFIG_SCHEMA names them), for loadConfig. */
function flagValues(cmd: Command): Record<string, string | boolean | undefined> {
  const opts = cmd.opts<Record<string, unknown>>();
  const out: Record<string, string | boolean | undefined> = {};
  for (const o of cmd.options) {
    if (o.negate || o.long === undefined) continue;
    const v = opts[o.attributeName()];
    if (typeof v === 'string' || typeof v === 'boolean') out[o.long.slice(2)] = v;
  }
  return out;
}

async function runStart(cmd: Command): Promise<void> {
  const args = process.argv;
  const saysNoHttp = args.includes('--no-http');
  if (saysNoHttp && args.some((a) => a === '--http' || a.startsWith('--http=')))
    fail('CONFIG_INVALID: --http and --no-http exclude each other');
  const flags = flagValues(cmd);
  if (saysNoHttp) flags['http'] = HTTP_OFF;
  let config: FerryConfig;
  try {
    config = loadConfig({
      file: (flags['config'] as string | undefined) ?? process.env['FERRY_CONFIG'],
      env: process.env,
      flags,
    });
  } catch (err) {
    const e = err as FerryError;
    fail(`${e.code ?? 'CONFIG_INVALID'}: ${e.message}`);
  }
  // Loaded here, not at the top: client commands need none of the broker's modules.
  const [{ createLogger }, { startServer }] = await Promise.all([
    import('../server/logger.js'),
    import('../server/server.js'),
  ]);
  const log = createLogger(config.logLevel);
  let server: RunningServer;
  try {
    server = await startServer(config, { logger: log });
  } catch (err) {
    const e = err instanceof FerryError ? err : new FerryError('INTERNAL', String(err));
    fail(`${e.code}: ${e.message}`, EXIT_FAILURE);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn(`second ${signal}: forcing exit`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal}: draining and shutting down (send again to force)`);
    const force = setTimeout(() => {
      log.error('shutdown took too long; forcing exit');
      process.exit(1);
    }, FORCE_EXIT_AFTER_MS);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { err: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    try {
      server.reloadAuth();
    } catch (err) {
      const e = err as FerryError;
      log.error('auth file reload failed; the previous one stays in force', {
        code: e.code,
        err: e.message,
      });
    }
  });
  // Only now: whoever waits for this line may signal us at once.
  announce(server, config);
}

function announce(server: RunningServer, config: FerryConfig): void {
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out(`ferry listening on ${server.endpoint} (data ${config.dataDir})`);
  if (server.publicKey !== undefined) out(`ferry CURVE server key ${server.publicKey}`);
  if (server.httpUrl !== undefined)
    out(`ferry http (REST, dashboard, /metrics) on ${server.httpUrl}`);
  if (server.mdpEndpoint !== undefined)
    out(`ferry mdp (Majordomo, MMI, Titanic) on ${server.mdpEndpoint}`);
  if (server.cloneEndpoints !== undefined) {
    const e = server.cloneEndpoints;
    out(
      `ferry clone (12/CHP) snapshot ${e.snapshot}, publisher ${e.publisher}, collector ${e.collector}`,
    );
  }
  if (server.pzqEndpoints !== undefined) {
    const p = server.pzqEndpoints;
    out(`ferry pzq producers on ${p.receive}, consumers on ${p.send}, monitor on ${p.monitor}`);
  }
  if (server.zmwsEndpoints !== undefined) {
    const z = server.zmwsEndpoints;
    out(`ferry zmws clients on ${z.client}, workers on ${z.worker}`);
  }
}
