/**
 * The core as one component: the broker (queues), the job server, pub/sub and the stats
 * source every dialect and the gateway read. No sockets: the dialects started after it
 * carry its traffic, and it drains before they close so its last replies still go out.
 */
import { Broker } from '../core/broker.js';
import type { PeerGuardStats } from 'ferrymq/model';
import { JobServer } from '../core/jobs.js';
import type { Logger } from '../core/logger.js';
import { PubSub } from '../core/pubsub.js';
import { StatsSource } from '../core/stats.js';
import { defaultPolicyOf, jobPolicyOf, type FerryConfig } from './config.js';
import type { DiskWatcherComponent, StoreComponent } from './data-dir-components.js';
import type { Component } from './lifecycle.js';

/** What the core is made of, once started. */
export interface CoreParts {
  readonly broker: Broker;
  readonly jobs: JobServer;
  readonly pubsub: PubSub;
  readonly stats: StatsSource;
}

export interface CoreComponentOptions {
  config: FerryConfig;
  store: StoreComponent;
  disk: DiskWatcherComponent;
  logger: Logger;
  /** Open connections per dialect, read at each stats snapshot. */
  connections: () => Record<string, number>;
  /** Peer guard counters per dialect, read at each stats snapshot. */
  peers?: () => Record<string, PeerGuardStats>;
}

export class CoreComponent implements Component {
  readonly name = 'core';
  private broker: Broker | undefined;
  private jobs: JobServer | undefined;
  private pubsub: PubSub | undefined;
  private startedParts: CoreParts | undefined;

  constructor(private readonly options: CoreComponentOptions) {}

  /** True once start() finished (parts can be read). */
  get started(): boolean {
    return this.startedParts !== undefined;
  }

  /** The broker, job server, pub/sub and stats, once started. */
  get parts(): CoreParts {
    if (!this.startedParts) throw new Error('the core is not started');
    return this.startedParts;
  }

  async start(): Promise<void> {
    const { config, logger: log, disk } = this.options;
    const storage = this.options.store.storage;
    const broker = await Broker.open({
      storage,
      logger: log,
      defaultPolicy: defaultPolicyOf(config),
      queuePolicies: config.queues,
      limits: {
        maxQueues: config.maxQueues,
        maxMessageBytes: config.maxMessageBytes,
        maxPrefetch: config.maxPrefetch,
        consumerMaxBytes: config.consumerMaxBytes,
        maxInflightBytes: config.maxInflightBytes,
        flowBacklogFactor: config.flowBacklogFactor,
      },
      isStorageLow: disk.isLow,
    });
    this.broker = broker;
    const jobs = await JobServer.open({
      storage: storage.jobs,
      logger: log,
      defaultPolicy: jobPolicyOf(config),
      maxParamsBytes: config.maxMessageBytes,
      isStorageLow: disk.isLow,
      recovered: broker.recoveredJobs,
      shared: storage.shared,
    });
    // Wake-ups from other brokers sharing the store (a PostgreSQL store).
    storage.watch((changes) => {
      broker.onRemote(changes);
      jobs.onRemote(changes);
      // Opened below; notices before that are covered by its first read of the store.
      this.pubsub?.onRemote(changes);
    });
    this.jobs = jobs;
    const pubsub = await PubSub.open({
      storage: storage.pubsub,
      broker,
      logger: log,
      liveWindow: config.liveWindow,
      liveWindowBytes: config.liveWindowBytes,
    });
    this.pubsub = pubsub;
    const stats = new StatsSource({
      broker,
      jobs,
      pubsub,
      connections: this.options.connections,
      peers: this.options.peers,
      nodes: storage.shared ? () => storage.nodes() : undefined,
    });
    this.startedParts = { broker, jobs, pubsub, stats };
  }

  /**
   * Ends subscriptions, fails waiting transient jobs, waits for the store calls in flight
   * (their replies go out through the dialects' sockets, still bound) and closes the store.
   */
  async drain(): Promise<void> {
    this.pubsub?.close();
    await this.jobs?.close();
    await this.broker?.close();
  }

  async close(): Promise<void> {
    // Everything was released when draining: the core holds no socket, file or timer now.
  }
}
