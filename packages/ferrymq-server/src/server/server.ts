/**
 * The composition root: the broker is a list of components (lifecycle.ts), started in this
 * order: security (binds, keys, auth file), data-dir lock, disk watcher, store, core (broker, jobs, pub/sub, stats), the
 * dialects (ferry, then mdp, clone, pzq, zmws when on), the HTTP gateway.
 *
 * Ordering rule. A component may use anything listed before it, never after. So:
 * - start in list order (what a component needs is already up);
 * - stop by unwinding the one stack of started components in reverse, in two passes:
 *   1. drain, newest first: the gateway stops listening and finishes its requests, each
 *      dialect stops taking frames and ends its sessions, then the core finishes its store
 *      calls in flight, while every socket is still bound, so their replies still go out;
 *   2. close, newest first: sockets flush and unbind, the store closes, the disk watcher
 *      stops, the data folder is unlocked last (a second broker must not open a store that
 *      is still being written).
 * - a start that fails half-way unwinds the same stack (the failed component first: its
 *   drain and close cope with a partial start) and rethrows the original error; close()
 *   twice shares one unwinding.
 * Why two passes over one stack: a single reverse pass would unbind a dialect's socket
 * before the core behind it finished, dropping the answers to requests already taken.
 * fastify does the same: avvio runs onClose hooks last-registered-first (its close queue
 * unshifts), and Fastify's own server-close hook, registered after every plugin, runs first
 * and waits for requests in flight before any plugin releases its pool. nats-server's
 * Shutdown likewise flags shutdown and stops JetStream (the store) before it closes its
 * listeners and client connections. A new part (a PostgreSQL store, a security layer) is
 * one more component in `componentsOf`, at the place its dependencies dictate.
 *
 * Graceful shutdown (cli/main.ts): SIGINT/SIGTERM calls close(); a second signal or
 * FORCE_EXIT_AFTER_MS forces the exit.
 */
import { silentLogger, type Logger } from '../core/logger.js';
import type { Broker } from '../core/broker.js';
import type { JobServer } from '../core/jobs.js';
import type { PubSub } from '../core/pubsub.js';
import type { StatsSource } from '../core/stats.js';
import type { CloneDialect } from '../dialects/clone/clone-dialect.js';
import type { MdpDialect } from '../dialects/mdp/mdp-dialect.js';
import type { PzqDialect } from '../dialects/pzq/pzq-dialect.js';
import type { ZmwsDialect } from '../dialects/zmws/zmws-dialect.js';
import type { HttpGateway } from '../http/gateway.js';
import type { StatFs } from '../storage/sqlite/disk-floor.js';
import { formatSync, type FerryConfig } from './config.js';
import { CoreComponent } from './core-component.js';
import {
  DataDirLockComponent,
  DiskWatcherComponent,
  StoreComponent,
} from './data-dir-components.js';
import {
  CloneComponent,
  FerryComponent,
  MdpComponent,
  PzqComponent,
  ZmwsComponent,
  type DialectContext,
  type PzqEndpoints,
} from './dialect-components.js';
import { HttpComponent } from './http-component.js';
import { SecurityComponent } from './security-component.js';
import { applyLogFormat } from './logger.js';
import { packageVersion } from './package-version.js';
import { readinessProbe, type ServerPhase } from './readiness.js';
import {
  ComponentStack,
  connectionsOf,
  peerStatsOf,
  type Component,
  type LifecycleObserver,
} from './lifecycle.js';

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
  /** The broker's CURVE public key (Z85), when CURVE is on: clients need it. */
  readonly publicKey: string | undefined;
  /** Re-reads the auth file (SIGHUP); throws its coded error and keeps the old one if bad. */
  reloadAuth(): void;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /**
   * Told each time a component starts, fails to start, drains or closes, in that order: for
   * tests and tools that check the start and shutdown order.
   */
  onLifecycle?: LifecycleObserver;
  /**
   * Reads free space of the data folder for the free-disk floor (default: fs.statfsSync).
   * For tests that need a small disk without mounting one.
   */
  statfs?: StatFs;
}

/** The components of a broker for `config`, in start order, and the typed ones it reads. */
function componentsOf(
  config: FerryConfig,
  log: Logger,
  phase: () => ServerPhase,
  statfs: StatFs | undefined,
) {
  const list: Component[] = [];
  const security = new SecurityComponent(config, log);
  const disk = new DiskWatcherComponent(config.dataDir, config.minFreeDiskBytes, log, statfs);
  const store = new StoreComponent(config, disk.floor);
  const core = new CoreComponent({
    config,
    store,
    disk,
    logger: log,
    connections: () => connectionsOf(list),
    peers: () => peerStatsOf(list),
  });
  const ctx: DialectContext = { config, core, logger: log, security };
  const ferry = new FerryComponent(ctx);
  const mdp = config.mdp !== undefined ? new MdpComponent(ctx, config.mdp) : undefined;
  const clone = config.clone !== undefined ? new CloneComponent(ctx, config.clone) : undefined;
  const pzq = config.pzq ? new PzqComponent(ctx) : undefined;
  const zmws = config.zmws ? new ZmwsComponent(ctx) : undefined;
  const readiness = readinessProbe({
    dataDir: config.dataDir,
    phase,
    isStorageLow: disk.isLow,
    isBrokerClosing: () => (core.started ? core.parts.broker.isClosing : undefined),
  });
  const http =
    config.http !== undefined
      ? new HttpComponent({
          config,
          address: config.http,
          core,
          zmws,
          readiness,
          version: packageVersion(),
          logger: log,
          // The model in force, read per request: a SIGHUP reload reaches HTTP too.
          auth: () => security.model,
        })
      : undefined;
  const optional = [mdp, clone, pzq, zmws, http].filter((c) => c !== undefined);
  // Security first: a bad key or auth file, or an unprotected bind, stops the start at once.
  list.push(
    security,
    new DataDirLockComponent(config.dataDir),
    disk,
    store,
    core,
    ferry,
    ...optional,
  );
  return { list, security, core, ferry, mdp, clone, pzq, zmws, http };
}

export async function startServer(
  config: FerryConfig,
  options: StartOptions = {},
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  applyLogFormat(log, config.logFormat);
  let phase: ServerPhase = 'starting';
  const c = componentsOf(config, log, () => phase, options.statfs);
  const stack = new ComponentStack({ logger: log, onLifecycle: options.onLifecycle });
  await stack.start(c.list);
  phase = 'running';
  const { broker, jobs, pubsub, stats } = c.core.parts;
  const endpoint = c.ferry.endpoint!.endpoint;
  const mdpEndpoint = c.mdp?.endpoint?.endpoint;
  const cloneEndpoints = c.clone?.endpoints;
  const pzqEndpoints = c.pzq?.endpoints;
  const zmwsEndpoints = c.zmws?.endpoints;
  const gateway = c.http?.gateway;
  log.info('ferry broker started', {
    endpoint,
    ...(mdpEndpoint ? { mdp: mdpEndpoint } : {}),
    ...(cloneEndpoints ? { clone: cloneEndpoints.snapshot } : {}),
    ...(pzqEndpoints ? { pzq: pzqEndpoints } : {}),
    ...(zmwsEndpoints ? { zmws: zmwsEndpoints } : {}),
    ...(gateway ? { http: gateway.url } : {}),
    dataDir: config.dataDir,
    sync: formatSync(config.sync),
  });
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    broker,
    jobs,
    pubsub,
    mdpEndpoint,
    mdp: c.mdp?.dialect,
    cloneEndpoints,
    clone: c.clone?.dialect,
    pzqEndpoints,
    pzq: c.pzq?.dialect,
    zmwsEndpoints,
    zmws: c.zmws?.dialect,
    httpUrl: gateway?.url,
    http: gateway,
    stats,
    config,
    publicKey: c.security.publicKey,
    reloadAuth: () => c.security.reload(),
    close() {
      phase = 'stopping';
      closing ??= stack.close().then(() => log.info('ferry broker stopped'));
      return closing;
    },
  };
}
