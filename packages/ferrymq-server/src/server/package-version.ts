/** The version of this broker package, from its package.json (beside src/ and dist/). */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** packages/ferrymq-server/package.json, from dist/server/ (built) or src/server/. */
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= (JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version;
  return cached;
}
