/** The auth model: parsing the auth file, keys and tokens to users, globs, deny over allow. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError, isCurveKey, z85Decode, z85Encode } from 'ferrymq/model';
import {
  AUTH_VERBS,
  hashToken,
  parseAuthConfig,
  parseAuthFile,
  type AuthUser,
} from 'ferrymq-server/internal/security/auth-model.js';

const KEY_A = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';
const KEY_B = 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID';

function refusedAt(f: () => unknown, path: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof FerryError);
    assert.equal(e.code, 'AUTH_FILE_INVALID');
    assert.ok(e.message.includes(path), `${e.message} names ${path}`);
    return true;
  });
}

const model = parseAuthConfig({
  users: [
    {
      name: 'app',
      curveKeys: [KEY_A],
      tokens: [hashToken('s3cret-app')],
      allow: {
        'queue:send': ['orders.*'],
        'queue:consume': ['orders.*'],
        'service:call': ['resize'],
        'topic:subscribe': ['config/*', 'metrics/**'],
      },
      deny: { 'queue:send': ['orders.audit'] },
    },
    { name: 'ops', curveKeys: [KEY_B], allow: { admin: ['**'], 'queue:manage': ['**'] } },
  ],
});
const app = model.userNamed('app')!;
const ops = model.userNamed('ops')!;

describe('Z85', () => {
  it('round-trips the RFC 32 test vector and refuses what is not Z85', () => {
    const bytes = Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    assert.equal(z85Encode(bytes), 'HelloWorld');
    assert.deepEqual(z85Decode('HelloWorld'), bytes);
    assert.deepEqual(z85Decode('Hello'), bytes.slice(0, 4));
    assert.equal(z85Decode('abc'), undefined, 'not a multiple of 5');
    assert.equal(z85Decode('abcd~'), undefined, 'a character outside the alphabet');
    assert.equal(z85Decode('%%%%%'), undefined, 'a chunk above 2^32');
    assert.throws(() => z85Encode(new Uint8Array(3)), RangeError);
    assert.ok(isCurveKey(KEY_A));
    assert.ok(!isCurveKey(KEY_A.slice(1)));
    assert.ok(!isCurveKey(42));
  });
});

describe('auth model', () => {
  it('finds users by CURVE key and by token, never by a wrong or hashed token', () => {
    assert.equal(model.userForCurveKey(KEY_A), app);
    assert.equal(model.userForCurveKey(KEY_B), ops);
    assert.equal(model.userForCurveKey('x'.repeat(40)), undefined);
    assert.equal(model.userForToken('s3cret-app'), app);
    assert.equal(model.userForToken('s3cret-ap'), undefined);
    assert.equal(model.userForToken(hashToken('s3cret-app')), undefined, 'the hash is no token');
    assert.equal(model.userForToken(''), undefined);
    assert.match(hashToken('x'), /^sha256:[0-9a-f]{64}$/);
  });

  it('allows what a glob grants, and deny wins over allow', () => {
    assert.ok(model.isAllowed(app, 'queue:send', 'orders.eu'));
    assert.ok(!model.isAllowed(app, 'queue:send', 'orders.audit'), 'denied');
    assert.ok(model.isAllowed(app, 'queue:consume', 'orders.audit'), 'deny is per verb');
    assert.ok(!model.isAllowed(app, 'queue:send', 'orders.eu.x'), '* is one segment');
    assert.ok(!model.isAllowed(app, 'queue:send', 'orders.'), '* is not empty');
    assert.ok(!model.isAllowed(app, 'queue:send', 'payments'));
    assert.ok(!model.isAllowed(app, 'queue:manage', 'orders.eu'), 'no grant, no verb');
    assert.ok(model.isAllowed(app, 'service:call', 'resize'));
    assert.ok(!model.isAllowed(app, 'service:call', 'resize2'), 'a plain name matches itself');
    assert.ok(!model.isAllowed(app, 'service:serve', 'resize'));
    assert.ok(!model.isAllowed(app, 'admin', 'stats'));
    assert.ok(model.isAllowed(ops, 'admin', 'stats'));
    assert.ok(model.isAllowed(ops, 'queue:manage', 'a.b.c'), '** crosses separators');
    const stranger: AuthUser = { name: 'x', curveKeys: [], tokens: [], allow: {}, deny: {} };
    assert.ok(!model.isAllowed(stranger, 'queue:send', 'orders.eu'), 'a user of no model');
  });

  it('checks topic subscriptions on the pattern, so a wildcard never widens a grant', () => {
    assert.ok(model.isAllowed(app, 'topic:subscribe', 'config/db'));
    assert.ok(model.isAllowed(app, 'topic:subscribe', 'config/*'), '* covers a * segment');
    assert.ok(!model.isAllowed(app, 'topic:subscribe', 'config/**'), 'but not **');
    assert.ok(!model.isAllowed(app, 'topic:subscribe', 'config/'), 'a prefix reads as a/**');
    assert.ok(!model.isAllowed(app, 'topic:subscribe', 'config/db/x'), '/ separates topics');
    assert.ok(model.isAllowed(app, 'topic:subscribe', 'config/db.primary'), '. does not');
    assert.ok(model.isAllowed(app, 'topic:subscribe', 'metrics/'));
    assert.ok(model.isAllowed(app, 'topic:subscribe', 'metrics/**'));
    assert.ok(model.isAllowed(app, 'topic:subscribe', 'metrics/a/*/b'));
  });

  it('throws FORBIDDEN naming the user, the verb and the resource', () => {
    assert.throws(
      () => model.check(app, 'queue:consume', 'payments'),
      (e: unknown) =>
        e instanceof FerryError &&
        e.code === 'FORBIDDEN' &&
        e.message.includes('queue:consume') &&
        e.message.includes('"payments"') &&
        e.message.includes('"app"'),
    );
    model.check(app, 'queue:consume', 'orders.eu');
  });

  it('knows the ten verbs of the issue', () => {
    assert.equal(AUTH_VERBS.length, 10);
    assert.ok(AUTH_VERBS.includes('topic:retain') && AUTH_VERBS.includes('admin'));
  });
});

describe('auth file refusals', () => {
  const user = (extra: Record<string, unknown>) => ({ users: [{ name: 'u', ...extra }] });
  it('refuses bad JSON, unknown keys and bad verbs, naming the path', () => {
    refusedAt(() => parseAuthFile('{', 'auth.json'), 'auth.json: not JSON');
    refusedAt(() => parseAuthFile('[]'), '(top)');
    refusedAt(() => parseAuthConfig({ users: [], roles: [] }), '(top).roles: unknown key');
    refusedAt(() => parseAuthConfig({}), 'users: must be an array');
    refusedAt(() => parseAuthConfig({ users: [7] }), 'users[0]: must be a JSON object');
    refusedAt(() => parseAuthConfig(user({ role: 'x' })), 'users[0].role: unknown key');
    refusedAt(
      () => parseAuthConfig(user({ allow: { 'queue:sned': ['a'] } })),
      'users[0].allow.queue:sned: unknown key',
    );
    refusedAt(() => parseAuthConfig(user({ deny: { admin: 'x' } })), 'users[0].deny.admin');
    refusedAt(() => parseAuthConfig(user({ allow: { admin: [''] } })), 'users[0].allow.admin[0]');
    refusedAt(() => parseAuthConfig(user({ allow: { admin: ['a***'] } })), 'not ***');
    refusedAt(() => parseAuthConfig(user({ allow: { admin: [3] } })), 'admin[0]: must be a string');
  });

  it('refuses bad names, keys and tokens, and the same one twice', () => {
    refusedAt(() => parseAuthConfig({ users: [{}] }), 'users[0].name');
    refusedAt(() => parseAuthConfig({ users: [{ name: '' }] }), 'users[0].name');
    refusedAt(() => parseAuthConfig(user({ curveKeys: ['short'] })), 'users[0].curveKeys[0]');
    refusedAt(() => parseAuthConfig(user({ curveKeys: KEY_A })), 'users[0].curveKeys');
    refusedAt(() => parseAuthConfig(user({ tokens: ['plain-token'] })), 'users[0].tokens[0]');
    refusedAt(
      () => parseAuthConfig({ users: [{ name: 'a' }, { name: 'a' }] }),
      'users[1].name: this name is already given at users[0].name',
    );
    refusedAt(
      () =>
        parseAuthConfig({
          users: [
            { name: 'a', curveKeys: [KEY_A] },
            { name: 'b', curveKeys: [KEY_A] },
          ],
        }),
      'users[1].curveKeys[0]',
    );
    const t = hashToken('t');
    refusedAt(
      () =>
        parseAuthConfig({
          users: [{ name: 'a', tokens: [t, t.toUpperCase().replace('SHA256', 'sha256')] }],
        }),
      'users[0].tokens[1]',
    );
  });
});
