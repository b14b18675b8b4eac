/**
 * One process can hold a thousand clients: the SDK raises ZeroMQ's context limit (1,023
 * sockets by default, about 340 clients of three sockets each) from the process's open-file
 * limit.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { startBroker, type TestBroker } from '../helpers/broker.js';

const CLIENTS = 1_000;
/** Clients connecting at once: a batch of connects in flight, then the next. */
const CONNECT_BATCH = 100;

const clients: FerryClient[] = [];
let broker: TestBroker | undefined;
after(async () => {
  await Promise.all(clients.map((c) => c.close({ timeoutMs: 0 })));
  await broker?.stop();
});

describe('many clients in one process', () => {
  it(`connects ${CLIENTS} clients, each of which works`, async () => {
    broker = await startBroker();
    for (let i = 0; i < CLIENTS; i += CONNECT_BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(CONNECT_BATCH, CLIENTS - i) }, () =>
          connect(broker!.endpoint, { heartbeatMs: 10_000, requestTimeoutMs: 30_000 }),
        ),
      );
      clients.push(...batch);
    }
    assert.equal(clients.length, CLIENTS);
    const ids = await Promise.all(clients.map((c, i) => c.send('many-clients', `from ${i}`)));
    assert.equal(new Set(ids).size, CLIENTS);
    assert.equal((await broker.server.broker.queueStats('many-clients')).depth, CLIENTS);
  });
});
