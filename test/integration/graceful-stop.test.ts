/**
 * What the SDK does with requests a broker refuses with SHUTTING_DOWN while it stops gracefully:
 * it holds them and sends them again once a broker answers HELLO; an ack of a lease the old
 * session held goes out again too, and resolves 'lease-lost' when the new session answers so. The broker here is a scripted
 * ROUTER speaking the protocol, so the refusals come exactly when the test says.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect, type ClientStatus, type Message } from 'ferrymq';
import { decodeRequest, encodeError, encodeReply, type Request } from 'ferrymq/protocol';
import { waitFor } from '../helpers/broker.js';

/** Requests after this many without an answer from the script are a bug in the test. */
const MAX_REQUESTS = 200;

/** A ROUTER that answers as a broker that is running, then stopping, then back. */
class ScriptedBroker {
  readonly sock = new zmq.Router({ linger: 0 });
  mode: 'running' | 'stopping' = 'running';
  session = 0;
  /** Message ids delivered in the current session: only their acks succeed. */
  readonly leased = new Set<string>();
  readonly seen: Request[] = [];
  private peer: Buffer | undefined;

  async bind(): Promise<string> {
    await this.sock.bind('tcp://127.0.0.1:*');
    void this.serve();
    return this.sock.lastEndpoint!;
  }

  private async serve(): Promise<void> {
    try {
      for (let n = 0; n < MAX_REQUESTS; n++) {
        const [peer, ...frames] = await this.sock.receive();
        this.peer = peer;
        const req = decodeRequest(frames);
        this.seen.push(req);
        await this.sock.send([peer!, ...this.answer(req)]);
      }
    } catch {
      // Closed.
    }
  }

  private answer(req: Request): Buffer[] {
    if (this.mode === 'stopping' && req.command === 'CALL') {
      // A call's in-memory job, failed by the stop (as the job server does when it closes).
      return encodeReply('ERROR', req.requestId, {
        code: 'JOB_FAILED',
        message: 'the broker shut down before the job finished',
        job: { id: 'j1', status: 'failed', error: { code: 'SHUTTING_DOWN', message: 'stop' } },
      });
    }
    if (this.mode === 'stopping' && req.command !== 'PING') {
      return encodeError(req.requestId, 'SHUTTING_DOWN', 'the broker is shutting down');
    }
    switch (req.command) {
      case 'HELLO':
        this.session++;
        this.leased.clear();
        return encodeReply('OK', req.requestId, {
          session: `s${this.session}`,
          heartbeatMs: req.args['heartbeatMs'] ?? 100,
        });
      case 'PING':
        return this.mode === 'stopping'
          ? encodeError(req.requestId, 'NO_SESSION', 'no session')
          : encodeReply('PONG', req.requestId, {});
      case 'SEND':
        return encodeReply('OK', req.requestId, { ids: ['41'] });
      case 'CALL':
        return encodeReply('OK', req.requestId, { id: 'j2' }, [Buffer.from('result')]);
      case 'ACK': {
        // As the broker does: an id this session does not hold is LEASE_LOST.
        const ids = (req.args['ids'] as string[]) ?? [];
        const failed = ids
          .filter((id) => !this.leased.delete(id))
          .map((id) => ({ id, code: 'LEASE_LOST' }));
        return encodeReply('OK', req.requestId, { done: ids.length - failed.length, failed });
      }
      default:
        return encodeReply('OK', req.requestId, {});
    }
  }

  /** Pushes one message to a consumer, as DELIVER does. */
  async deliver(consumer: string, id: string): Promise<void> {
    this.leased.add(id);
    const frames = encodeReply('DELIVER', Buffer.alloc(0), { consumer, messages: [{ id }] }, [
      Buffer.from('body'),
    ]);
    await this.sock.send([this.peer!, ...frames]);
  }

  count(command: string): number {
    return this.seen.filter((r) => r.command === command).length;
  }
}

const closers: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

describe('a broker that stops gracefully', () => {
  it('gets the refused requests again after HELLO; an old session ack goes out, lease-lost', async () => {
    const broker = new ScriptedBroker();
    const endpoint = await broker.bind();
    closers.push(() => broker.sock.close());
    const c = await connect(endpoint, { heartbeatMs: 100, requestTimeoutMs: 10_000 });
    closers.push(() => c.close({ timeoutMs: 0 }));
    const events: ClientStatus[] = [];
    void (async () => {
      for await (const s of c.status()) events.push(s);
    })();

    const consumer = c.consume('graceful');
    await waitFor(() => broker.count('CONSUME') === 1, 'CONSUME sent');
    const tag = String(broker.seen.find((r) => r.command === 'CONSUME')!.args['consumer']);
    await broker.deliver(tag, '7');
    const it = consumer[Symbol.asyncIterator]();
    const msg = (await it.next()).value as Message;
    assert.equal(msg.id, '7');

    broker.mode = 'stopping';
    const sent = c.send('graceful', 'during the stop');
    const stats = c.stats('graceful');
    const acked = msg.ack();
    const called = c.call('resize', 'params', { timeoutMs: 5_000 });
    await waitFor(
      () =>
        broker.count('SEND') === 1 &&
        broker.count('STATS') === 1 &&
        broker.count('ACK') === 1 &&
        broker.count('CALL') === 1,
      'the four requests refused once',
    );
    await waitFor(() => c.counters.retriedAfterShutdown === 4, 'the four held');
    broker.mode = 'running';

    assert.equal(await sent, '41', 'the send went out again and was answered');
    await stats;
    assert.equal(await acked, 'lease-lost', 'the new session does not hold the old lease');
    assert.equal((await called).toString(), 'result', 'the call went out again and was answered');
    assert.equal(broker.count('CALL'), 2);
    const sends = broker.seen.filter((r) => r.command === 'SEND');
    assert.equal(sends.length, 2);
    assert.equal(sends[1]!.args['requestKey'], sends[0]!.args['requestKey'], 'same request key');
    assert.equal(broker.count('ACK'), 2, 'the held ack went out again: the broker decides');
    assert.ok(broker.session >= 2, 'a new session');
    assert.equal(c.counters.leasesLost, 1);
    await waitFor(
      () => events.some((e) => e.type === 'lease-lost' && e.command === 'ACK' && e.id === '7'),
      'a lease-lost status event',
    );
    assert.ok(broker.count('CONSUME') >= 2, 'the consumer was resumed');
  });
});
