/** Configuration: defaults < file < environment < flags; unknown keys and bad values refused, unknown FERRY_* variables named. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FerryError } from 'ferrymq/model';
import {
  CONFIG_SCHEMA,
  DEFAULT_CONFIG,
  loadConfig,
  parseSync,
  unknownFerryVariables,
} from 'ferrymq-server/internal/server/config.js';
import { tmpDir } from '../helpers/broker.js';

function configFile(obj: unknown): string {
  const f = path.join(tmpDir(), 'ferry.json');
  fs.writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return f;
}

function invalid(fn: () => unknown, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FerryError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(err.message.includes(mentions), `"${err.message}" should mention ${mentions}`);
    return true;
  });
}

describe('config', () => {
  it('has documented defaults: loopback port 7400, ./data, sync always, 30 s ack timeout', () => {
    const c = loadConfig();
    assert.equal(c.bind, 'tcp://127.0.0.1:7400');
    assert.equal(c.dataDir, './data');
    assert.deepEqual(c.sync, { mode: 'always' });
    assert.equal(c.ackTimeoutMs, 30_000);
    assert.equal(c.maxAttempts, 10);
    assert.equal(c.dedupWindowMs, 600_000);
    assert.deepEqual(c, { ...DEFAULT_CONFIG });
  });

  it('layers defaults < file < environment < flags', () => {
    const file = configFile({ ackTimeoutMs: 1000, maxAttempts: 4, bind: 'tcp://127.0.0.1:1' });
    const c = loadConfig({
      file,
      env: { FERRY_ACK_TIMEOUT_MS: '2000', FERRY_SYNC: 'batch:10', PATH: '/bin' },
      flags: { 'ack-timeout': '3000' },
    });
    assert.equal(c.ackTimeoutMs, 3000, 'flag wins');
    assert.deepEqual(c.sync, { mode: 'batch', intervalMs: 10 }, 'env over default');
    assert.equal(c.maxAttempts, 4, 'file over default');
    assert.equal(c.bind, 'tcp://127.0.0.1:1');
  });

  it('takes per-queue policies from the file', () => {
    const c = loadConfig({
      file: configFile({ queues: { orders: { maxDepth: 5, ackTimeoutMs: 100 } } }),
    });
    assert.deepEqual(c.queues, { orders: { maxDepth: 5, ackTimeoutMs: 100 } });
  });

  it('takes switches (--pzq, --zmws) from flags, environment and file; checks the PZQ queue name', () => {
    assert.equal(loadConfig().pzq, false);
    assert.equal(loadConfig({ flags: { pzq: true } }).pzq, true);
    assert.equal(loadConfig({ env: { FERRY_PZQ: '1' } }).pzq, true);
    assert.equal(loadConfig({ env: { FERRY_PZQ: 'false' } }).pzq, false);
    assert.equal(loadConfig({ file: configFile({ pzq: true }) }).pzq, true);
    assert.equal(loadConfig({ flags: { zmws: true } }).zmws, true);
    assert.equal(loadConfig({ env: { FERRY_ZMWS: 'off' } }).zmws, false);
    assert.equal(loadConfig().zmwsClient, 'tcp://127.0.0.1:5565');
    assert.equal(loadConfig().zmwsWorker, 'tcp://127.0.0.1:5566');
    assert.equal(loadConfig({ flags: { 'pzq-ack-timeout': '2000000' } }).pzqAckTimeoutUs, 2e6);
    invalid(() => loadConfig({ file: configFile({ pzq: 'yes' }) }), 'pzq');
    invalid(() => loadConfig({ env: { FERRY_PZQ: 'maybe' } }), 'FERRY_PZQ');
    invalid(() => loadConfig({ flags: { 'pzq-queue': 'bad name' } }), '--pzq-queue');
    invalid(() => loadConfig({ flags: { 'pzq-ack-timeout': '10' } }), '--pzq-ack-timeout');
  });

  it('ignores unknown FERRY_* variables and names them for a warning', () => {
    // Behaviour changed deliberately: an unknown FERRY_* variable (FERRY_TEST_SEED, a typo)
    // used to stop the broker; now `ferry` warns about it and goes on.
    const env = {
      FERRY_BOGUS: '1',
      FERRY_TEST_SEED: '42',
      FERRY_ACK_TIMEOUT_MS: '2000',
      FERRY_BROKER: 'tcp://127.0.0.1:1',
      FERRY_CONFIG: '/x.json',
      NOT_FERRY: 'x',
    };
    assert.equal(loadConfig({ env }).ackTimeoutMs, 2000);
    assert.deepEqual(unknownFerryVariables(env), ['FERRY_BOGUS', 'FERRY_TEST_SEED']);
    assert.deepEqual(unknownFerryVariables(env, ['FERRY_TEST_SEED']), ['FERRY_BOGUS']);
    assert.deepEqual(unknownFerryVariables({ FERRY_SYNC: 'off', FERRY_X: undefined }), []);
  });

  it('refuses unknown keys, bad values and bad files, naming the culprit', () => {
    invalid(() => loadConfig({ file: configFile({ ackTimeout: 5 }) }), 'ackTimeout');
    invalid(() => loadConfig({ file: configFile('{not json') }), 'not valid JSON');
    invalid(() => loadConfig({ file: configFile([1]) }), 'JSON object');
    invalid(() => loadConfig({ file: '/nonexistent/ferry.json' }), 'cannot read');
    invalid(() => loadConfig({ file: configFile({ maxAttempts: 0 }) }), 'maxAttempts');
    invalid(() => loadConfig({ file: configFile({ maxAttempts: '3' }) }), 'maxAttempts');
    invalid(() => loadConfig({ file: configFile({ queues: { 'bad name': {} } }) }), 'bad name');
    invalid(() => loadConfig({ file: configFile({ queues: { q: { nope: 1 } } }) }), 'nope');
    invalid(() => loadConfig({ env: { FERRY_MAX_DEPTH: 'ten' } }), 'FERRY_MAX_DEPTH');
    invalid(() => loadConfig({ flags: { 'ack-timeout': '-1' } }), '--ack-timeout');
    invalid(() => loadConfig({ flags: { 'ack-timeout': '1.5' } }), '--ack-timeout');
    invalid(() => loadConfig({ flags: { heartbeat: '5' } }), '--heartbeat');
    invalid(() => loadConfig({ flags: { 'log-level': 'loud' } }), '--log-level');
    invalid(() => parseSync('sometimes'), 'sync');
    invalid(() => parseSync('batch:0'), 'sync');
    invalid(() => parseSync('batch:abc'), 'sync');
  });

  it('refuses garbage for every key of the schema, from the file, the environment and flags', () => {
    /** Values each kind must refuse, as text (env, flags) and as JSON (file). */
    const garbage: Record<string, { text: string[]; json: unknown[] }> = {
      int: { text: ['abc', '1.5', '99999999999999999999'], json: ['3', 1.5, -1e18] },
      bool: { text: ['maybe'], json: ['yes please', 2] },
      string: { text: [''], json: [7, ''] },
      queue: { text: ['bad name'], json: ['bad name', 3] },
      sync: { text: ['sometimes'], json: [1] },
      level: { text: ['loud'], json: [0] },
      format: { text: ['xml', 'JSON'], json: [1] },
      http: { text: ['not-an-address'], json: [8080] },
      queues: { text: [], json: [[1], 'q'] },
      curve: { text: [''], json: ['a.key', { secretKeyFile: '' }, { file: 'a.key' }] },
      cidrs: { text: ['10.0.0.0/33', 'nowhere', '::1/129', ''], json: [[], '10.0.0.1', [7]] },
      hosts: {
        text: ['a b', 'x.example:80', 'http://x.example'],
        json: [[1], 'x.example', ['-x']],
      },
      origins: {
        text: ['evil.example', 'http://x.example/path', 'ftp://x.example'],
        json: [['http://u:p@x.example'], 3, 'http://x.example'],
      },
      'token-hash': {
        text: ['abc', `sha256:${'z'.repeat(64)}`],
        json: [1, `sha256:${'a'.repeat(63)}`],
      },
      store: {
        text: ['mysql://x/db', 'not a url', 'postgres://', 'postgres://host', ''],
        json: [1, 'redis://x/0', ['postgres://h/db']],
      },
      'store-schema': {
        text: ['Ferry', '1abc', 'a-b', 'x'.repeat(64), ''],
        json: [1, 'has space', 'ferry;drop'],
      },
      'node-id': {
        text: ['a b', 'x'.repeat(129), '', 'a/b'],
        json: [1, 'node"1', ['a']],
      },
    };
    let checked = 0;
    for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) {
      const bad = garbage[spec.kind];
      assert.ok(bad, `no garbage listed for kind ${spec.kind}`);
      for (const v of bad.json) {
        invalid(() => loadConfig({ file: configFile({ [key]: v }) }), key);
        checked++;
      }
      for (const v of bad.text) {
        if (spec.env) invalid(() => loadConfig({ env: { [spec.env]: v } }), spec.env);
        if (spec.flag) invalid(() => loadConfig({ flags: { [spec.flag]: v } }), `--${spec.flag}`);
        checked++;
      }
    }
    assert.ok(checked > 100, `checked ${checked} bad values`);
  });

  it('reads the HTTP security keys: host and origin lists, TLS files, metrics token', () => {
    const d = loadConfig();
    assert.deepEqual([d.httpHosts, d.httpOrigins, d.httpRateLimit], [[], [], 0]);
    assert.equal(d.tlsCert, undefined);
    const text = loadConfig({
      flags: {
        'http-hosts': 'Ferry.Internal, [::1],10.0.0.5',
        'http-origins': 'https://app.example, http://localhost:3000/',
        'metrics-token': `sha256:${'AB'.repeat(32)}`,
        'http-rate-limit': '600',
      },
    });
    assert.deepEqual(text.httpHosts, ['ferry.internal', '[::1]', '10.0.0.5']);
    assert.deepEqual(text.httpOrigins, ['https://app.example', 'http://localhost:3000']);
    assert.equal(text.metricsToken, `sha256:${'ab'.repeat(32)}`);
    assert.equal(text.httpRateLimit, 600);
    const file = loadConfig({
      file: configFile({ httpHosts: ['a.example'], httpOrigins: [], tlsCert: 'c.pem' }),
    });
    assert.deepEqual(
      [file.httpHosts, file.httpOrigins, file.tlsCert],
      [['a.example'], [], 'c.pem'],
    );
  });

  it('reads the store keys: a PostgreSQL URL, its schema, the node id and liveness timeout', () => {
    const dflt = loadConfig({});
    assert.deepEqual(
      [dflt.store, dflt.storeSchema, dflt.nodeId, dflt.nodeTimeoutMs],
      [undefined, 'ferry', undefined, 15_000],
    );
    const c = loadConfig({
      env: { FERRY_STORE: 'postgresql://u@db.example:5433/ferry' },
      flags: { 'store-schema': 'ferry_a', 'node-id': 'host-1:7400', 'node-timeout': '5000' },
    });
    assert.deepEqual(
      [c.store, c.storeSchema, c.nodeId, c.nodeTimeoutMs],
      ['postgresql://u@db.example:5433/ferry', 'ferry_a', 'host-1:7400', 5000],
    );
    invalid(() => loadConfig({ flags: { 'node-timeout': '100' } }), '--node-timeout');
  });

  it('runs the HTTP gateway on 127.0.0.1:7480 unless moved or turned off', () => {
    assert.equal(loadConfig().http, '127.0.0.1:7480');
    assert.equal(loadConfig({ flags: { http: '0.0.0.0:8080' } }).http, '0.0.0.0:8080');
    assert.equal(loadConfig({ flags: { http: '[::1]:0' } }).http, '[::1]:0');
    assert.equal(loadConfig({ flags: { http: 'off' } }).http, undefined);
    assert.equal(loadConfig({ env: { FERRY_HTTP: 'off' } }).http, undefined);
    assert.equal(loadConfig({ file: configFile({ http: 'off' }) }).http, undefined);
    assert.equal(loadConfig({ flags: { 'http-body-limit': '65536' } }).httpBodyLimitBytes, 65536);
    invalid(() => loadConfig({ flags: { http: '7480' } }), '--http');
    invalid(() => loadConfig({ flags: { http: 'localhost:99999' } }), '--http');
    invalid(() => loadConfig({ env: { FERRY_HTTP: 'http://x:1' } }), 'FERRY_HTTP');
    invalid(() => loadConfig({ flags: { 'http-body-limit': '10' } }), '--http-body-limit');
  });
});
