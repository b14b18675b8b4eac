/**
 * Where the peers' npm clients (amqplib, bullmq, ioredis, nats) are: bench/peers/node_modules,
 * the install of bench/peers/package.json, a package of its own that `npm run bench:peers`
 * installs on demand — never the root install, so neither `npm ci` at the root nor a user of
 * `ferrymq` pulls them. The adapters (adapters/*.ts) are compiled into dist/bench/peers/adapters/,
 * where Node would not look for bench/peers/node_modules, so they load their client here.
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/peers/ in the source tree (this file runs from dist/bench/peers/). */
const PEERS_PACKAGE_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../bench/peers',
);

const requireFromPeers = createRequire(path.join(PEERS_PACKAGE_DIR, 'package.json'));

/**
 * A peer's npm client as bench/peers/node_modules holds it (its CommonJS entry). `T` is the
 * client's type, from a type-only import (`typeof Amqp` after `import type * as Amqp`).
 */
export function peerClient<T>(name: string): T {
  return requireFromPeers(name) as T;
}

/** The installed version of a peer's npm client, or '?'. */
export function packageVersion(name: string): string {
  try {
    const file = path.join(PEERS_PACKAGE_DIR, 'node_modules', name, 'package.json');
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}
