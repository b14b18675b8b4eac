/**
 * The security configuration, refused or obeyed at start (docs/security.md): a bind beyond
 * loopback with nothing protecting it is INSECURE_BIND and says why; bad key and auth files
 * are coded errors; `ferry keygen` writes a key pair the broker and the SDK take; the address
 * allowlist of a dialect endpoint refuses other addresses at the handshake (ZAP).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect, FerryError } from 'ferrymq';
import { isCurveKey } from 'ferrymq/model';
import { startBroker, tmpDir, type TestBroker } from '../helpers/broker.js';
import { runFerry } from '../helpers/cli.js';

const brokers: TestBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop();
});

async function refused(
  flags: Record<string, string>,
  code: string,
  ...inMessage: string[]
): Promise<void> {
  await assert.rejects(startBroker(flags), (e: unknown) => {
    assert.ok(e instanceof FerryError, String(e));
    assert.equal(e.code, code, e.message);
    for (const s of inMessage) assert.ok(e.message.includes(s), `"${e.message}" names ${s}`);
    return true;
  });
}

function file(name: string, text: string): string {
  const f = path.join(tmpDir('ferry-sec-'), name);
  fs.writeFileSync(f, text);
  return f;
}

describe('binding beyond loopback', () => {
  it('refuses an unprotected non-loopback bind, saying why and what to do', async () => {
    await refused(
      { bind: 'tcp://0.0.0.0:*' },
      'INSECURE_BIND',
      'tcp://0.0.0.0:*',
      '--curve-secret-key-file',
      '--insecure',
    );
    await refused({ http: '0.0.0.0:0' }, 'INSECURE_BIND', 'HTTP gateway', '--auth-file');
    await refused({ mdp: 'tcp://0.0.0.0:*' }, 'INSECURE_BIND', 'Majordomo', '--mdp-allow');
    await refused({ zmws: 'true', 'zmws-client': 'tcp://0.0.0.0:*' }, 'INSECURE_BIND', 'ZMWS');
  });

  it('says so on the command line too, exiting 1', async () => {
    const r = await runFerry(['start', '--bind', 'tcp://0.0.0.0:7400', '--data', tmpDir()]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ferry: INSECURE_BIND: refusing to listen on tcp:\/\/0\.0\.0\.0:7400/);
  });
});

describe('key and auth files', () => {
  it('refuses a missing, empty or malformed key file with KEY_INVALID', async () => {
    const missing = path.join(tmpDir(), 'none.key');
    await refused({ 'curve-secret-key-file': missing }, 'KEY_INVALID', missing);
    await refused({ 'curve-secret-key-file': file('a.key', '') }, 'KEY_INVALID', 'Z85');
    await refused({ 'curve-secret-key-file': file('b.key', 'x'.repeat(39)) }, 'KEY_INVALID');
  });

  it('refuses a bad auth file with AUTH_FILE_INVALID naming the path', async () => {
    await refused({ 'auth-file': file('a.json', '{') }, 'AUTH_FILE_INVALID', 'not JSON');
    await refused(
      { 'auth-file': file('b.json', '{"users":[{"name":"u","allow":{"queue:sned":["*"]}}]}') },
      'AUTH_FILE_INVALID',
      'users[0].allow.queue:sned',
    );
    await refused({ 'auth-file': path.join(tmpDir(), 'none.json') }, 'AUTH_FILE_INVALID');
  });

  it('refuses an allowlist entry that is no CIDR', async () => {
    await refused({ 'mdp-allow': '10.0.0.0/40' }, 'CONFIG_INVALID', '--mdp-allow');
  });
});

describe('ferry keygen', () => {
  it('writes <prefix>.pub and a 0600 <prefix>.key that a broker and a client use', async () => {
    const dir = tmpDir();
    const prefix = path.join(dir, 'server');
    const r = await runFerry(['keygen', '--out', prefix]);
    assert.equal(r.code, 0, r.stderr);
    const pub = fs.readFileSync(`${prefix}.pub`, 'utf8').trim();
    assert.ok(isCurveKey(pub));
    assert.equal(fs.statSync(`${prefix}.key`).mode & 0o777, 0o600);
    const again = await runFerry(['keygen', '--out', prefix]);
    assert.notEqual(again.code, 0, 'never overwrites a key unasked');
    const printed = await runFerry(['keygen']);
    assert.match(printed.stdout, /^public \S{40}\nsecret \S{40}\n$/);

    const client = path.join(dir, 'client');
    await runFerry(['keygen', '--out', client]);
    const b = await startBroker({ 'curve-secret-key-file': `${prefix}.key` });
    brokers.push(b);
    assert.equal(b.server.publicKey, pub);
    const ping = await runFerry([
      'ping',
      '--broker',
      b.endpoint,
      '--count',
      '1',
      '--key-file',
      `${client}.key`,
      '--server-key',
      `${prefix}.pub`,
    ]);
    assert.equal(ping.code, 0, ping.stderr);
    const plain = await runFerry(['ping', '--broker', b.endpoint, '--count', '1']);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /AUTH_FAILED/);
    const half = await runFerry(['ping', '--broker', b.endpoint], {
      env: { FERRY_KEY_FILE: `${client}.key` },
    });
    assert.match(half.stderr, /CONFIG_INVALID.*--server-key/);
  });

  it('the SDK refuses a key pair that does not belong together', async () => {
    const b = await startBroker({});
    brokers.push(b);
    const { generateKeyPair } = await import('ferrymq');
    const [one, two] = [generateKeyPair(), generateKeyPair()];
    await assert.rejects(
      connect(b.endpoint, {
        curve: { serverKey: one.publicKey, publicKey: one.publicKey, secretKey: two.secretKey },
      }),
      (e: unknown) => e instanceof FerryError && e.code === 'KEY_INVALID',
    );
  });
});

/** The first handshake outcome a plain DEALER sees at `endpoint`. */
async function handshakeOutcome(endpoint: string): Promise<string> {
  const sock = new zmq.Dealer({ linger: 0 });
  const events = sock.events;
  sock.connect(endpoint);
  try {
    for await (const ev of events) if (ev.type.startsWith('handshake')) return ev.type;
    return 'none';
  } finally {
    sock.close();
  }
}

describe('dialect address allowlists (ZAP)', () => {
  it('refuses a client whose address is not listed, and takes one that is', async () => {
    const closed = await startBroker({ mdp: 'tcp://127.0.0.1:*', 'mdp-allow': '10.0.0.0/8' });
    brokers.push(closed);
    assert.equal(await handshakeOutcome(closed.server.mdpEndpoint!), 'handshake:error:auth');
    const open = await startBroker({
      mdp: 'tcp://127.0.0.1:*',
      'mdp-allow': '10.0.0.0/8,127.0.0.1',
    });
    brokers.push(open);
    assert.equal(await handshakeOutcome(open.server.mdpEndpoint!), 'handshake');
  });
});
