/**
 * One snapshot of every number an operator looks at: broker and storage counters, per-queue
 * stats, job counts per service and status, workers, connections per dialect. The Ferry
 * protocol's STATS reply (what `ferry stats` prints), the HTTP gateway's `/v1/stats`, the
 * dashboard and `/metrics` all read it, so they always agree.
 */
import type {
  ClusterNode,
  FerryStats,
  PeerGuardStats,
  PubSubStats,
  WorkerCounts,
} from 'ferrymq/model';
import type { Broker } from './broker.js';
import type { JobApi } from './job-types.js';

export interface StatsSourceOptions {
  broker: Broker;
  jobs?: JobApi | undefined;
  /** Open connections per dialect, read at snapshot time. */
  connections?: (() => Record<string, number>) | undefined;
  pubsub?: { stats(): PubSubStats } | undefined;
  /** Peer guard counters per dialect, read at snapshot time. */
  peers?: (() => Record<string, PeerGuardStats>) | undefined;
  /** Brokers sharing the store (a shared store only), read at snapshot time. */
  nodes?: (() => Promise<ClusterNode[]>) | undefined;
}

export class StatsSource {
  private readonly broker: Broker;
  private readonly jobs: JobApi | undefined;
  private readonly connections: () => Record<string, number>;
  private readonly pubsub: { stats(): PubSubStats } | undefined;
  private readonly peers: (() => Record<string, PeerGuardStats>) | undefined;
  private readonly nodes: (() => Promise<ClusterNode[]>) | undefined;

  constructor(options: StatsSourceOptions) {
    this.broker = options.broker;
    this.jobs = options.jobs;
    this.connections = options.connections ?? (() => ({}));
    this.pubsub = options.pubsub;
    this.peers = options.peers;
    this.nodes = options.nodes;
  }

  /** Every number, now. With `queue`, only that queue's stats (QUEUE_NOT_FOUND if none). */
  async snapshot(queue?: string): Promise<FerryStats> {
    const connections = this.connections();
    let total = 0;
    for (const n of Object.values(connections)) total += n;
    const [queues, services, nodes] = await Promise.all([
      queue === undefined
        ? this.broker.allQueueStats()
        : this.broker.queueStats(queue).then((q) => [q]),
      this.jobs ? this.jobs.services() : Promise.resolve([]),
      this.nodes ? this.nodes() : Promise.resolve(undefined),
    ]);
    const workers: WorkerCounts = { total: 0, byProtocol: {}, byService: {} };
    for (const w of this.jobs?.workers() ?? []) {
      workers.total++;
      workers.byProtocol[w.protocol] = (workers.byProtocol[w.protocol] ?? 0) + 1;
      for (const s of w.services) workers.byService[s] = (workers.byService[s] ?? 0) + 1;
    }
    return {
      broker: { ...this.broker.stats(), connections: total },
      connections,
      queues,
      services,
      workers,
      ...(this.pubsub ? { pubsub: this.pubsub.stats() } : {}),
      ...(this.peers ? { peers: this.peers() } : {}),
      ...(nodes ? { cluster: { nodes } } : {}),
    };
  }
}
