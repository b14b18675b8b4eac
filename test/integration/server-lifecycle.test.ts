/**
 * The broker's components start in order and close in exactly the reverse order, through
 * one stack: after a full run, after a start that fails half-way (a port already taken:
 * nothing stays bound, the data folder is unlocked, the store is closed), and on close()
 * called twice. Real components and sockets; the order is read through `onLifecycle`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { FerryError } from 'ferrymq/model';
import { loadConfig, startServer, type FerryConfig } from 'ferrymq-server';
import type { LifecycleEvent } from 'ferrymq-server/internal/server/lifecycle.js';
import { LOCK_FILE } from 'ferrymq-server/internal/server/data-dir-lock.js';
import { SQLITE_DB_FILE } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { tmpDir, waitFor } from '../helpers/broker.js';

/** Every component a broker with every dialect and the gateway on is made of, in order. */
const ALL = [
  'security',
  'data-dir-lock',
  'disk-watcher',
  'store',
  'core',
  'ferry',
  'mdp',
  'clone',
  'pzq',
  'zmws',
  'http',
];
/** The components that have something to drain. */
const DRAINING = new Set(['core', 'ferry', 'mdp', 'clone', 'pzq', 'zmws', 'http']);
/** How long a closed ZeroMQ listener may take to let its port go (closed on ZeroMQ's thread). */
const UNBIND_WAIT_MS = 5_000;

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

function closeServer(srv: net.Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/** True when `port` on 127.0.0.1 can be bound now (it is bound and let go at once). */
async function bindable(port: number): Promise<boolean> {
  try {
    await closeServer(await listen(port));
    return true;
  } catch {
    return false;
  }
}

/** `count` distinct free ports, held together while chosen so none repeats. */
async function freePorts(count: number): Promise<number[]> {
  const held = await Promise.all(Array.from({ length: count }, () => listen(0)));
  const ports = held.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(held.map(closeServer));
  return ports;
}

/** A base port P with P, P+1 and P+2 free (Clone binds all three). */
async function freeRunOfThree(): Promise<number> {
  for (;;) {
    const [p] = await freePorts(1);
    if (p! + 2 > 65_535) continue;
    if ((await bindable(p! + 1)) && (await bindable(p! + 2))) return p!;
  }
}

interface AllPorts {
  ferry: number;
  mdp: number;
  clone: number;
  pzqReceive: number;
  pzqSend: number;
  pzqMonitor: number;
  zmwsClient: number;
  zmwsWorker: number;
  http: number;
}

async function allPorts(): Promise<AllPorts> {
  const clone = await freeRunOfThree();
  const p = (await freePorts(12)).filter((x) => x < clone || x > clone + 2);
  const [ferry, mdp, pzqReceive, pzqSend, pzqMonitor, zmwsClient, zmwsWorker, http] = p;
  return {
    ferry: ferry!,
    mdp: mdp!,
    clone,
    pzqReceive: pzqReceive!,
    pzqSend: pzqSend!,
    pzqMonitor: pzqMonitor!,
    zmwsClient: zmwsClient!,
    zmwsWorker: zmwsWorker!,
    http: http!,
  };
}

/** Every TCP port the ZeroMQ components bind (all but the gateway's). */
function zmqPorts(p: AllPorts): number[] {
  return [
    p.ferry,
    p.mdp,
    p.clone,
    p.clone + 1,
    p.clone + 2,
    p.pzqReceive,
    p.pzqSend,
    p.pzqMonitor,
    p.zmwsClient,
    p.zmwsWorker,
  ];
}

/** A broker with every dialect and the gateway on, on `ports`. */
function fullConfig(dataDir: string, p: AllPorts): FerryConfig {
  const tcp = (port: number): string => `tcp://127.0.0.1:${port}`;
  return loadConfig({
    flags: {
      data: dataDir,
      'log-level': 'silent',
      bind: tcp(p.ferry),
      mdp: tcp(p.mdp),
      clone: String(p.clone),
      pzq: true,
      'pzq-receive': tcp(p.pzqReceive),
      'pzq-send': tcp(p.pzqSend),
      'pzq-monitor': tcp(p.pzqMonitor),
      zmws: true,
      'zmws-client': tcp(p.zmwsClient),
      'zmws-worker': tcp(p.zmwsWorker),
      http: `127.0.0.1:${p.http}`,
    },
  });
}

function namesAt(events: LifecycleEvent[], step: LifecycleEvent['step']): string[] {
  return events.filter((e) => e.step === step).map((e) => e.component);
}

/** Drains come newest first, all before the first close; closes are the exact reverse. */
function assertUnwoundInReverse(events: LifecycleEvent[], begun: string[]): void {
  const reversed = [...begun].reverse();
  assert.deepEqual(
    namesAt(events, 'drained'),
    reversed.filter((n) => DRAINING.has(n)),
  );
  assert.deepEqual(namesAt(events, 'closed'), reversed);
  const lastDrain = events.findLastIndex((e) => e.step === 'drained');
  const firstClose = events.findIndex((e) => e.step === 'closed');
  assert.ok(lastDrain < firstClose, 'every drain before the first close');
  assert.deepEqual(
    events.filter((e) => e.step === 'drain-failed' || e.step === 'close-failed'),
    [],
  );
}

/** What a closed broker leaves in its data folder: the database file, no lock, no WAL. */
function assertDataDirReleased(dataDir: string): void {
  const files = fs.readdirSync(dataDir);
  assert.ok(!files.includes(LOCK_FILE), `the lock is released (${files.join(', ')})`);
  assert.ok(
    !files.includes(`${SQLITE_DB_FILE}-wal`) && !files.includes(`${SQLITE_DB_FILE}-shm`),
    `the store is closed (${files.join(', ')})`,
  );
}

async function assertAllBindable(ports: number[]): Promise<void> {
  for (const port of ports) {
    await waitFor(() => bindable(port), `port ${port} can be bound again`, {
      timeoutMs: UNBIND_WAIT_MS,
      intervalMs: 20,
    });
  }
}

/** A second broker on the same folder starts and stops (defaults: no dialect, no gateway). */
async function assertRestartable(dataDir: string): Promise<void> {
  const again = await startServer(
    loadConfig({
      flags: { data: dataDir, bind: 'tcp://127.0.0.1:*', http: 'off', 'log-level': 'silent' },
    }),
  );
  await again.close();
}

describe('server life cycle', () => {
  it('starts every component in order and closes them in exactly the reverse order', async () => {
    const dataDir = tmpDir();
    const ports = await allPorts();
    const events: LifecycleEvent[] = [];
    const server = await startServer(fullConfig(dataDir, ports), {
      onLifecycle: (e) => events.push(e),
    });
    assert.deepEqual(namesAt(events, 'started'), ALL);
    assert.equal(events.length, ALL.length, 'nothing but starts before close()');
    // The servers answer while running: the gateway, and the broker's stats row per dialect.
    const stats = await server.stats.snapshot();
    assert.deepEqual(Object.keys(stats.connections), ['ferry', 'mdp', 'pzq', 'zmws', 'http']);
    await server.close();
    assertUnwoundInReverse(events, ALL);
    assertDataDirReleased(dataDir);
    await assertAllBindable([...zmqPorts(ports), ports.http]);
    await assertRestartable(dataDir);
  });

  it('close() twice (at once, then again) unwinds once and resolves every time', async () => {
    const events: LifecycleEvent[] = [];
    const server = await startServer(
      loadConfig({
        flags: {
          data: tmpDir(),
          bind: 'tcp://127.0.0.1:*',
          http: '127.0.0.1:0',
          'log-level': 'silent',
        },
      }),
      { onLifecycle: (e) => events.push(e) },
    );
    const started = namesAt(events, 'started');
    assert.deepEqual(started, [
      'security',
      'data-dir-lock',
      'disk-watcher',
      'store',
      'core',
      'ferry',
      'http',
    ]);
    await Promise.all([server.close(), server.close()]);
    await server.close();
    assertUnwoundInReverse(events, started);
  });

  it('a gateway port already taken: ADDRESS_IN_USE, everything started is closed, nothing bound', async () => {
    const dataDir = tmpDir();
    const ports = await allPorts();
    const taken = await listen(ports.http);
    const events: LifecycleEvent[] = [];
    try {
      await assert.rejects(
        startServer(fullConfig(dataDir, ports), { onLifecycle: (e) => events.push(e) }),
        (e: unknown) => e instanceof FerryError && e.code === 'ADDRESS_IN_USE',
      );
    } finally {
      await closeServer(taken);
    }
    assert.deepEqual(namesAt(events, 'started'), ALL.slice(0, -1));
    assert.deepEqual(namesAt(events, 'start-failed'), ['http']);
    // The failed component is unwound too (first): it may have taken part of what it needs.
    assertUnwoundInReverse(events, ALL);
    assertDataDirReleased(dataDir);
    await assertAllBindable(zmqPorts(ports));
    await assertRestartable(dataDir);
  });

  it('a dialect port already taken: the later components never start, the earlier are closed', async () => {
    const dataDir = tmpDir();
    const ports = await allPorts();
    const taken = await listen(ports.zmwsWorker);
    const events: LifecycleEvent[] = [];
    try {
      await assert.rejects(
        startServer(fullConfig(dataDir, ports), { onLifecycle: (e) => events.push(e) }),
        (e: unknown) => e instanceof FerryError && e.code === 'ADDRESS_IN_USE',
      );
    } finally {
      await closeServer(taken);
    }
    const begun = ALL.slice(0, ALL.indexOf('zmws') + 1);
    assert.deepEqual(namesAt(events, 'started'), begun.slice(0, -1));
    assert.deepEqual(namesAt(events, 'start-failed'), ['zmws']);
    assertUnwoundInReverse(events, begun);
    assertDataDirReleased(dataDir);
    await assertAllBindable([...zmqPorts(ports), ports.http]);
    await assertRestartable(dataDir);
  });
});
