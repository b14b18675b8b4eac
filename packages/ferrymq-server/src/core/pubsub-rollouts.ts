/**
 * Confirmations and rollouts of retained values: nodes confirm the versions they hold; a
 * rollout publishes a retained value and waits until the nodes have confirmed it (or its
 * timeout); the status of a pattern lists each topic's version and each node's. Used by
 * {@link PubSub} (pubsub.ts).
 */
import { FerryError, type Headers, type RolloutOutcome, type TopicStatus } from 'ferrymq/model';
import type { ConfirmationRow, PubSubStorage } from '../storage/types.js';
import type { Clock } from './clock.js';
import { checkNodeName, positiveMs } from './pubsub-types.js';
import { checkTopic, matches, parsePattern, scanPrefix } from './topics.js';

const DEFAULT_ROLLOUT_TIMEOUT_MS = 30_000;
const MAX_ROLLOUT_TIMEOUT_MS = 24 * 3_600_000;
const MAX_ROLLOUT_NODES = 10_000;

export interface RolloutOptions {
  /** Nodes that must confirm; default: every durable subscription whose pattern matches. */
  nodes?: string[] | undefined;
  timeoutMs?: number | undefined;
  ttlMs?: number | undefined;
  headers?: Headers | undefined;
}

export interface RolloutsOptions {
  storage: PubSubStorage;
  clock: Clock;
  /** Publishes the retained value; resolves with its sequence number once stored. */
  publishRetained: (
    topic: string,
    frames: Buffer[],
    options: { ttlMs: number | undefined; headers: Headers | undefined },
  ) => Promise<{ seq: number }>;
  /** The nodes a rollout waits for by default: the durable subscriptions matching the topic. */
  defaultNodes: (topic: string) => string[];
}

interface RolloutWaiter {
  topic: string;
  seq: number;
  pending: Set<string>;
  confirmed: string[];
  finish: () => void;
}

export class Rollouts {
  private readonly storage: PubSubStorage;
  private readonly clock: Clock;
  private readonly publishRetained: RolloutsOptions['publishRetained'];
  private readonly defaultNodes: (topic: string) => string[];
  private readonly waiters = new Map<string, Set<RolloutWaiter>>();

  constructor(options: RolloutsOptions) {
    this.storage = options.storage;
    this.clock = options.clock;
    this.publishRetained = options.publishRetained;
    this.defaultNodes = options.defaultNodes;
  }

  /** Records that `node` holds these topics at these versions. */
  async confirm(node: string, items: { topic: string; seq: number }[]): Promise<void> {
    checkNodeName(node);
    const now = this.clock.now();
    const rows: ConfirmationRow[] = items.map((it) => {
      checkTopic(it.topic);
      if (!Number.isInteger(it.seq) || it.seq < 1) {
        throw new FerryError('BAD_ARGUMENTS', 'seq must be an integer ≥ 1');
      }
      return { node, topic: it.topic, seq: it.seq, at: now };
    });
    if (rows.length === 0) return;
    await this.storage.confirm(rows);
    for (const r of rows) {
      const set = this.waiters.get(r.topic);
      if (!set) continue;
      for (const w of [...set]) {
        if (r.seq >= w.seq && w.pending.delete(node)) {
          w.confirmed.push(node);
          if (w.pending.size === 0) w.finish();
        }
      }
    }
  }

  /**
   * Publishes a retained update and waits until every node has confirmed it (or the timeout):
   * resolves with who has and who has not.
   */
  async rollout(
    topic: string,
    frames: Buffer[],
    options: RolloutOptions = {},
  ): Promise<RolloutOutcome> {
    checkTopic(topic);
    const timeoutMs =
      positiveMs(options.timeoutMs, 'timeoutMs', MAX_ROLLOUT_TIMEOUT_MS) ??
      DEFAULT_ROLLOUT_TIMEOUT_MS;
    let nodes: string[];
    if (options.nodes !== undefined) {
      if (!Array.isArray(options.nodes) || options.nodes.length > MAX_ROLLOUT_NODES) {
        throw new FerryError('BAD_ARGUMENTS', `nodes must be an array of ≤ ${MAX_ROLLOUT_NODES}`);
      }
      nodes = [...new Set(options.nodes.map((n) => checkNodeName(n)))];
    } else {
      nodes = this.defaultNodes(topic);
    }
    const waiter: RolloutWaiter = {
      topic,
      seq: Number.MAX_SAFE_INTEGER, // set once the publish has its number
      pending: new Set(nodes),
      confirmed: [],
      finish: () => {},
    };
    let set = this.waiters.get(topic);
    if (!set) this.waiters.set(topic, (set = new Set()));
    set.add(waiter);
    const unregister = (): void => {
      set.delete(waiter);
      if (set.size === 0 && this.waiters.get(topic) === set) this.waiters.delete(topic);
    };
    try {
      const { seq } = await this.publishRetained(topic, frames, {
        ttlMs: options.ttlMs,
        headers: options.headers,
      });
      waiter.seq = seq;
      // A node may have confirmed between the commit and now: read what is stored.
      if (waiter.pending.size > 0) {
        for (const c of await this.storage.confirmations(topic)) {
          if (c.topic === topic && c.seq >= seq && waiter.pending.delete(c.node)) {
            waiter.confirmed.push(c.node);
          }
        }
      }
      if (waiter.pending.size > 0) {
        await new Promise<void>((resolve) => {
          const cancel = this.clock.setTimer(resolve, timeoutMs);
          waiter.finish = () => {
            cancel();
            resolve();
          };
        });
      }
      return {
        topic,
        seq,
        complete: waiter.pending.size === 0,
        confirmed: [...waiter.confirmed].sort(),
        pending: [...waiter.pending].sort(),
      };
    } finally {
      unregister();
    }
  }

  /** Per retained topic matching the pattern: its version and the version each node holds. */
  async status(pattern: string): Promise<TopicStatus[]> {
    const p = parsePattern(pattern);
    const prefix = scanPrefix(p);
    const [rows, confirms] = await Promise.all([
      this.storage.retained(prefix, this.clock.now()),
      this.storage.confirmations(prefix),
    ]);
    const byTopic = new Map<string, TopicStatus>();
    for (const r of rows) {
      if (matches(p, r.topic)) byTopic.set(r.topic, { topic: r.topic, seq: r.seq, nodes: [] });
    }
    for (const c of confirms) {
      if (!matches(p, c.topic)) continue;
      let t = byTopic.get(c.topic);
      if (!t) byTopic.set(c.topic, (t = { topic: c.topic, seq: null, nodes: [] }));
      t.nodes.push({
        node: c.node,
        seq: c.seq,
        at: c.at,
        current: t.seq !== null && c.seq >= t.seq,
      });
    }
    return [...byTopic.values()].sort((a, b) => (a.topic < b.topic ? -1 : 1));
  }

  /** Ends every rollout waiting now (with what it has). */
  finishAll(): void {
    for (const set of this.waiters.values()) for (const w of set) w.finish();
  }
}
