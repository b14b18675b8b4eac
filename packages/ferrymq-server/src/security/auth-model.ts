/**
 * The auth model: users, how they prove who they are (CURVE public keys, HTTP tokens kept only
 * as SHA-256 hashes), and what each may do (grants keyed `kind:verb`, glob patterns of names).
 * Pure: it parses an auth file's text and answers questions; it opens no file and no socket,
 * so the ZeroMQ side (ZAP, HELLO) and the HTTP gateway (bearer tokens) share it.
 *
 * Globs (one rule for every grant):
 *   - `*` matches one segment: one or more characters other than the separator and `*`
 *     (`orders.*` matches `orders.eu`, not `orders.eu.x`, not `orders.`);
 *   - `**` matches anything, separators included, and may be empty (`orders.**`, `**`);
 *   - every other character matches itself.
 * The separator is `/` for topics (as in topic names) and `.` for queues, services and admin.
 * A topic subscription is checked on its pattern as written: a grant's `*` covers a `*`
 * segment of the pattern, only `**` covers a `**` segment, and a prefix pattern `a/` is
 * checked as `a/**`, so a grant never widens by subscribing with a wildcard.
 * Deny wins: a name matched by any deny glob of the verb is refused whatever allows it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { FerryError, isCurveKey } from 'ferrymq/model';

/** Every verb a grant may name. `admin` has no resource kind: its names are operations. */
export const AUTH_VERBS = [
  'queue:send',
  'queue:consume',
  'queue:manage',
  'service:call',
  'service:serve',
  'service:manage',
  'topic:publish',
  'topic:subscribe',
  'topic:retain',
  'admin',
] as const;
export type AuthVerb = (typeof AUTH_VERBS)[number];

export type Grants = Readonly<Partial<Record<AuthVerb, readonly string[]>>>;

export interface AuthUser {
  readonly name: string;
  /** CURVE public keys in Z85 (40 characters). */
  readonly curveKeys: readonly string[];
  /** HTTP tokens as `sha256:<64 lowercase hex>`; the plain token is never stored. */
  readonly tokens: readonly string[];
  readonly allow: Grants;
  readonly deny: Grants;
}

const TOKEN_HASH_PREFIX = 'sha256:';
const TOKEN_HASH_PATTERN = /^sha256:[0-9a-f]{64}$/i;
const USER_NAME_MAX_LENGTH = 200;
const GLOB_MAX_LENGTH = 256;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const TOO_MANY_STARS = /\*\*\*/;
const FILE_KEYS = ['users'] as const;
const USER_KEYS = ['name', 'curveKeys', 'tokens', 'allow', 'deny'] as const;
const TOPIC_SEPARATOR = '/';
const NAME_SEPARATOR = '.';
const ANY = '**';

/** The `sha256:<hex>` form of a plain token, as the auth file stores it. */
export function hashToken(plainToken: string): string {
  return TOKEN_HASH_PREFIX + createHash('sha256').update(plainToken, 'utf8').digest('hex');
}

function separatorOf(verb: AuthVerb): string {
  return verb.startsWith('topic:') ? TOPIC_SEPARATOR : NAME_SEPARATOR;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Compiles a grant's glob into an anchored regular expression (see the file header). */
function compileGlob(glob: string, separator: string): RegExp {
  const oneSegment = `(?:\\*|[^${escapeRegExp(separator)}*]+)`;
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    if (glob.startsWith(ANY, i)) {
      source += '.*';
      i++;
    } else if (glob[i] === '*') source += oneSegment;
    else source += escapeRegExp(glob[i]!);
  }
  return new RegExp(`^${source}$`, 's');
}

interface CompiledGrants {
  readonly allow: ReadonlyMap<AuthVerb, readonly RegExp[]>;
  readonly deny: ReadonlyMap<AuthVerb, readonly RegExp[]>;
}

function compileGrants(grants: Grants): ReadonlyMap<AuthVerb, readonly RegExp[]> {
  const out = new Map<AuthVerb, RegExp[]>();
  for (const verb of AUTH_VERBS) {
    const globs = grants[verb];
    if (globs)
      out.set(
        verb,
        globs.map((g) => compileGlob(g, separatorOf(verb))),
      );
  }
  return out;
}

/** The users of one auth file, indexed for the questions the broker asks. */
export class AuthModel {
  readonly users: readonly AuthUser[];
  readonly #byCurveKey = new Map<string, AuthUser>();
  readonly #tokenDigests: { digest: Buffer; user: AuthUser }[] = [];
  readonly #grants = new Map<AuthUser, CompiledGrants>();

  constructor(users: readonly AuthUser[]) {
    this.users = users;
    for (const user of users) {
      for (const key of user.curveKeys) this.#byCurveKey.set(key, user);
      for (const token of user.tokens) {
        const digest = Buffer.from(token.slice(TOKEN_HASH_PREFIX.length), 'hex');
        this.#tokenDigests.push({ digest, user });
      }
      this.#grants.set(user, { allow: compileGrants(user.allow), deny: compileGrants(user.deny) });
    }
  }

  /** The user holding this CURVE public key (Z85), if any. */
  userForCurveKey(z85: string): AuthUser | undefined {
    return this.#byCurveKey.get(z85);
  }

  /** The user holding this plain token, compared by SHA-256 digest in constant time. */
  userForToken(plainToken: string): AuthUser | undefined {
    const digest = createHash('sha256').update(plainToken, 'utf8').digest();
    let found: AuthUser | undefined;
    // Every stored digest is compared, so the time taken says nothing about which matched.
    for (const entry of this.#tokenDigests)
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.user;
    return found;
  }

  /** The user of that name, if any (a session re-checks its user after a reload). */
  userNamed(name: string): AuthUser | undefined {
    return this.users.find((u) => u.name === name);
  }

  /** True when `user` may do `verb` on `resource`: some allow glob matches and no deny glob. */
  isAllowed(user: AuthUser, verb: AuthVerb, resource: string): boolean {
    const grants = this.#grants.get(user);
    if (!grants) return false;
    const name =
      verb === 'topic:subscribe' && resource.endsWith(TOPIC_SEPARATOR) ? resource + ANY : resource;
    const hit = (globs: readonly RegExp[] | undefined) => globs?.some((g) => g.test(name)) ?? false;
    return !hit(grants.deny.get(verb)) && hit(grants.allow.get(verb));
  }

  /** Throws FORBIDDEN, naming the user, the verb and the resource, unless allowed. */
  check(user: AuthUser, verb: AuthVerb, resource: string): void {
    if (!this.isAllowed(user, verb, resource))
      throw new FerryError(
        'FORBIDDEN',
        `user ${JSON.stringify(user.name)} may not ${verb} ${JSON.stringify(resource)}`,
        { details: { user: user.name, verb, resource } },
      );
  }
}

// ── Parsing ───────────────────────────────────────────────────────────────────────────────

class AuthFileReader {
  constructor(private readonly source: string) {}

  fail(path: string, problem: string): never {
    throw new FerryError('AUTH_FILE_INVALID', `${this.source}: ${path}: ${problem}`, {
      details: { path },
    });
  }

  object(value: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(path, 'must be a JSON object');
    for (const key of Object.keys(value))
      if (!keys.includes(key))
        this.fail(`${path}.${key}`, `unknown key (known: ${keys.join(', ')})`);
    return value as Record<string, unknown>;
  }

  strings(value: unknown, path: string, check: (s: string, path: string) => string): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(path, 'must be an array of strings');
    return value.map((item: unknown, i) => {
      if (typeof item !== 'string') this.fail(`${path}[${i}]`, 'must be a string');
      return check(item, `${path}[${i}]`);
    });
  }

  grants(value: unknown, path: string): Grants {
    if (value === undefined) return {};
    const map = this.object(value, path, AUTH_VERBS);
    const out: Partial<Record<AuthVerb, readonly string[]>> = {};
    for (const verb of AUTH_VERBS)
      if (map[verb] !== undefined)
        out[verb] = this.strings(map[verb], `${path}.${verb}`, this.glob);
    return out;
  }

  glob = (glob: string, path: string): string => {
    if (glob.length === 0 || glob.length > GLOB_MAX_LENGTH || CONTROL_CHARACTERS.test(glob))
      this.fail(path, `a pattern is 1–${GLOB_MAX_LENGTH} characters without control characters`);
    if (TOO_MANY_STARS.test(glob)) this.fail(path, `${JSON.stringify(glob)}: use * or **, not ***`);
    return glob;
  };

  curveKey = (key: string, path: string): string => {
    if (!isCurveKey(key))
      this.fail(path, 'not a CURVE public key (40 characters of Z85, as `ferry keygen` writes)');
    return key;
  };

  token = (token: string, path: string): string => {
    if (!TOKEN_HASH_PATTERN.test(token))
      this.fail(path, 'a token is stored as "sha256:<64 hex digits>" (its hash, never the token)');
    return token.toLowerCase();
  };

  user(value: unknown, path: string): AuthUser {
    const u = this.object(value, path, USER_KEYS);
    const name = u.name;
    if (
      typeof name !== 'string' ||
      name.length === 0 ||
      name.length > USER_NAME_MAX_LENGTH ||
      CONTROL_CHARACTERS.test(name)
    )
      this.fail(`${path}.name`, `a user needs a name of 1–${USER_NAME_MAX_LENGTH} characters`);
    return {
      name,
      curveKeys: this.strings(u.curveKeys, `${path}.curveKeys`, this.curveKey),
      tokens: this.strings(u.tokens, `${path}.tokens`, this.token),
      allow: this.grants(u.allow, `${path}.allow`),
      deny: this.grants(u.deny, `${path}.deny`),
    };
  }
}

/** Claims each value once; a second claim is refused, naming both places. */
function claimOnce(
  reader: AuthFileReader,
  claims: Map<string, string>,
  value: string,
  path: string,
  what: string,
): void {
  const first = claims.get(value);
  if (first !== undefined) reader.fail(path, `${what} already given at ${first}`);
  claims.set(value, path);
}

/**
 * Builds the model from a parsed auth file; throws AUTH_FILE_INVALID naming the path of the
 * first problem (`users[0].allow.queue:sned: unknown key …`). `source` names the file.
 */
export function parseAuthConfig(value: unknown, source = 'auth file'): AuthModel {
  const reader: AuthFileReader = new AuthFileReader(source);
  const file = reader.object(value, '(top)', FILE_KEYS);
  if (!Array.isArray(file.users)) reader.fail('users', 'must be an array of users');
  const users = file.users.map((u: unknown, i) => reader.user(u, `users[${i}]`));
  const claims = new Map<string, string>();
  users.forEach((user, i) => {
    claimOnce(reader, claims, `name ${user.name}`, `users[${i}].name`, 'this name is');
    user.curveKeys.forEach((k, j) =>
      claimOnce(reader, claims, `key ${k}`, `users[${i}].curveKeys[${j}]`, 'this key is'),
    );
    user.tokens.forEach((t, j) =>
      claimOnce(reader, claims, `token ${t}`, `users[${i}].tokens[${j}]`, 'this token is'),
    );
  });
  return new AuthModel(users);
}

/** Parses an auth file's JSON text; bad JSON is AUTH_FILE_INVALID too. */
export function parseAuthFile(text: string, source = 'auth file'): AuthModel {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FerryError('AUTH_FILE_INVALID', `${source}: not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseAuthConfig(value, source);
}
