/**
 * Who a Ferry session is, and whether it may do what it asks (docs/security.md). On a CURVE
 * endpoint, ZeroMQ has already refused unknown keys at the handshake (ZAP), but it does not
 * say which key sent a message, so a session proves its key: CHALLENGE hands the connection a
 * fresh random challenge, and HELLO's `auth` carries the client's key and its proof
 * (ferrymq/protocol curve-keys.ts). The challenge is single-use and kept per connection
 * (the ROUTER's peer id), so a proof made for one connection fails on any other.
 *
 * Every later request is checked against the auth model in force (it changes on SIGHUP): the
 * session's key is looked up again each time, so a key removed from the auth file gets
 * AUTH_FAILED on its next request, and a refused verb is FORBIDDEN naming verb and resource.
 */
import { randomBytes } from 'node:crypto';
import { FerryError, isCurveKey } from 'ferrymq/model';
import { CHALLENGE_BYTES, verifyHelloProof, type Json, type Request } from 'ferrymq/protocol';
import type { Clock } from '../../core/clock.js';
import type { AuthModel, AuthUser } from '../../security/auth-model.js';
import { JOB_BY_ID, permissionsOf } from './ferry-permissions.js';

/** How long a challenge stays good: HELLO follows CHALLENGE at once. */
const CHALLENGE_TTL_MS = 30_000;
/** Challenges kept at most (connections that asked and never said HELLO); oldest go first. */
const MAX_PENDING_CHALLENGES = 10_000;

export interface FerryAccessOptions {
  /** The broker's CURVE secret key (Z85): proofs are checked with it. */
  serverSecretKey: string;
  /** The auth model in force; undefined: any proven (or unproven) key may do anything. */
  model(): AuthModel | undefined;
  /** A job's service, for the commands that name a job by id. */
  jobService(id: string): Promise<string | undefined>;
  clock: Clock;
}

function authFailed(message: string): FerryError {
  return new FerryError('AUTH_FAILED', message);
}

export class FerryAccess {
  private readonly challenges = new Map<string, { challenge: Buffer; at: number }>();

  constructor(private readonly options: FerryAccessOptions) {}

  /** CHALLENGE: a fresh challenge for this connection (any earlier one is forgotten). */
  challenge(peerKey: string): Json {
    const challenge = randomBytes(CHALLENGE_BYTES);
    this.challenges.delete(peerKey);
    if (this.challenges.size >= MAX_PENDING_CHALLENGES) {
      const oldest = this.challenges.keys().next().value;
      if (oldest !== undefined) this.challenges.delete(oldest);
    }
    this.challenges.set(peerKey, { challenge, at: this.options.clock.now() });
    return { challenge: challenge.toString('hex') };
  }

  /**
   * HELLO: the client key the session is bound to (undefined when none was proven and no
   * auth file asks for one). Throws AUTH_FAILED for a missing, stale or wrong proof.
   */
  hello(peerKey: string, args: Json): string | undefined {
    const pending = this.challenges.get(peerKey);
    this.challenges.delete(peerKey);
    const auth = args['auth'];
    const model = this.options.model();
    if (auth === undefined) {
      if (model)
        throw authFailed('this broker needs a proven client key: CHALLENGE, then HELLO with auth');
      return undefined;
    }
    const { key, proof } = (typeof auth === 'object' && auth !== null ? auth : {}) as Json;
    if (!isCurveKey(key) || typeof proof !== 'string')
      throw new FerryError(
        'BAD_ARGUMENTS',
        'auth must be {"key": <Z85 public key>, "proof": <hex>}',
      );
    if (!pending || this.options.clock.now() - pending.at > CHALLENGE_TTL_MS)
      throw authFailed('no challenge open on this connection: send CHALLENGE, then HELLO at once');
    const proven = verifyHelloProof({
      serverSecretKey: this.options.serverSecretKey,
      clientPublicKey: key,
      challenge: pending.challenge,
      proof,
    });
    if (!proven) throw authFailed('the proof does not match this key and this connection');
    if (model && !model.userForCurveKey(key))
      throw authFailed('this client key is not in the auth file');
    return key;
  }

  /** The user a session's key maps to now; AUTH_FAILED when the key left the auth file. */
  private userOf(model: AuthModel, clientKey: string | undefined): AuthUser {
    const user = clientKey === undefined ? undefined : model.userForCurveKey(clientKey);
    if (!user) throw authFailed('the key of this session is no longer in the auth file');
    return user;
  }

  /**
   * Checks `req` for the session of `clientKey`: throws AUTH_FAILED or FORBIDDEN, or returns
   * a promise for the commands that must look a job up first (undefined: allowed now).
   */
  check(clientKey: string | undefined, req: Request): Promise<void> | undefined {
    const model = this.options.model();
    if (!model) return undefined;
    const user = this.userOf(model, clientKey);
    for (const [verb, resource] of permissionsOf(req)) model.check(user, verb, resource);
    const verb = JOB_BY_ID[req.command];
    const id = req.args['id'];
    if (verb === undefined || typeof id !== 'string') return undefined;
    return this.options.jobService(id).then((service) => {
      // An unknown job is answered JOB_NOT_FOUND by the command itself.
      if (service !== undefined) model.check(user, verb, service);
    });
  }
}
