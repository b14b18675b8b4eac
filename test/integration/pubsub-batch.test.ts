/**
 * The SDK batches the publishes of one tick into one PUBLISH (docs/protocol.md §9): each is
 * answered with its own number or error, a durable subscriber gets them all in order, and a
 * malformed batched PUBLISH is refused with a code.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FerryError, type FerryClient } from 'ferrymq';
import { TestResources } from '../helpers/broker.js';

const resources = new TestResources();

after(() => resources.closeAll());

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof FerryError && err.code === code);
}

const PUBLISHES = 200;

describe('batched publishes', () => {
  it('publishes of one tick are answered one by one and reach a durable subscriber in order', async () => {
    const b = await resources.broker({});
    const c: FerryClient = await resources.client(b.endpoint, 200);
    const sub = c.subscribe('batch/**', { durable: 'batch-1' });
    await c.publish('batch/warm', 'w'); // the subscription exists from here on
    const ps = Array.from({ length: PUBLISHES }, (_, i) => c.publish(`batch/${i % 3}`, `m${i}`));
    const bad = c.publish('batch/*', 'refused alone');
    const seqs = await Promise.all(ps);
    await rejectsWith(bad, 'INVALID_TOPIC');
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, 'increasing');
    const bodies: string[] = [];
    const deadline = Date.now() + 15_000;
    for await (const m of sub) {
      await m.ack();
      if (m.topic !== 'batch/warm') bodies.push(m.body.toString());
      if (bodies.length === PUBLISHES || Date.now() > deadline) break;
    }
    assert.deepEqual(
      bodies,
      Array.from({ length: PUBLISHES }, (_, i) => `m${i}`),
    );
  });

  it('refuses a malformed batched PUBLISH with a code and keeps serving', async () => {
    const b = await resources.broker({});
    const c = await resources.client(b.endpoint, 200);
    const raw = (
      c as unknown as {
        request(cmd: string, args: Record<string, unknown>, payload?: Buffer[]): Promise<unknown>;
      }
    ).request.bind(c);
    const x = [Buffer.from('x')];
    await rejectsWith(raw('PUBLISH', { messages: [] }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('PUBLISH', { messages: 'a' }, x), 'BAD_ARGUMENTS');
    await rejectsWith(
      raw('PUBLISH', { topic: 'a', messages: [{ topic: 'a' }] }, x),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(raw('PUBLISH', { messages: [{ topic: 'a', color: 1 }] }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('PUBLISH', { messages: [{ topic: 5 }] }, x), 'BAD_ARGUMENTS');
    await rejectsWith(
      raw('PUBLISH', { messages: [{ topic: 'a' }, { topic: 'b' }] }, x),
      'BAD_FRAME',
    );
    await rejectsWith(
      raw('PUBLISH', { messages: Array.from({ length: 10_001 }, () => ({ topic: 'a' })) }, x),
      'BATCH_TOO_LARGE',
    );
    const ok = (await raw('PUBLISH', { messages: [{ topic: 'a' }, { topic: 'b', retain: true }] }, [
      Buffer.from('1'),
      Buffer.from('2'),
    ])) as { args: { results: { seq: number; durable: number }[] } };
    assert.deepEqual(
      ok.args.results.map((r) => r.durable),
      [0, 0],
    );
    assert.ok((await c.publish('still/serving', 'yes')) > 0);
  });
});
