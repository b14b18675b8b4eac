/**
 * The Majordomo dialect over the real job server (not the fake one of mdp-dialect.test.ts):
 * where the two must agree on who holds a worker's slot.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { JobServer } from 'ferrymq-server/internal/core/jobs.js';
import { MdpDialect } from 'ferrymq-server/internal/dialects/mdp/mdp-dialect.js';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';

const E = Buffer.alloc(0);
const b = (s: string): Buffer => Buffer.from(s);

describe('MDP over the real job server', () => {
  it('a worker whose job was cancelled takes the next one after its late reply', async () => {
    const clock = new ManualClock();
    const storage = new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } });
    await storage.open();
    const jobs = await JobServer.open({ storage: storage.jobs, clock });
    const sent: Buffer[][] = [];
    const mdp = new MdpDialect(jobs, (_peer, frames) => sent.push(frames), { clock });
    try {
      mdp.handle(b('W'), [E, b('MDPW01'), Buffer.from([1]), b('svc')]);
      const first = await jobs.submit({ service: 'svc', params: [b('1')], durable: true });
      await waitFor(() => sent.length === 1, 'the first request', { intervalMs: 1 });
      const req = sent.pop()!;
      await jobs.cancel(first.id);
      await jobs.submit({ service: 'svc', params: [b('2')], durable: true });
      mdp.handle(b('W'), [E, b('MDPW01'), Buffer.from([3]), req[3]!, E, b('late')]);
      await waitFor(() => sent.length === 1, 'the second request after the late reply', {
        intervalMs: 1,
      });
      assert.equal(sent[0]!.at(-1)!.toString(), '2');
    } finally {
      mdp.close();
      await jobs.close();
      await storage.close();
    }
  });
});
