/**
 * The composition root: data folder lock, SQLite store, core broker, Ferry dialect, ZeroMQ
 * endpoint. `close()` stops accepting, answers what is in flight, flushes, closes, unlocks.
 */
import fs from 'node:fs';
import { Broker } from '../core/broker.js';
import { JobServer } from '../core/jobs.js';
import { PubSub } from '../core/pubsub.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { CloneDialect } from '../dialects/clone/clone-dialect.js';
import { FerryDialect } from '../dialects/ferry/ferry-dialect.js';
import { MdpDialect } from '../dialects/mdp/mdp-dialect.js';
import { MMI_PREFIX } from '../dialects/mdp/mmi.js';
import { TitanicServices } from '../dialects/titanic/titanic-services.js';
import { SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { bindRouter } from '../transport/zmq-router.js';
import {
  bindCollector,
  bindPublisher,
  type CollectorEndpoint,
  type PublisherEndpoint,
} from '../transport/zmq-pubsub.js';
import type { ServerEndpoint } from '../transport/types.js';
import { defaultPolicyOf, formatSync, jobPolicyOf, type FerryConfig } from './config.js';
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
  readonly config: FerryConfig;
  close(): Promise<void>;
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
    const d = new FerryDialect(b, (peer, frames) => endpoint?.send(peer, frames), {
      jobs,
      pubsub,
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
  } catch (err) {
    clone?.close();
    await cloneCollector?.close();
    await cloneSnapshot?.close();
    await clonePublisher?.close();
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
  log.info('ferry broker started', {
    endpoint: ep.endpoint,
    ...(mep ? { mdp: mep.endpoint } : {}),
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
    config,
    close() {
      closing ??= (async () => {
        d.close();
        m?.close();
        cl?.close();
        await clColl?.close();
        await clSnap?.close();
        await clPub?.close();
        ps.close();
        await j.close();
        await b.close();
        await ep.close();
        await mep?.close();
        disk.stop();
        unlock();
        log.info('ferry broker stopped');
      })();
      return closing;
    },
  };
}
