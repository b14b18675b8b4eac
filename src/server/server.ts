/**
 * The composition root: data folder lock, SQLite store, core broker, Ferry dialect, ZeroMQ
 * endpoint. `close()` stops accepting, answers what is in flight, flushes, closes, unlocks.
 */
import fs from 'node:fs';
import { Broker } from '../core/broker.js';
import { JobServer } from '../core/jobs.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { FerryDialect } from '../dialects/ferry/ferry-dialect.js';
import { MdpDialect } from '../dialects/mdp/mdp-dialect.js';
import { MMI_PREFIX } from '../dialects/mdp/mmi.js';
import { TitanicServices } from '../dialects/titanic/titanic-services.js';
import { startGateway, type HttpGateway } from '../http/gateway.js';
import { StatsSource } from '../core/stats.js';
import { SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { bindRouter } from '../transport/zmq-router.js';
import type { ServerEndpoint } from '../transport/types.js';
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

export interface RunningServer {
  /** The bound endpoint, resolved (a `*` port becomes the real one). */
  readonly endpoint: string;
  readonly broker: Broker;
  readonly jobs: JobServer;
  /** The bound Majordomo endpoint (MDP, MMI, Titanic), when `mdp` is configured. */
  readonly mdpEndpoint: string | undefined;
  /** The Majordomo dialect, when `mdp` is configured (its counters: for stats and tests). */
  readonly mdp: MdpDialect | undefined;
  /** The HTTP gateway's URL (`http://host:port`, real port), when `http` is configured. */
  readonly httpUrl: string | undefined;
  /** The running HTTP gateway, when `http` is configured. */
  readonly http: HttpGateway | undefined;
  /** Every number of stats, /metrics and the dashboard (one source). */
  readonly stats: StatsSource;
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
  let endpoint: ServerEndpoint | undefined;
  let dialect: FerryDialect | undefined;
  let mdp: MdpDialect | undefined;
  let mdpEndpoint: ServerEndpoint | undefined;
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
    const b = broker;
    stats = new StatsSource({
      broker: b,
      jobs,
      connections: () => ({
        ferry: dialect?.connections ?? 0,
        ...(mdp ? { mdp: mdp.workerCount } : {}),
        ...(gateway ? { http: gateway.connections } : {}),
      }),
    });
    const d = new FerryDialect(b, (peer, frames) => endpoint?.send(peer, frames), {
      jobs,
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
    if (config.http !== undefined) {
      const { host, port } = splitHttpAddress(config.http);
      gateway = await startGateway({
        broker: b,
        jobs,
        stats,
        host,
        port,
        bodyLimitBytes: config.httpBodyLimitBytes,
        logger: log,
      });
    }
  } catch (err) {
    await gateway?.close();
    mdp?.close();
    await mdpEndpoint?.close();
    await endpoint?.close();
    dialect?.close();
    await jobs?.close().catch(() => {});
    await broker?.close().catch(() => {});
    disk.stop();
    unlock();
    throw err;
  }
  const b = broker;
  const j = jobs;
  const ep = endpoint;
  const d = dialect;
  const m = mdp;
  const mep = mdpEndpoint;
  const gw = gateway;
  const st = stats;
  log.info('ferry broker started', {
    endpoint: ep.endpoint,
    ...(mep ? { mdp: mep.endpoint } : {}),
    ...(gw ? { http: gw.url } : {}),
    dataDir: config.dataDir,
    sync: formatSync(config.sync),
  });
  let closing: Promise<void> | undefined;
  return {
    endpoint: ep.endpoint,
    broker: b,
    jobs: j,
    mdpEndpoint: mep?.endpoint,
    mdp: m,
    httpUrl: gw?.url,
    http: gw,
    stats: st,
    config,
    close() {
      closing ??= (async () => {
        await gw?.close();
        d.close();
        m?.close();
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
