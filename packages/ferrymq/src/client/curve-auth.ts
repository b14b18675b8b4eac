/**
 * The client's side of CURVE: the `curve` connect option, checked before any socket opens,
 * and the proof HELLO carries (docs/protocol.md "CHALLENGE"): the broker's challenge answered
 * with the client's key pair, so the broker knows which key — which user — the session is.
 */
import { FerryError } from '../model/errors.js';
import { isCurveKey } from '../model/z85.js';
import { helloProof, publicKeyOf, type Json, type Reply } from '../protocol/codec.js';

/** CURVE keys for connect(): all three Z85 (40 characters), as `ferry keygen` writes them. */
export interface CurveOptions {
  /** The broker's public key (the `.pub` of its key pair). */
  serverKey: string;
  /** This client's public key; the broker's auth file lists it. */
  publicKey: string;
  /** This client's secret key (the `.key` file); never sent anywhere. */
  secretKey: string;
}

const CURVE_KEYS = ['serverKey', 'publicKey', 'secretKey'] as const;

/** The `curve` option checked: KEY_INVALID naming the bad key, CONFIG_INVALID for its shape. */
export function checkCurveOptions(value: unknown): CurveOptions | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FerryError('CONFIG_INVALID', `option curve must be { ${CURVE_KEYS.join(', ')} }`);
  const bag = value as Record<string, unknown>;
  for (const key of Object.keys(bag))
    if (!(CURVE_KEYS as readonly string[]).includes(key))
      throw new FerryError(
        'CONFIG_INVALID',
        `unknown key curve.${key} (known: ${CURVE_KEYS.join(', ')})`,
      );
  for (const key of CURVE_KEYS)
    if (!isCurveKey(bag[key]))
      throw new FerryError('KEY_INVALID', `curve.${key} is not a CURVE key (40 characters of Z85)`);
  const curve = bag as unknown as CurveOptions;
  if (publicKeyOf(curve.secretKey) !== curve.publicKey)
    throw new FerryError('KEY_INVALID', 'curve.publicKey is not the public key of curve.secretKey');
  return { serverKey: curve.serverKey, publicKey: curve.publicKey, secretKey: curve.secretKey };
}

/** HELLO's `auth` argument: this client's key and its proof for the broker's challenge. */
export function helloAuth(curve: CurveOptions, challengeReply: Reply): Json {
  const challenge = challengeReply.args['challenge'];
  if (typeof challenge !== 'string' || !/^[0-9a-f]+$/.test(challenge))
    throw new FerryError('AUTH_FAILED', 'the broker sent no challenge to prove this client key');
  return {
    key: curve.publicKey,
    proof: helloProof({
      keys: curve,
      serverKey: curve.serverKey,
      challenge: Buffer.from(challenge, 'hex'),
    }),
  };
}
