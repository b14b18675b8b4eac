/**
 * One bad or slow client must never hurt the others (docs/operations.md "Limits and hostile
 * peers"): a peer flooding invalid frames is answered a few times, then ignored and counted
 * while a healthy client on the same endpoint keeps being answered; a consumer or live
 * subscriber that never reads pins a bounded number of bytes, not its prefetch × message
 * size; a request over the size limit is answered MESSAGE_TOO_LARGE, not dropped silently.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect, type FerryClient } from 'ferrymq';
import { decodeReply, encodeRequest } from 'ferrymq/protocol';
import { freePort, spawnBroker, tmpDir, waitFor, type ChildBroker } from '../helpers/broker.js';
import { parsePrometheus, sampleValue } from '../helpers/http.js';
import { prng } from '../helpers/seed.js';
import { RawSocket } from '../helpers/zmq-inbox.js';

const KIB = 1024;
const MIB = 1024 * KIB;
/** The never-reading consumer: prefetch 10,000 on 64 KiB messages. */
const SLOW_PREFETCH = 10_000;
const SLOW_MESSAGE_BYTES = 64 * KIB;
/** Enough backlog that buffering it all (today's behaviour) is well over the bound. */
const SLOW_BACKLOG = 2_000;
const SLOW_BATCH = 100;
const RSS_RISE_LIMIT_BYTES = 64 * MIB;
/** RSS samples taken after the deliveries settle (bounded: the peak of these counts). */
const RSS_SAMPLES = 20;
const RSS_SAMPLE_INTERVAL_MS = 50;
const FLOOD_FRAMES = 20_000;
const HEALTHY_PINGS = 50;

/** VmRSS of a process, bytes. */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]) * KIB;
}

/** A raw Ferry peer: HELLO, requests with ids, replies read one at a time. */
class RawFerry {
  private next = 0;
  constructor(readonly raw: RawSocket) {}

  static async open(endpoint: string): Promise<RawFerry> {
    const p = new RawFerry(RawSocket.dealer(endpoint));
    const hello = await p.request('HELLO', { heartbeatMs: 60_000 });
    assert.equal(hello.kind, 'OK');
    return p;
  }

  async request(
    command: string,
    args: Record<string, unknown> = {},
    payload: Buffer[] = [],
  ): Promise<ReturnType<typeof decodeReply>> {
    const id = Buffer.from(`r${++this.next}`);
    await this.raw.sock.send(encodeRequest(command as 'PING', id, args, payload));
    for (let i = 0; i < 1_000; i++) {
      const reply = decodeReply(await this.raw.receive(`${command} reply`, 20_000));
      if (reply.requestId.equals(id)) return reply;
    }
    throw new Error(`no reply to ${command}`);
  }
}

async function metrics(http: string): Promise<ReturnType<typeof parsePrometheus>> {
  const res = await fetch(`http://${http}/metrics`);
  return parsePrometheus(await res.text());
}

describe('hardening: hostile and slow peers', { timeout: 180_000 }, () => {
  const brokers: ChildBroker[] = [];
  const clients: FerryClient[] = [];
  const sockets: { close(): void }[] = [];
  after(async () => {
    for (const s of sockets) s.close();
    for (const c of clients) await c.close({ timeoutMs: 500 }).catch(() => {});
    for (const b of brokers) {
      b.child.kill('SIGKILL');
      await b.exited;
    }
  });

  async function broker(extra: string[] = []): Promise<{ b: ChildBroker; http: string }> {
    extra = [...extra, ...(process.env['HARDENING_EXTRA_FLAGS']?.split(' ') ?? [])];
    const http = `127.0.0.1:${await freePort()}`;
    const b = await spawnBroker([
      '--data',
      tmpDir(),
      '--bind',
      `tcp://127.0.0.1:${await freePort()}`,
      '--sync',
      'off',
      '--http',
      http,
      ...extra,
    ]);
    brokers.push(b);
    return { b, http };
  }

  it('answers an oversized request MESSAGE_TOO_LARGE instead of dropping the connection', async () => {
    const { b } = await broker([
      '--max-message-bytes',
      String(256 * KIB),
      '--max-request-bytes',
      String(512 * KIB),
    ]);
    const peer = await RawFerry.open(b.endpoint);
    sockets.push(peer.raw);
    const limits = (await peer.request('HELLO', { heartbeatMs: 60_000 })).args['limits'];
    assert.deepEqual(limits, {
      maxMessageBytes: 256 * KIB,
      maxBatchMessages: 10_000,
      maxRequestBytes: 512 * KIB,
      maxPrefetch: 10_000,
      consumerMaxBytes: 16 * MIB,
    });
    const body = Buffer.alloc(MIB, 7);
    const reply = await peer.request('SEND', { queue: 'big', messages: [{ frames: 1 }] }, [body]);
    assert.equal(reply.kind, 'ERROR');
    assert.equal(reply.args['code'], 'MESSAGE_TOO_LARGE');
    // The connection still serves.
    assert.equal((await peer.request('PING')).kind, 'PONG');
  });

  it('a consumer with prefetch 10,000 that never reads 64 KiB messages pins < 64 MB', async () => {
    const { b, http } = await broker();
    const pid = b.child.pid!;
    const producer = await connect(b.endpoint, { requestTimeoutMs: 60_000 });
    clients.push(producer);
    const body = Buffer.alloc(SLOW_MESSAGE_BYTES, 1);
    for (let i = 0; i < SLOW_BACKLOG; i += SLOW_BATCH) {
      await producer.sendBatch(
        'slow',
        Array.from({ length: SLOW_BATCH }, () => ({ body })),
      );
    }
    const before = rssBytes(pid);
    // A raw consumer that reads its HELLO and CONSUME replies, then nothing more.
    const sock = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
    sockets.push(sock);
    sock.connect(b.endpoint);
    await sock.send(encodeRequest('HELLO', Buffer.from('h'), { heartbeatMs: 60_000 }));
    await sock.receive();
    await sock.send(
      encodeRequest('CONSUME', Buffer.from('c'), { queue: 'slow', prefetch: SLOW_PREFETCH }),
    );
    assert.equal(decodeReply(await sock.receive()).kind, 'OK');
    // Wait until the broker has leased what it will (in flight stops growing), then sample.
    let last = -1;
    let stableFor = 0;
    await waitFor(
      async () => {
        const m = await metrics(http);
        const inFlight = sampleValue(m, 'ferry_queue_leased', { queue: 'slow' }) ?? 0;
        stableFor = inFlight === last && inFlight > 0 ? stableFor + 1 : 0;
        last = inFlight;
        return stableFor >= 5;
      },
      "the slow consumer's deliveries to settle",
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    let peak = 0;
    for (let i = 0; i < RSS_SAMPLES; i++) {
      peak = Math.max(peak, rssBytes(pid));
      await new Promise((r) => setTimeout(r, RSS_SAMPLE_INTERVAL_MS));
    }
    const rise = peak - before;
    process.stdout.write(
      `# never-reading consumer: ${last} in flight, broker RSS ${(before / MIB).toFixed(1)} → ${(peak / MIB).toFixed(1)} MiB (+${(rise / MIB).toFixed(1)})\n`,
    );
    assert.ok(rise < RSS_RISE_LIMIT_BYTES, `broker RSS rose ${(rise / MIB).toFixed(1)} MiB`);
    assert.ok(last < SLOW_BACKLOG, `only part of the backlog is in flight (${last})`);
  });

  it('a live subscriber that never reads pins < 64 MB', async () => {
    const { b, http } = await broker();
    const pid = b.child.pid!;
    const producer = await connect(b.endpoint, { requestTimeoutMs: 60_000 });
    clients.push(producer);
    const sock = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
    sockets.push(sock);
    sock.connect(b.endpoint);
    await sock.send(encodeRequest('HELLO', Buffer.from('h'), { heartbeatMs: 60_000 }));
    await sock.receive();
    await sock.send(
      encodeRequest('SUBSCRIBE', Buffer.from('s'), { pattern: 'feed/', subscription: 'slow' }),
    );
    assert.equal(decodeReply(await sock.receive()).kind, 'OK');
    const body = Buffer.alloc(SLOW_MESSAGE_BYTES, 2);
    // Warm up the publish path (store, caches) before the baseline, unseen by the subscriber.
    for (let i = 0; i < SLOW_BATCH; i++) await producer.publish('warm/a', body);
    const before = rssBytes(pid);
    let peak = 0;
    for (let i = 0; i < SLOW_BACKLOG; i++) {
      await producer.publish('feed/a', body);
      if (i % SLOW_BATCH === 0) peak = Math.max(peak, rssBytes(pid));
    }
    for (let i = 0; i < RSS_SAMPLES; i++) {
      peak = Math.max(peak, rssBytes(pid));
      await new Promise((r) => setTimeout(r, RSS_SAMPLE_INTERVAL_MS));
    }
    const rise = peak - before;
    process.stdout.write(
      `# never-reading subscriber: broker RSS ${(before / MIB).toFixed(1)} → ${(peak / MIB).toFixed(1)} MiB (+${(rise / MIB).toFixed(1)})\n`,
    );
    assert.ok(rise < RSS_RISE_LIMIT_BYTES, `broker RSS rose ${(rise / MIB).toFixed(1)} MiB`);
    // 2,000 × 64 KiB is within the message window (10,000) but over the byte window (16 MiB).
    const stats = (await (await fetch(`http://${http}/v1/stats`)).json()) as {
      pubsub?: { droppedSubscribers: number };
    };
    assert.equal(stats.pubsub?.droppedSubscribers, 1, 'the subscriber fell behind its byte window');
  });

  it('serves a healthy client during a flood of invalid frames and drops the flooder', async () => {
    const { b, http } = await broker();
    const healthy = await RawFerry.open(b.endpoint);
    sockets.push(healthy.raw);
    const rand = prng('flood');
    // The flooder reads nothing and sends as fast as ZeroMQ takes frames.
    const flooder = new zmq.Dealer({ linger: 0, sendHighWaterMark: 1_000 });
    sockets.push(flooder);
    flooder.connect(b.endpoint);
    let sent = 0;
    const flood = (async () => {
      for (; sent < FLOOD_FRAMES; sent++) {
        await flooder.send([
          Buffer.from('FERRY01'),
          rand.bytes(1 + rand.int(40)),
          rand.bytes(rand.int(20)),
        ]);
      }
    })();
    await waitFor(() => sent > 0, 'the flood to start');
    // Every ping is answered (each within its generous deadline) while the flood is sent and
    // discarded; how many completed before the last flood frame was sent is only reported (it
    // depends on the machine's speed, not on the broker's fairness alone).
    let whileSending = 0;
    for (let i = 0; i < HEALTHY_PINGS; i++) {
      const reply = await healthy.request('PING');
      assert.equal(reply.kind, 'PONG');
      if (sent < FLOOD_FRAMES) whileSending++;
    }
    await flood;
    process.stdout.write(
      `# ${whileSending}/${HEALTHY_PINGS} pings answered while the flood was sent\n`,
    );
    assert.equal((await healthy.request('PING')).kind, 'PONG');
    await waitFor(
      async () => {
        const m = await metrics(http);
        return (sampleValue(m, 'ferry_peers_dropped_total', { dialect: 'ferry' }) ?? 0) >= 1;
      },
      'the flooder to be counted as dropped',
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const m = await metrics(http);
    const invalid = sampleValue(m, 'ferry_peer_invalid_frames_total', { dialect: 'ferry' }) ?? 0;
    const ignored = sampleValue(m, 'ferry_peer_ignored_frames_total', { dialect: 'ferry' }) ?? 0;
    assert.ok(invalid >= 1, `invalid frames counted (${invalid})`);
    assert.ok(ignored >= 1, `frames from the dropped peer ignored (${ignored})`);
  });
});
