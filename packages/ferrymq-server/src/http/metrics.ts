/**
 * `/metrics` in the Prometheus text format (prom-client). Every broker, queue, job, worker,
 * storage and connection number comes from one {@link StatsSource} snapshot per scrape, the
 * same one `ferry stats` and `/v1/stats` show; only the HTTP request latency histogram is
 * recorded here, as requests finish, and prom-client's default process metrics (`process_*`,
 * `nodejs_*`: CPU, memory, event-loop lag, GC) are collected by prom-client itself.
 * docs/http.md lists every name. Message states are named as everywhere: ready, leased,
 * scheduled, dead.
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Metric,
} from 'prom-client';
import { type FerryStats, type HistogramSnapshot, JOB_STATUSES } from 'ferrymq/model';
import type { StatsSource } from '../core/stats.js';

/** Upper bounds of the HTTP request latency histogram, seconds. */
const HTTP_LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60,
];

const MS_PER_S = 1000;

/** A histogram whose buckets come ready-made from a snapshot (storage keeps them). */
class SnapshotHistogram {
  readonly type = 'histogram';
  private current: HistogramSnapshot | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Divides bounds and sum (ms → s). */
    private readonly scale: number,
  ) {}

  set(h: HistogramSnapshot): void {
    this.current = h;
  }

  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { value: number; labels: Record<string, string | number>; metricName: string }[];
  } {
    const h = this.current ?? { bounds: [], counts: [], sum: 0, count: 0 };
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] =
      h.bounds.map((b, i) => ({
        value: h.counts[i]!,
        labels: { le: b / this.scale },
        metricName: `${this.name}_bucket`,
      }));
    values.push({ value: h.count, labels: { le: '+Inf' }, metricName: `${this.name}_bucket` });
    values.push({ value: h.sum / this.scale, labels: {}, metricName: `${this.name}_sum` });
    values.push({ value: h.count, labels: {}, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }
}

export class GatewayMetrics {
  private readonly registry = new Registry();
  private readonly httpLatency: Histogram<'method' | 'route' | 'status_code'>;
  private readonly g: Record<string, Gauge<string>> = {};
  private readonly c: Record<string, Counter<string>> = {};
  private readonly h: Record<string, SnapshotHistogram> = {};
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly stats: StatsSource) {
    const r = [this.registry];
    this.httpLatency = new Histogram({
      name: 'ferry_http_request_duration_seconds',
      help: 'HTTP gateway request latency by method, route and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_LATENCY_BUCKETS_S,
      registers: r,
    });
    const gauge = (name: string, help: string, labelNames: string[] = []): void => {
      this.g[name] = new Gauge({ name, help, labelNames, registers: r });
    };
    const counter = (name: string, help: string, labelNames: string[] = []): void => {
      this.c[name] = new Counter({ name, help, labelNames, registers: r });
    };
    const hist = (name: string, help: string, scale: number): void => {
      const m = new SnapshotHistogram(name, help, scale);
      this.h[name] = m;
      this.registry.registerMetric(m as unknown as Metric);
    };
    gauge('ferry_uptime_seconds', 'Seconds since the broker started.');
    gauge('ferry_sessions', 'Open broker sessions.');
    gauge('ferry_consumers', 'Consumers across all sessions.');
    gauge('ferry_leases', 'Messages delivered and not yet settled.');
    gauge('ferry_queues', 'Queues.');
    gauge('ferry_connections', 'Open connections per dialect.', ['dialect']);
    const q = ['queue'];
    gauge('ferry_queue_depth', 'Live messages (ready + leased + scheduled).', q);
    gauge('ferry_queue_ready', 'Messages ready for delivery.', q);
    gauge('ferry_queue_leased', 'Messages delivered under a lease, not yet settled.', q);
    gauge('ferry_queue_scheduled', 'Messages waiting for their time (delay or retry).', q);
    gauge('ferry_queue_dead', 'Dead letters.', q);
    gauge('ferry_queue_bytes', 'Bytes of live messages.', q);
    gauge('ferry_queue_consumers', 'Consumers of the queue.', q);
    gauge('ferry_queue_oldest_age_seconds', 'Age of the oldest live message.', q);
    counter('ferry_queue_enqueued_total', 'Messages stored, since start.', q);
    counter('ferry_queue_acked_total', 'Messages acked, since start.', q);
    counter('ferry_queue_redelivered_total', 'Deliveries given back for another try.', q);
    gauge('ferry_queue_confirms_held', "Producers' confirms held by flow control now.", q);
    counter('ferry_queue_confirms_held_total', 'Confirms ever held by flow control.', q);
    counter('ferry_queue_dead_lettered_total', 'Messages moved to the dead letters.', q);
    counter('ferry_queue_expired_total', 'Messages dropped at their TTL.', q);
    gauge('ferry_jobs', 'Jobs by service and status (final ones until retention ends).', [
      'service',
      'status',
    ]);
    gauge('ferry_service_workers', 'Workers registered per service.', ['service']);
    gauge('ferry_workers', 'Registered workers per dialect.', ['protocol']);
    gauge('ferry_storage_size_bytes', 'Bytes the store takes on disk.');
    gauge('ferry_storage_low', '1 while free disk is below the floor (sends refused).');
    counter('ferry_storage_commits_total', 'Store commits (group commits).');
    counter('ferry_storage_operations_total', 'Calls applied in those commits.');
    counter('ferry_storage_fsyncs_total', 'fsyncs of the store.');
    counter('ferry_storage_sql_statements_total', 'SQL statements that read or write data.');
    counter(
      'ferry_storage_sql_control_statements_total',
      'Transaction statements (BEGIN, COMMIT, SAVEPOINT, RELEASE).',
    );
    hist(
      'ferry_storage_commit_duration_seconds',
      'Duration of each store commit (including fsync under sync=always).',
      MS_PER_S,
    );
    hist(
      'ferry_storage_commit_batch_operations',
      'Calls per store commit (group-commit batch size).',
      1,
    );
    hist(
      'ferry_storage_fsync_duration_seconds',
      'Duration of each separate WAL fsync (sync=batch:<ms>).',
      MS_PER_S,
    );
    const d = ['dialect'];
    counter('ferry_peer_invalid_frames_total', 'Frames that were not a valid message.', d);
    counter('ferry_peers_dropped_total', 'Peers dropped (ignored) for invalid frames.', d);
    counter('ferry_peer_ignored_frames_total', 'Messages discarded from dropped peers.', d);
    gauge('ferry_peers_dropped', 'Peers being ignored now.', d);
    counter('ferry_zmq_messages_received_total', 'ZeroMQ messages read from peers.', d);
    counter('ferry_zmq_messages_sent_total', 'ZeroMQ messages sent to peers.', d);
    gauge('ferry_process_resident_memory_bytes', 'Resident memory of the broker process.');
    gauge('ferry_process_heap_used_bytes', 'V8 heap in use.');
    // Event-loop lag, GC, memory, CPU, handles: prom-client keeps these itself.
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  observeRequest(method: string, route: string, status: number, elapsedMs: number): void {
    this.httpLatency.observe({ method, route, status_code: String(status) }, elapsedMs / MS_PER_S);
  }

  /** One scrape: a fresh snapshot, written into the metrics, rendered. Scrapes take turns. */
  render(): Promise<string> {
    const next = this.chain.then(async () => {
      this.fill(await this.stats.snapshot());
      return this.registry.metrics();
    });
    this.chain = next.catch(() => {});
    return next;
  }

  private fill(s: FerryStats): void {
    const g = (name: string): Gauge<string> => this.g[name]!;
    const c = (name: string): Counter<string> => this.c[name]!;
    for (const m of Object.values(this.g)) m.reset();
    for (const m of Object.values(this.c)) m.reset();
    const b = s.broker;
    g('ferry_uptime_seconds').set(b.uptimeMs / MS_PER_S);
    g('ferry_sessions').set(b.sessions);
    g('ferry_consumers').set(b.consumers);
    g('ferry_leases').set(b.leases);
    g('ferry_queues').set(b.queues);
    for (const [dialect, n] of Object.entries(s.connections)) {
      g('ferry_connections').set({ dialect }, n);
    }
    for (const q of s.queues) {
      const l = { queue: q.name };
      g('ferry_queue_depth').set(l, q.depth);
      g('ferry_queue_ready').set(l, q.ready);
      g('ferry_queue_leased').set(l, q.leased);
      g('ferry_queue_scheduled').set(l, q.scheduled);
      g('ferry_queue_dead').set(l, q.dead);
      g('ferry_queue_bytes').set(l, q.bytes);
      g('ferry_queue_consumers').set(l, q.consumers);
      g('ferry_queue_oldest_age_seconds').set(l, (q.oldestAgeMs ?? 0) / MS_PER_S);
      c('ferry_queue_enqueued_total').inc(l, q.enqueued);
      c('ferry_queue_acked_total').inc(l, q.acked);
      c('ferry_queue_redelivered_total').inc(l, q.redelivered);
      g('ferry_queue_confirms_held').set(l, q.confirmsHeld);
      c('ferry_queue_confirms_held_total').inc(l, q.confirmsHeldTotal);
      c('ferry_queue_dead_lettered_total').inc(l, q.deadLettered);
      c('ferry_queue_expired_total').inc(l, q.expired);
    }
    for (const svc of s.services) {
      for (const status of JOB_STATUSES) {
        g('ferry_jobs').set({ service: svc.name, status }, svc[status]);
      }
      g('ferry_service_workers').set({ service: svc.name }, svc.workers);
    }
    for (const [protocol, n] of Object.entries(s.workers.byProtocol)) {
      g('ferry_workers').set({ protocol }, n);
    }
    const st = b.storage;
    g('ferry_storage_size_bytes').set(st.sizeBytes);
    g('ferry_storage_low').set(b.storageLow ? 1 : 0);
    c('ferry_storage_commits_total').inc(st.commits);
    c('ferry_storage_operations_total').inc(st.operations);
    c('ferry_storage_fsyncs_total').inc(st.fsyncs);
    c('ferry_storage_sql_statements_total').inc(st.sqlStatements);
    c('ferry_storage_sql_control_statements_total').inc(st.sqlControlStatements);
    this.h['ferry_storage_commit_duration_seconds']!.set(st.commitMs);
    this.h['ferry_storage_commit_batch_operations']!.set(st.commitBatchOps);
    this.h['ferry_storage_fsync_duration_seconds']!.set(st.fsyncMs);
    for (const [dialect, p] of Object.entries(s.peers ?? {})) {
      c('ferry_peer_invalid_frames_total').inc({ dialect }, p.invalidFrames);
      c('ferry_peers_dropped_total').inc({ dialect }, p.peersDropped);
      c('ferry_peer_ignored_frames_total').inc({ dialect }, p.ignoredFrames);
      g('ferry_peers_dropped').set({ dialect }, p.droppedNow);
      c('ferry_zmq_messages_received_total').inc({ dialect }, p.messagesIn);
      c('ferry_zmq_messages_sent_total').inc({ dialect }, p.messagesOut);
    }
    const mem = process.memoryUsage();
    g('ferry_process_resident_memory_bytes').set(mem.rss);
    g('ferry_process_heap_used_bytes').set(mem.heapUsed);
  }

  close(): void {
    this.registry.clear();
  }
}
