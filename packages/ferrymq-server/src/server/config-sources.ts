/**
 * Where the configuration comes from: four layers, defaults < config file < environment
 * (FERRY_*) < command-line flags. Unknown keys, bad values and bad flags are refused with
 * CONFIG_INVALID and a message naming the key and the layer it came from; unknown FERRY_*
 * environment variables are only reported (unknownFerryVariables), for a warning.
 */
import fs from 'node:fs';
import { CONFIG_SCHEMA, DEFAULT_CONFIG, type FerryConfig } from './config-schema.js';
import { coerce, invalid } from './config-values.js';

function isKey(k: string): k is keyof FerryConfig {
  return Object.hasOwn(CONFIG_SCHEMA, k);
}

export interface ConfigSources {
  /** Path of a JSON config file. */
  file?: string | undefined;
  /** Environment variables (FERRY_* are read). */
  env?: Record<string, string | undefined>;
  /** Flags already parsed: flag name (as in CONFIG_SCHEMA) → text value (or true for a switch). */
  flags?: Record<string, string | boolean | undefined>;
}

/** Builds the configuration from its layers. Throws CONFIG_INVALID naming the bad input. */
export function loadConfig(sources: ConfigSources = {}): FerryConfig {
  const cfg: Record<string, unknown> = { ...DEFAULT_CONFIG, sync: { ...DEFAULT_CONFIG.sync } };
  if (sources.file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(sources.file, 'utf8');
    } catch (err) {
      throw invalid(sources.file, `cannot read config file (${(err as Error).message})`);
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      throw invalid(sources.file, `not valid JSON (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw invalid(sources.file, 'expected a JSON object');
    }
    for (const [k, v] of Object.entries(obj)) {
      if (!isKey(k)) throw invalid(`${sources.file}: ${k}`, 'unknown key');
      cfg[k] = coerce(k, v, `${sources.file}: ${k}`, false);
    }
  }
  // Unknown FERRY_* variables are not an error here: the `ferry` command warns about them
  // (unknownFerryVariables) and goes on, so a variable meant for something else never stops a broker.
  const env = sources.env ?? {};
  for (const key of Object.keys(CONFIG_SCHEMA) as (keyof FerryConfig)[]) {
    const spec = CONFIG_SCHEMA[key];
    if (spec.env !== '' && env[spec.env] !== undefined) {
      cfg[key] = coerce(key, env[spec.env], `environment ${spec.env}`, true);
    }
  }
  const flags = sources.flags ?? {};
  for (const key of Object.keys(CONFIG_SCHEMA) as (keyof FerryConfig)[]) {
    const spec = CONFIG_SCHEMA[key];
    if (spec.flag !== '' && flags[spec.flag] !== undefined) {
      cfg[key] = coerce(key, flags[spec.flag], `--${spec.flag}`, true);
    }
  }
  return cfg as unknown as FerryConfig;
}

/** FERRY_* variables the `ferry` command reads besides the schema's. */
const COMMAND_ENV = ['FERRY_CONFIG', 'FERRY_BROKER', 'FERRY_KEY_FILE', 'FERRY_SERVER_KEY'];

/**
 * The FERRY_* variables of `env` that nothing reads (neither the config schema nor the
 * `ferry` command, nor `alsoKnown`), sorted: the `ferry` command warns about them.
 */
export function unknownFerryVariables(
  env: Record<string, string | undefined>,
  alsoKnown: readonly string[] = [],
): string[] {
  const known = new Set([
    ...Object.values(CONFIG_SCHEMA)
      .map((s) => s.env)
      .filter((e) => e !== ''),
    ...COMMAND_ENV,
    ...alsoKnown,
  ]);
  return Object.keys(env)
    .filter((name) => name.startsWith('FERRY_') && env[name] !== undefined && !known.has(name))
    .sort();
}
