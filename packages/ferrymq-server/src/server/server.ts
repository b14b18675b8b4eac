/**
 * The composition root: data folder lock, SQLite store, core broker, Ferry dialect, ZeroMQ
 * endpoint. `close()` stops accepting, answers what is in flight, flushes, closes, unlocks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Broker } from '../core/broker.js';
import { JobServer } from '../core/jobs.js';
import { PubSub } from '../core/pubsub.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { CloneDialect } from '../dialects/clone/clone-dialect.js';
import { FerryDialect } from '../dialects/ferry/ferry-dialect.js';
import { MdpDialect } from '../dialects/mdp/mdp-dialect.js';
import { MMI_PREFIX } from '../dialects/mdp/mmi.js';
import { TitanicServices } from '../dialects/titanic/titanic-services.js';
import { PzqDialect } from '../dialects/pzq/pzq-dialect.js';
import { ZmwsDialect } from '../dialects/zmws/zmws-dialect.js';
import { bindFanOut } from '../transport/zmq-fan-out.js';
import type { HttpGateway } from '../http/gateway.js';
import { StatsSource } from '../core/stats.js';
import { SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { bindRouter } from '../transport/zmq-router.js';
import {
  bindCollector,
  bindPublisher,
  type CollectorEndpoint,
  type PublisherEndpoint,
} from '../transport/zmq-pubsub.js';
import type { FanOutEndpoint, ServerEndpoint } from 'ferrymq/transport';
import {
  defaultPolicyOf,
  formatSync,
  jobPolicyOf,
  splitHttpAddress,
  type FerryConfig,
} from './config.js';
import { lockDataDir } from './data-dir-lock.js';

/** How often free disk space in the data folder is checked. */
export const DISK_CHECK_INTERVAL_MS = 1_000;
/** Extra bytes a frame may have over the largest message (protocol overhead). */
const FRAME_SLACK_BYTES = 64 * 1024;
/** Clone binds loopback only (its protocol has no authentication). */
export const CLONE_HOST = '127.0.0.1';

export interface RunningServer {
  /** The bound endpoint, resolved (a `*` port becomes the real one). */
  readonly endpoint: string;
  readonly broker: Broker;
  readonly jobs: JobServer;
  readonly pubsub: PubSub;
  /** The bound Majordomo endpoint (MDP, MMI, Titanic), when `mdp` is configured. */
  readonly mdpEndpoint: string | undefined;
  /** The Majordomo dialect, when `mdp` is configured (its counters: for stats and tests). */
  readonly mdp: MdpDialect | undefined;
  /** The Clone (12/CHP) endpoints, when `clone` is configured. */
  readonly cloneEndpoints: { snapshot: string; publisher: string; collector: string } | undefined;
  /** The Clone dialect, when `clone` is configured (its counters: for stats and tests). */
  readonly clone: CloneDialect | undefined;
  /** The PZQ endpoints (producers, consumers, monitor), when `pzq` is on. */
  readonly pzqEndpoints: PzqEndpoints | undefined;
  /** The PZQ dialect, when `pzq` is on (its counters: for stats and tests). */
  readonly pzq: PzqDialect | undefined;
  /** The ZMWS endpoints (clients, workers), when `zmws` is on. */
  readonly zmwsEndpoints: { client: string; worker: string } | undefined;
  /** The ZMWS dialect, when `zmws` is on. */
  readonly zmws: ZmwsDialect | undefined;
  /** The HTTP gateway's URL (`http://host:port`, real port), when `http` is configured. */
  readonly httpUrl: string | undefined;
  /** The running HTTP gateway, when `http` is configured. */
  readonly http: HttpGateway | undefined;
  /** Every number of stats, /metrics and the dashboard (one source). */
  readonly stats: StatsSource;
  readonly config: FerryConfig;
  close(): Promise<void>;
}

export interface PzqEndpoints {
  receive: string;
  send: string;
  monitor: string;
}

/** Where the PZQ monitor binds when `pzqMonitor` is not set: an ipc socket in the data folder. */
export function defaultPzqMonitor(dataDir: string): string {
  return `ipc://${path.join(path.resolve(dataDir), 'pzq-monitor')}`;
}

/** The PZQ dialect's three sockets. */
interface PzqSockets {
  receive?: ServerEndpoint;
  send?: FanOutEndpoint;
  monitor?: ServerEndpoint;
}

async function closePzqSockets(s: PzqSockets): Promise<void> {
  await s.receive?.close();
  await s.send?.close();
  await s.monitor?.close();
}

export interface StartOptions {
  logger?: Logger;
}

function watchDisk(
  dataDir: string,
  floor: number,
  log: Logger,
): { isLow: () => boolean; stop: () => void } {
  let low = false;
  const check = (): void => {
    if (floor <= 0) return;
    try {
      const s = fs.statfsSync(dataDir);
      const free = s.bavail * s.bsize;
      const nowLow = free < floor;
      if (nowLow !== low) {
        log.warn(nowLow ? 'free disk below the floor: refusing sends' : 'free disk recovered', {
          freeBytes: free,
          floorBytes: floor,
        });
      }
      low = nowLow;
    } catch {
      /* keep the last reading */
    }
  };
  check();
  const timer = setInterval(check, DISK_CHECK_INTERVAL_MS);
  timer.unref();
  return { isLow: () => low, stop: () => clearInterval(timer) };
}

export async function startServer(
  config: FerryConfig,
  options: StartOptions = {},
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const unlock = lockDataDir(config.dataDir);
  const disk = watchDisk(config.dataDir, config.minFreeDiskBytes, log);
  let broker: Broker | undefined;
  let jobs: JobServer | undefined;
  let pubsub: PubSub | undefined;
  let endpoint: ServerEndpoint | undefined;
  let dialect: FerryDialect | undefined;
  let mdp: MdpDialect | undefined;
  let mdpEndpoint: ServerEndpoint | undefined;
  let clone: CloneDialect | undefined;
  let cloneSnapshot: ServerEndpoint | undefined;
  let clonePublisher: PublisherEndpoint | undefined;
  let cloneCollector: CollectorEndpoint | undefined;
  let pzq: PzqDialect | undefined;
  const pzqSockets: PzqSockets = {};
  let zmws: ZmwsDialect | undefined;
  const zmwsSockets: { client?: ServerEndpoint; worker?: ServerEndpoint } = {};
  let gateway: HttpGateway | undefined;
  let stats: StatsSource | undefined;
  try {
    const storage = new SqliteStorage({
      dataDir: config.dataDir,
      sync: config.sync,
      maxStoreBytes: config.maxStoreBytes,
    });
    broker = await Broker.open({
      storage,
      logger: log,
      defaultPolicy: defaultPolicyOf(config),
      queuePolicies: config.queues,
      limits: {
        maxQueues: config.maxQueues,
        maxMessageBytes: config.maxMessageBytes,
        maxPrefetch: config.maxPrefetch,
      },
      isStorageLow: disk.isLow,
    });
    jobs = await JobServer.open({
      storage: storage.jobs,
      logger: log,
      defaultPolicy: jobPolicyOf(config),
      maxParamsBytes: config.maxMessageBytes,
      isStorageLow: disk.isLow,
    });
    pubsub = await PubSub.open({
      storage: storage.pubsub,
      broker,
      logger: log,
      liveWindow: config.liveWindow,
    });
    const b = broker;
    stats = new StatsSource({
      broker: b,
      jobs,
      pubsub,
      connections: () => ({
        ferry: dialect?.connections ?? 0,
        // Dialects without client sessions count what they track: workers, consumers.
        ...(mdp ? { mdp: mdp.workerCount } : {}),
        ...(pzq ? { pzq: pzq.connectedConsumers } : {}),
        ...(zmws ? { zmws: zmws.workerCount } : {}),
        ...(gateway ? { http: gateway.connections } : {}),
      }),
    });
    const d = new FerryDialect(b, (peer, frames) => endpoint?.send(peer, frames), {
      jobs,
      pubsub,
      stats,
      logger: log,
      heartbeatMs: config.heartbeatMs,
      maxBatchMessages: config.maxBatchMessages,
      maxRequestBytes: config.maxRequestBytes,
    });
    dialect = d;
    endpoint = await bindRouter(config.bind, (peer, frames) => d.handle(peer, frames), {
      maxFrameBytes: Math.max(config.maxMessageBytes, config.maxRequestBytes) + FRAME_SLACK_BYTES,
    });
    if (config.mdp !== undefined) {
      const titanic = new TitanicServices(jobs, {
        logger: log,
        isReserved: (service) => service.startsWith(MMI_PREFIX),
      });
      const m = new MdpDialect(jobs, (peer, frames) => mdpEndpoint?.send(peer, frames), {
        logger: log,
        internal: [titanic],
      });
      mdp = m;
      mdpEndpoint = await bindRouter(config.mdp, (peer, frames) => m.handle(peer, frames), {
        maxFrameBytes: config.maxMessageBytes + FRAME_SLACK_BYTES,
      });
    }
    if (config.clone !== undefined) {
      const host = `tcp://${CLONE_HOST}`;
      const port = config.clone;
      const pub = await bindPublisher(`${host}:${port + 1}`);
      clonePublisher = pub;
      const cd = new CloneDialect(
        pubsub,
        (peer, frames) => cloneSnapshot?.send(peer, frames),
        (frames) => pub.send(frames),
        { logger: log },
      );
      clone = cd;
      cloneSnapshot = await bindRouter(`${host}:${port}`, (peer, frames) =>
        cd.handleSnapshot(peer, frames),
      );
      cloneCollector = await bindCollector(
        `${host}:${port + 2}`,
        (frames) => cd.handleCollector(frames),
        { maxFrameBytes: config.maxMessageBytes + FRAME_SLACK_BYTES },
      );
    }
    if (config.pzq) {
      const s = pzqSockets;
      const p = new PzqDialect(
        b,
        {
          toProducer: (peer, frames) => s.receive?.send(peer, frames),
          toConsumers: (frames) => s.send?.send(frames),
          toMonitor: (peer, frames) => s.monitor?.send(peer, frames),
        },
        { queue: config.pzqQueue, ackTimeoutUs: config.pzqAckTimeoutUs, logger: log },
      );
      pzq = p;
      const maxFrameBytes = config.maxMessageBytes + FRAME_SLACK_BYTES;
      s.send = await bindFanOut(
        config.pzqSend,
        {
          onMessage: (frames) => p.handleConsumer(frames),
          onPeers: (count) => {
            if (count === 0) p.takeBack(s.send?.takeQueued() ?? []);
            p.consumersChanged(count);
          },
        },
        { maxFrameBytes },
      );
      s.monitor = await bindRouter(
        config.pzqMonitor ?? defaultPzqMonitor(config.dataDir),
        (peer, frames) => p.handleMonitor(peer, frames),
        { maxFrameBytes: FRAME_SLACK_BYTES },
      );
      s.receive = await bindRouter(
        config.pzqReceive,
        (peer, frames) => p.handleProducer(peer, frames),
        { maxFrameBytes },
      );
    }
    if (config.zmws) {
      const s = zmwsSockets;
      const z = new ZmwsDialect(
        jobs,
        {
          toClient: (peer, frames) => s.client?.send(peer, frames),
          toWorker: (peer, frames) => s.worker?.send(peer, frames),
        },
        { logger: log, heartbeatIntervalMs: config.zmwsHeartbeatMs },
      );
      zmws = z;
      const maxFrameBytes = config.maxMessageBytes + FRAME_SLACK_BYTES;
      s.worker = await bindRouter(
        config.zmwsWorker,
        (peer, frames) => z.handleWorker(peer, frames),
        {
          maxFrameBytes,
        },
      );
      s.client = await bindRouter(
        config.zmwsClient,
        (peer, frames) => z.handleClient(peer, frames),
        {
          maxFrameBytes,
        },
      );
    }
    if (config.http !== undefined) {
      const { host, port } = splitHttpAddress(config.http);
      // Loaded only when the gateway is on: Fastify and its plugins cost ~20 MB of memory.
      const { startGateway } = await import('../http/gateway.js');
      gateway = await startGateway({
        broker: b,
        jobs,
        stats,
        host,
        port,
        bodyLimitBytes: config.httpBodyLimitBytes,
        zmwsListing: zmws ? (query) => zmws!.listing(query) : undefined,
        logger: log,
      });
    }
  } catch (err) {
    clone?.close();
    await cloneCollector?.close();
    await cloneSnapshot?.close();
    await clonePublisher?.close();
    await gateway?.close();
    zmws?.close();
    await zmwsSockets.client?.close();
    await zmwsSockets.worker?.close();
    pzq?.close();
    await closePzqSockets(pzqSockets);
    mdp?.close();
    await mdpEndpoint?.close();
    await endpoint?.close();
    dialect?.close();
    pubsub?.close();
    await jobs?.close().catch(() => {});
    await broker?.close().catch(() => {});
    disk.stop();
    unlock();
    throw err;
  }
  const b = broker;
  const j = jobs;
  const ps = pubsub;
  const ep = endpoint;
  const d = dialect;
  const m = mdp;
  const mep = mdpEndpoint;
  const cl = clone;
  const clSnap = cloneSnapshot;
  const clPub = clonePublisher;
  const clColl = cloneCollector;
  const pz = pzq;
  const zm = zmws;
  const zmEndpoints =
    zm && zmwsSockets.client && zmwsSockets.worker
      ? { client: zmwsSockets.client.endpoint, worker: zmwsSockets.worker.endpoint }
      : undefined;
  const pzEndpoints: PzqEndpoints | undefined =
    pz && pzqSockets.receive && pzqSockets.send && pzqSockets.monitor
      ? {
          receive: pzqSockets.receive.endpoint,
          send: pzqSockets.send.endpoint,
          monitor: pzqSockets.monitor.endpoint,
        }
      : undefined;
  const gw = gateway;
  const st = stats;
  log.info('ferry broker started', {
    endpoint: ep.endpoint,
    ...(mep ? { mdp: mep.endpoint } : {}),
    ...(clSnap ? { clone: clSnap.endpoint } : {}),
    ...(pzEndpoints ? { pzq: pzEndpoints } : {}),
    ...(zmEndpoints ? { zmws: zmEndpoints } : {}),
    ...(gw ? { http: gw.url } : {}),
    dataDir: config.dataDir,
    sync: formatSync(config.sync),
  });
  let closing: Promise<void> | undefined;
  return {
    endpoint: ep.endpoint,
    broker: b,
    jobs: j,
    pubsub: ps,
    mdpEndpoint: mep?.endpoint,
    mdp: m,
    cloneEndpoints:
      clSnap && clPub && clColl
        ? { snapshot: clSnap.endpoint, publisher: clPub.endpoint, collector: clColl.endpoint }
        : undefined,
    clone: cl,
    pzqEndpoints: pzEndpoints,
    pzq: pz,
    zmwsEndpoints: zmEndpoints,
    zmws: zm,
    httpUrl: gw?.url,
    http: gw,
    stats: st,
    config,
    close() {
      closing ??= (async () => {
        await gw?.close();
        d.close();
        m?.close();
        cl?.close();
        await clColl?.close();
        await clSnap?.close();
        await clPub?.close();
        ps.close();
        pz?.close();
        zm?.close();
        await j.close();
        await b.close();
        await ep.close();
        await mep?.close();
        await closePzqSockets(pzqSockets);
        await zmwsSockets.client?.close();
        await zmwsSockets.worker?.close();
        disk.stop();
        unlock();
        log.info('ferry broker stopped');
      })();
      return closing;
    },
  };
}
