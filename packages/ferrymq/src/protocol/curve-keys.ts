/**
 * CURVE keys and the HELLO proof (docs/protocol.md "CHALLENGE", docs/security.md).
 *
 * A CURVE key pair is an X25519 key pair written in Z85, so Node's own X25519 makes and uses
 * the keys ZeroMQ's CURVE uses. ZeroMQ does not tell the broker which CURVE key sent a
 * message, so a client proves its key inside the protocol: the broker hands each connection a
 * fresh random challenge, and the client answers
 *   proof = HMAC-SHA256(X25519(client secret, server public), LABEL ‖ challenge ‖ client public)
 * which the broker recomputes from its own secret and the claimed client public key
 * (X25519 is symmetric). The challenge is single-use and bound to the connection it was
 * given on, so a proof replayed elsewhere proves nothing. Pure functions, no I/O.
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { FerryError } from '../model/errors.js';
import { isCurveKey, z85Decode, z85Encode } from '../model/z85.js';

/** A CURVE key pair in Z85 (40 characters each), as `ferry keygen` writes it. */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** The bytes a challenge has (the broker's); a proof is the HMAC-SHA256's 32. */
export const CHALLENGE_BYTES = 32;
const PROOF_LABEL = Buffer.from('FERRY01 HELLO proof\0', 'ascii');
/** PKCS#8 DER of an X25519 private key, before its 32 raw bytes (RFC 8410). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** SubjectPublicKeyInfo DER of an X25519 public key, before its 32 raw bytes. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

function keyBytes(z85: string, what: string): Buffer {
  if (!isCurveKey(z85))
    throw new FerryError('KEY_INVALID', `${what} is not a CURVE key (40 characters of Z85)`);
  return Buffer.from(z85Decode(z85)!);
}

function privateKey(secretZ85: string, what: string): KeyObject {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, keyBytes(secretZ85, what)]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

function publicKey(publicZ85: string, what: string): KeyObject {
  const der = Buffer.concat([X25519_SPKI_PREFIX, keyBytes(publicZ85, what)]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

function rawPublic(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

/** A new CURVE key pair (X25519), in Z85. */
export function generateKeyPair(): CurveKeyPair {
  const pair = generateKeyPairSync('x25519');
  const secret = Buffer.from(pair.privateKey.export({ format: 'jwk' }).d!, 'base64url');
  return { publicKey: z85Encode(rawPublic(pair.publicKey)), secretKey: z85Encode(secret) };
}

/** The public key of a CURVE secret key (Z85 in, Z85 out); KEY_INVALID if it is none. */
export function publicKeyOf(secretKey: string): string {
  return z85Encode(rawPublic(createPublicKey(privateKey(secretKey, 'the secret key'))));
}

function proofOf(shared: Buffer, challenge: Buffer, clientPublicKey: string): Buffer {
  return createHmac('sha256', shared)
    .update(PROOF_LABEL)
    .update(challenge)
    .update(keyBytes(clientPublicKey, 'the client public key'))
    .digest();
}

/** The client's answer to a challenge (hex), from its key pair and the server's public key. */
export function helloProof(options: {
  keys: CurveKeyPair;
  serverKey: string;
  challenge: Buffer;
}): string {
  const shared = diffieHellman({
    privateKey: privateKey(options.keys.secretKey, 'the client secret key'),
    publicKey: publicKey(options.serverKey, 'the server key'),
  });
  return proofOf(shared, options.challenge, options.keys.publicKey).toString('hex');
}

/** The broker's check of a proof: recomputed from its secret key and the claimed public key. */
export function verifyHelloProof(options: {
  serverSecretKey: string;
  clientPublicKey: string;
  challenge: Buffer;
  proof: string;
}): boolean {
  if (!isCurveKey(options.clientPublicKey) || !/^[0-9a-f]{64}$/.test(options.proof)) return false;
  let shared: Buffer;
  try {
    shared = diffieHellman({
      privateKey: privateKey(options.serverSecretKey, 'the server secret key'),
      publicKey: publicKey(options.clientPublicKey, 'the client public key'),
    });
  } catch {
    return false; // a low-order public key: no shared secret, no proof
  }
  const expected = proofOf(shared, options.challenge, options.clientPublicKey);
  return timingSafeEqual(expected, Buffer.from(options.proof, 'hex'));
}
