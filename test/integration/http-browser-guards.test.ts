/**
 * Browsers are clients too: requests crafted as a hostile page would send them are refused —
 * DNS rebinding (`Host: attacker.example`, reads included), a form POST and a text/plain POST
 * (the "simple" requests a page sends without a preflight), a foreign `Origin` — while the
 * configured host names and origins (with CORS for them only) go on. The dashboard carries a
 * CSP, `X-Frame-Options: DENY` and nosniff. TLS: the gateway speaks HTTPS with a self-signed
 * certificate made here (openssl), and refuses missing or bad files at start.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startBroker, tmpDir, type TestBroker } from '../helpers/broker.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request with exactly the headers given (as a browser would send them). */
function send(
  base: string,
  method: string,
  p: string,
  headers: Record<string, string> = {},
  body?: string,
  ca?: Buffer,
): Promise<Answer> {
  const url = new URL(base);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const r = lib.request(
      { host: url.hostname, port: url.port, method, path: p, headers, timeout: 10_000, ca },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.end(body);
  });
}

const code = (a: Answer): string => (JSON.parse(a.text) as { code: string }).code;

const brokers: TestBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop();
});

async function gateway(flags: Record<string, string> = {}): Promise<string> {
  const b = await startBroker(flags, { http: '127.0.0.1:0' });
  brokers.push(b);
  return b.server.httpUrl!;
}

describe('HTTP gateway against hostile pages', () => {
  it('refuses unknown Host names (DNS rebinding), reads included', async () => {
    const base = await gateway();
    const port = new URL(base).port;
    await send(
      base,
      'POST',
      '/v1/queues/h.q/messages',
      { 'content-type': 'application/json' },
      '{"body":"x"}',
    );
    for (const host of [
      'attacker.example',
      `attacker.example:${port}`,
      `localhost.attacker.example:${port}`,
    ]) {
      for (const [method, p] of [
        ['GET', '/v1/queues'],
        ['GET', '/'],
        ['POST', '/v1/queues/h.q/pause'],
      ] as const) {
        // A rebinding page is same-origin with itself: its Origin matches its Host.
        const r = await send(base, method, p, { host, origin: `http://${host}` });
        assert.equal(r.status, 403, `${host} ${method} ${p}: ${r.text}`);
        assert.equal(code(r), 'FORBIDDEN_HOST');
      }
    }
    const q = await send(base, 'GET', '/v1/queues/h.q');
    assert.equal((JSON.parse(q.text) as { paused: boolean }).paused, false, 'nothing changed');
    // Loopback names and addresses are answered.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
      assert.equal((await send(base, 'GET', '/v1/queues', { host })).status, 200, host);
    }
  });

  it('answers the names of httpHosts', async () => {
    const base = await gateway({ 'http-hosts': 'ferry.internal, Broker.Example' });
    assert.equal(
      (await send(base, 'GET', '/healthz', { host: 'ferry.internal:7480' })).status,
      200,
    );
    assert.equal((await send(base, 'GET', '/healthz', { host: 'broker.example' })).status, 200);
    assert.equal((await send(base, 'GET', '/healthz', { host: 'other.example' })).status, 403);
  });

  it('refuses a form POST and a text/plain POST, as a page sends them', async () => {
    const base = await gateway();
    const own = new URL(base).host;
    const cases: [string, string][] = [
      ['application/x-www-form-urlencoded', 'body=x'],
      ['text/plain', '{"body":"x"}'],
      [
        'multipart/form-data; boundary=b',
        '--b\r\nContent-Disposition: form-data; name="body"\r\n\r\nx\r\n--b--\r\n',
      ],
    ];
    for (const [type, body] of cases) {
      // From the gateway's own origin the type alone refuses it; from another, the origin.
      const same = await send(
        base,
        'POST',
        '/v1/queues/f.q/messages',
        { 'content-type': type, origin: `http://${own}` },
        body,
      );
      assert.equal(same.status, 415, `${type}: ${same.text}`);
      assert.equal(code(same), 'UNSUPPORTED_MEDIA_TYPE');
      const foreign = await send(
        base,
        'POST',
        '/v1/queues/f.q/messages',
        { 'content-type': type, origin: 'http://evil.example' },
        body,
      );
      assert.equal(foreign.status, 403);
      assert.equal(code(foreign), 'FORBIDDEN_ORIGIN');
    }
    const list = await send(base, 'GET', '/v1/queues');
    assert.deepEqual((JSON.parse(list.text) as { queues: unknown[] }).queues, [], 'nothing stored');
  });

  it('lets configured origins in, with CORS for them only', async () => {
    const base = await gateway({ 'http-origins': 'https://app.example' });
    const pre = await send(base, 'OPTIONS', '/v1/queues/c.q/messages', {
      origin: 'https://app.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    });
    assert.ok(pre.status === 204 || pre.status === 200, String(pre.status));
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(pre.headers['access-control-allow-headers']), /authorization/);
    const ok = await send(
      base,
      'POST',
      '/v1/queues/c.q/messages',
      { origin: 'https://app.example', 'content-type': 'application/json' },
      '{"body":"x"}',
    );
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    const evil = await send(
      base,
      'POST',
      '/v1/queues/c.q/messages',
      { origin: 'https://evil.example', 'content-type': 'application/json' },
      '{"body":"x"}',
    );
    assert.equal(evil.status, 403);
    const read = await send(base, 'GET', '/v1/queues', { origin: 'https://evil.example' });
    assert.equal(read.headers['access-control-allow-origin'], undefined, 'no CORS for others');
    // Without the setting there is no CORS at all.
    const plain = await gateway();
    const none = await send(plain, 'OPTIONS', '/v1/queues', {
      origin: 'https://app.example',
      'access-control-request-method': 'POST',
    });
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });

  it('sends CSP, X-Frame-Options and nosniff with the dashboard', async () => {
    const base = await gateway();
    for (const p of ['/', '/dashboard/dashboard.js', '/dashboard/dashboard.css']) {
      const r = await send(base, 'GET', p);
      assert.equal(r.status, 200);
      const csp = String(r.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/, 'no inline script, no eval');
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    const api = await send(base, 'GET', '/v1/queues');
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
  });
});

describe('HTTP gateway over TLS', () => {
  const dir = tmpDir('ferry-tls-');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );

  it('speaks HTTPS with --tls-cert and --tls-key', async () => {
    const base = await gateway({ 'tls-cert': cert, 'tls-key': key });
    assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await send(base, 'GET', '/healthz', {}, undefined, fs.readFileSync(cert));
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.text) as { status: string }).status, 'ok');
    // Plain HTTP on that port gets no answer of the gateway.
    await assert.rejects(send(base.replace('https:', 'http:'), 'GET', '/healthz'));
  });

  it('refuses missing, bad or half TLS settings at start with CONFIG_INVALID', async () => {
    const garbage = path.join(dir, 'garbage.pem');
    fs.writeFileSync(garbage, 'not a certificate');
    const bad: [Record<string, string>, RegExp][] = [
      [{ 'tls-cert': cert }, /go together/],
      [{ 'tls-key': key }, /go together/],
      [
        { 'tls-cert': path.join(dir, 'nope.pem'), 'tls-key': key },
        /--tls-cert .*nope\.pem: cannot read \(ENOENT\)/,
      ],
      [{ 'tls-cert': garbage, 'tls-key': key }, /not a PEM certificate/],
      [{ 'tls-cert': cert, 'tls-key': cert }, /not a PEM certificate/],
    ];
    for (const [flags, message] of bad) {
      await assert.rejects(startBroker(flags, { http: '127.0.0.1:0' }), {
        code: 'CONFIG_INVALID',
        message,
      });
    }
  });
});
