/**
 * One component per dialect: Ferry, Majordomo (MDP, MMI, Titanic), Clone, PZQ and ZMWS. Each
 * builds its dialect over the core and binds its sockets; drain() closes the dialect (no new
 * work, sessions ended, workers told), close() flushes and closes its sockets, in reverse of
 * binding.
 */
import path from 'node:path';
import type { PeerGuardStats } from 'ferrymq/model';
import type { FanOutEndpoint } from 'ferrymq/transport';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { CloneDialect } from '../dialects/clone/clone-dialect.js';
import { FerryDialect } from '../dialects/ferry/ferry-dialect.js';
import { MdpDialect } from '../dialects/mdp/mdp-dialect.js';
import { MMI_PREFIX } from '../dialects/mdp/mmi.js';
import { PzqDialect } from '../dialects/pzq/pzq-dialect.js';
import { TitanicServices } from '../dialects/titanic/titanic-services.js';
import { ZmwsDialect } from '../dialects/zmws/zmws-dialect.js';
import { bindFanOut } from '../transport/zmq-fan-out.js';
import {
  bindCollector,
  bindPublisher,
  type CollectorEndpoint,
  type PublisherEndpoint,
} from '../transport/zmq-pubsub.js';
import { bindRouter, type GuardedEndpoint } from '../transport/zmq-router.js';
import type { FerryConfig } from './config.js';
import type { CoreComponent } from './core-component.js';
import type { Component } from './lifecycle.js';
import type { SecurityComponent } from './security-component.js';

/** Extra bytes a frame may have over the largest message (protocol overhead). */
const FRAME_SLACK_BYTES = 64 * 1024;
/**
 * ZeroMQ drops the connection of a peer whose frame exceeds its max message size, silently:
 * the Ferry endpoint lets frames up to this many times the request limit through, so the
 * dialect answers them MESSAGE_TOO_LARGE (docs/operations.md "Limits").
 */
const OVERSIZE_ANSWER_FACTOR = 2;
/** Clone binds loopback only (its protocol has no authentication). */
const CLONE_HOST = '127.0.0.1';

/** Where the PZQ monitor binds when `pzqMonitor` is not set: an ipc socket in the data folder. */
function defaultPzqMonitor(dataDir: string): string {
  return `ipc://${path.join(path.resolve(dataDir), 'pzq-monitor')}`;
}

export interface PzqEndpoints {
  receive: string;
  send: string;
  monitor: string;
}

/** What every dialect component is built from. */
export interface DialectContext {
  config: FerryConfig;
  core: CoreComponent;
  logger: Logger;
  /** CURVE, session checks and allowlists for the endpoints (docs/security.md). */
  security: SecurityComponent;
}

/** The guard counters of a component's ROUTER endpoints, summed; undefined before binding. */
function sumPeerStats(endpoints: (GuardedEndpoint | undefined)[]): PeerGuardStats | undefined {
  const bound = endpoints.filter((e) => e !== undefined);
  if (bound.length === 0) return undefined;
  const sum: PeerGuardStats = {
    invalidFrames: 0,
    peersDropped: 0,
    ignoredFrames: 0,
    droppedNow: 0,
    messagesIn: 0,
    messagesOut: 0,
  };
  for (const e of bound) {
    const s = e.peerStats;
    sum.invalidFrames += s.invalidFrames;
    sum.peersDropped += s.peersDropped;
    sum.ignoredFrames += s.ignoredFrames;
    sum.droppedNow += s.droppedNow;
    sum.messagesIn += s.messagesIn;
    sum.messagesOut += s.messagesOut;
  }
  return sum;
}

function maxFrameBytesOf(config: FerryConfig): number {
  return config.maxMessageBytes + FRAME_SLACK_BYTES;
}

/** The Ferry protocol (FERRY01) on `bind`. */
export class FerryComponent implements Component {
  readonly name = 'ferry';
  dialect: FerryDialect | undefined;
  endpoint: GuardedEndpoint | undefined;

  constructor(private readonly ctx: DialectContext) {}

  async start(): Promise<void> {
    const { config, logger } = this.ctx;
    const { broker, jobs, pubsub, stats } = this.ctx.core.parts;
    const d = new FerryDialect(broker, (peer, frames) => this.endpoint?.send(peer, frames), {
      jobs,
      pubsub,
      stats,
      logger,
      heartbeatMs: config.heartbeatMs,
      maxBatchMessages: config.maxBatchMessages,
      maxRequestBytes: config.maxRequestBytes,
      access: this.ctx.security.ferryAccess(
        (id) => jobs.get(id).then((info) => info?.service),
        systemClock,
      ),
    });
    this.dialect = d;
    this.endpoint = await bindRouter(config.bind, (peer, frames) => d.handle(peer, frames), {
      maxFrameBytes:
        OVERSIZE_ANSWER_FACTOR * Math.max(config.maxMessageBytes, config.maxRequestBytes) +
        FRAME_SLACK_BYTES,
      security: this.ctx.security.ferryEndpoint(),
    });
  }

  async drain(): Promise<void> {
    this.dialect?.close();
  }

  async close(): Promise<void> {
    await this.endpoint?.close();
  }

  connections(): number {
    return this.dialect?.connections ?? 0;
  }

  peerStats(): PeerGuardStats | undefined {
    return sumPeerStats([this.endpoint]);
  }
}

/** Majordomo (MDP/0.1 + MMI, MDP/0.2) with Titanic's durable services, on `mdp`. */
export class MdpComponent implements Component {
  readonly name = 'mdp';
  dialect: MdpDialect | undefined;
  endpoint: GuardedEndpoint | undefined;

  constructor(
    private readonly ctx: DialectContext,
    private readonly bind: string,
  ) {}

  async start(): Promise<void> {
    const { config, logger } = this.ctx;
    const { jobs } = this.ctx.core.parts;
    const titanic = new TitanicServices(jobs, {
      logger,
      isReserved: (service) => service.startsWith(MMI_PREFIX),
    });
    const m = new MdpDialect(jobs, (peer, frames) => this.endpoint?.send(peer, frames), {
      logger,
      internal: [titanic],
    });
    this.dialect = m;
    this.endpoint = await bindRouter(this.bind, (peer, frames) => m.handle(peer, frames), {
      maxFrameBytes: maxFrameBytesOf(config),
      security: this.ctx.security.allowlistOf('mdpAllow'),
    });
  }

  async drain(): Promise<void> {
    // Tells workers to reconnect, through the endpoint still bound.
    this.dialect?.close();
  }

  async close(): Promise<void> {
    await this.endpoint?.close();
  }

  /** Workers registered: MDP has no client sessions to count. */
  connections(): number | undefined {
    return this.dialect?.workerCount;
  }

  peerStats(): PeerGuardStats | undefined {
    return sumPeerStats([this.endpoint]);
  }
}

/** Clone (12/CHP) on loopback: snapshot on P, publisher on P+1, collector on P+2. */
export class CloneComponent implements Component {
  readonly name = 'clone';
  dialect: CloneDialect | undefined;
  snapshot: GuardedEndpoint | undefined;
  publisher: PublisherEndpoint | undefined;
  collector: CollectorEndpoint | undefined;

  constructor(
    private readonly ctx: DialectContext,
    private readonly basePort: number,
  ) {}

  async start(): Promise<void> {
    const host = `tcp://${CLONE_HOST}`;
    const port = this.basePort;
    const pub = await bindPublisher(`${host}:${port + 1}`);
    this.publisher = pub;
    const cd = new CloneDialect(
      this.ctx.core.parts.pubsub,
      (peer, frames) => this.snapshot?.send(peer, frames),
      (frames) => pub.send(frames),
      { logger: this.ctx.logger },
    );
    this.dialect = cd;
    this.snapshot = await bindRouter(`${host}:${port}`, (peer, frames) =>
      cd.handleSnapshot(peer, frames),
    );
    this.collector = await bindCollector(
      `${host}:${port + 2}`,
      (frames) => cd.handleCollector(frames),
      { maxFrameBytes: maxFrameBytesOf(this.ctx.config) },
    );
  }

  async drain(): Promise<void> {
    this.dialect?.close();
  }

  async close(): Promise<void> {
    await this.collector?.close();
    await this.snapshot?.close();
    await this.publisher?.close();
  }

  peerStats(): PeerGuardStats | undefined {
    return sumPeerStats([this.snapshot]);
  }

  /** The three bound endpoints, once started. */
  get endpoints(): { snapshot: string; publisher: string; collector: string } | undefined {
    const { snapshot, publisher, collector } = this;
    return snapshot && publisher && collector
      ? {
          snapshot: snapshot.endpoint,
          publisher: publisher.endpoint,
          collector: collector.endpoint,
        }
      : undefined;
  }
}

/** PZQ: producers on `pzqReceive`, consumers on `pzqSend`, the monitor on `pzqMonitor`. */
export class PzqComponent implements Component {
  readonly name = 'pzq';
  dialect: PzqDialect | undefined;
  private receive: GuardedEndpoint | undefined;
  private send: FanOutEndpoint | undefined;
  private monitor: GuardedEndpoint | undefined;

  constructor(private readonly ctx: DialectContext) {}

  async start(): Promise<void> {
    const { config, logger } = this.ctx;
    const p = new PzqDialect(
      this.ctx.core.parts.broker,
      {
        toProducer: (peer, frames) => this.receive?.send(peer, frames),
        toConsumers: (frames) => this.send?.send(frames),
        toMonitor: (peer, frames) => this.monitor?.send(peer, frames),
      },
      { queue: config.pzqQueue, ackTimeoutUs: config.pzqAckTimeoutUs, logger },
    );
    this.dialect = p;
    const maxFrameBytes = maxFrameBytesOf(config);
    const security = this.ctx.security.allowlistOf('pzqAllow');
    this.send = await bindFanOut(
      config.pzqSend,
      {
        onMessage: (frames) => p.handleConsumer(frames),
        onPeers: (count) => {
          if (count === 0) p.takeBack(this.send?.takeQueued() ?? []);
          p.consumersChanged(count);
        },
      },
      { maxFrameBytes, security },
    );
    this.monitor = await bindRouter(
      config.pzqMonitor ?? defaultPzqMonitor(config.dataDir),
      (peer, frames) => p.handleMonitor(peer, frames),
      { maxFrameBytes: FRAME_SLACK_BYTES, security },
    );
    this.receive = await bindRouter(
      config.pzqReceive,
      (peer, frames) => p.handleProducer(peer, frames),
      { maxFrameBytes, security },
    );
  }

  async drain(): Promise<void> {
    this.dialect?.close();
  }

  async close(): Promise<void> {
    await this.receive?.close();
    await this.monitor?.close();
    await this.send?.close();
  }

  /** Consumers connected: PZQ has no client sessions to count. */
  connections(): number | undefined {
    return this.dialect?.connectedConsumers;
  }

  peerStats(): PeerGuardStats | undefined {
    return sumPeerStats([this.receive, this.monitor]);
  }

  /** The three bound endpoints, once started. */
  get endpoints(): PzqEndpoints | undefined {
    const { receive, send, monitor } = this;
    return receive && send && monitor
      ? { receive: receive.endpoint, send: send.endpoint, monitor: monitor.endpoint }
      : undefined;
  }
}

/** ZMWS 1.0: clients on `zmwsClient`, workers on `zmwsWorker`. */
export class ZmwsComponent implements Component {
  readonly name = 'zmws';
  dialect: ZmwsDialect | undefined;
  private client: GuardedEndpoint | undefined;
  private worker: GuardedEndpoint | undefined;

  constructor(private readonly ctx: DialectContext) {}

  async start(): Promise<void> {
    const { config, logger } = this.ctx;
    const z = new ZmwsDialect(
      this.ctx.core.parts.jobs,
      {
        toClient: (peer, frames) => this.client?.send(peer, frames),
        toWorker: (peer, frames) => this.worker?.send(peer, frames),
      },
      { logger, heartbeatIntervalMs: config.zmwsHeartbeatMs },
    );
    this.dialect = z;
    const maxFrameBytes = maxFrameBytesOf(config);
    const security = this.ctx.security.allowlistOf('zmwsAllow');
    this.worker = await bindRouter(
      config.zmwsWorker,
      (peer, frames) => z.handleWorker(peer, frames),
      { maxFrameBytes, security },
    );
    this.client = await bindRouter(
      config.zmwsClient,
      (peer, frames) => z.handleClient(peer, frames),
      { maxFrameBytes, security },
    );
  }

  async drain(): Promise<void> {
    this.dialect?.close();
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.worker?.close();
  }

  /** Workers registered: ZMWS clients hold no session to count. */
  connections(): number | undefined {
    return this.dialect?.workerCount;
  }

  peerStats(): PeerGuardStats | undefined {
    return sumPeerStats([this.client, this.worker]);
  }

  /** The two bound endpoints, once started. */
  get endpoints(): { client: string; worker: string } | undefined {
    const { client, worker } = this;
    return client && worker ? { client: client.endpoint, worker: worker.endpoint } : undefined;
  }
}
