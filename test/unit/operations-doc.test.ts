/** Every configuration key, flag and environment variable is documented in docs/operations.md. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_SCHEMA } from 'ferrymq-server/internal/server/config.js';
import { REPO_ROOT } from '../helpers/broker.js';

describe('docs/operations.md', () => {
  it('documents every config key with its flag and environment variable', () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) {
      const row = doc.split('\n').find((l) => new RegExp(`^\\|\\s*\`${key}\`\\s*\\|`).test(l));
      assert.ok(row, `config key ${key} has no row`);
      if (spec.flag) assert.ok(row.includes(`\`--${spec.flag}\``), `${key}: flag --${spec.flag}`);
      if (spec.env) assert.ok(row.includes(`\`${spec.env}\``), `${key}: env ${spec.env}`);
    }
  });
});
