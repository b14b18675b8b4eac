/**
 * A web page of another origin cannot drive the gateway: a request a browser sends for it with
 * a foreign `Origin` (here a bodiless POST, which browsers send without asking first) is
 * refused with 403 FORBIDDEN_ORIGIN and changes nothing; the gateway's own origin and clients
 * without `Origin` (programs) go on; reads stay answerable (no CORS header lets the page read
 * them); ZMWS's `/<JOB>` route stays open, as ZMWS's browser clients need.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { req } from '../helpers/http.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request with the headers a browser would add (node's fetch would not send Origin as given). */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: url.hostname, port: url.port, method, path, headers, timeout: 10_000 },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.end();
  });
}

const brokers: TestBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop();
});

describe('HTTP gateway and browser origins', () => {
  it('refuses a foreign origin with FORBIDDEN_ORIGIN and changes nothing', async () => {
    const b = await startBroker({}, { http: '127.0.0.1:0' });
    brokers.push(b);
    const base = b.server.httpUrl!;
    const sent = await req(base, 'POST', '/v1/queues/o.q/messages', { body: { body: 'x' } });
    assert.equal(sent.status, 201);
    const paused = async (): Promise<boolean> =>
      (JSON.parse((await send(base, 'GET', '/v1/queues/o.q')).text) as { paused: boolean }).paused;

    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1:1', 'not a url']) {
      const r = await send(base, 'POST', '/v1/queues/o.q/pause', { origin });
      assert.equal(r.status, 403, `${origin}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { code: string }).code, 'FORBIDDEN_ORIGIN');
      assert.equal(await paused(), false, `${origin}: nothing changed`);
    }
    const del = await send(base, 'DELETE', '/v1/queues/o.q?force=true', {
      origin: 'https://evil.example',
    });
    assert.equal(del.status, 403);
    assert.equal((await b.server.broker.queueStats('o.q')).ready, 1, 'the queue and its message');

    // The gateway's own origin (the dashboard) and a program without Origin go on.
    const own = await send(base, 'POST', '/v1/queues/o.q/pause', { origin: base });
    assert.equal(own.status, 200, own.text);
    assert.equal(await paused(), true);
    const program = await send(base, 'POST', '/v1/queues/o.q/resume');
    assert.equal(program.status, 200, program.text);
    assert.equal(await paused(), false);

    // A read is answered, with nothing that would let a foreign page read it.
    const read = await send(base, 'GET', '/v1/queues/o.q', { origin: 'http://evil.example' });
    assert.equal(read.status, 200);
    assert.equal(read.headers['access-control-allow-origin'], undefined);
  });

  it("leaves ZMWS's /<JOB> route open to pages of any origin", async () => {
    const b = await startBroker(
      { zmws: 'true', 'zmws-client': 'tcp://127.0.0.1:*', 'zmws-worker': 'tcp://127.0.0.1:*' },
      { http: '127.0.0.1:0' },
    );
    brokers.push(b);
    const r = await send(b.server.httpUrl!, 'POST', '/ORIGIN-JOB', {
      origin: 'http://zmws-client.example',
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /^JOB: [0-9a-f]{32} ORIGIN-JOB$/);
    assert.equal(r.headers['access-control-allow-origin'], '*');
  });
});
