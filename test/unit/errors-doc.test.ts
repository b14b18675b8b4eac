/** The error registry and docs/errors.md list the same codes with the same HTTP statuses. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_REGISTRY, FerryError, isErrorCode, statusOf } from 'ferrymq/model';
import { REPO_ROOT } from '../helpers/broker.js';

describe('error registry', () => {
  it('matches docs/errors.md code for code and status for status', () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
    const documented = new Map<string, number>();
    for (const m of doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm))
      documented.set(m[1]!, Number(m[2]));
    const registry = new Map(Object.entries(ERROR_REGISTRY).map(([k, v]) => [k, v.status]));
    for (const [code, status] of registry) {
      assert.ok(documented.has(code), `${code} is missing from docs/errors.md`);
      assert.equal(documented.get(code), status, `${code}: status differs between code and doc`);
    }
    for (const code of documented.keys())
      assert.ok(registry.has(code), `docs/errors.md lists unknown code ${code}`);
  });

  it('builds typed errors that serialise to {code, message}', () => {
    const e = new FerryError('QUEUE_FULL', 'full');
    assert.equal(e.name, 'FerryError');
    assert.equal(e.status, 429);
    assert.deepEqual(e.toJSON(), { code: 'QUEUE_FULL', message: 'full' });
    assert.equal(statusOf('NO_SESSION'), 401);
    assert.ok(isErrorCode('LEASE_LOST'));
    assert.ok(!isErrorCode('NOT_A_CODE'));
    assert.ok(new FerryError('INTERNAL').message.length > 0, 'a default message from the registry');
  });
});
