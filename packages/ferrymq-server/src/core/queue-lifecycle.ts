/**
 * A queue's life as an operator drives it: deleting it (refused while it holds messages,
 * unless forced), pausing and resuming its deliveries, and changing its policy at runtime.
 * Pause and policy are kept in the store, so they survive a restart; a deleted queue is gone
 * from the store and from the stats.
 *
 * Precedence of a queue's policy: built-in defaults, then the config file's defaults, then
 * the config file's `queues.<name>`, then the values set at runtime (until reset).
 */
import {
  FerryError,
  policyChangesProblem,
  type QueuePolicy,
  type QueuePolicyChanges,
  type QueueSettings,
} from 'ferrymq/model';
import type { BrokerState } from './broker-state.js';
import type { DeleteQueueOptions, QueuePolicyInfo } from './broker-types.js';
import type { QueueDispatch } from './queue-dispatch.js';
import type { QueueState } from './queue-state.js';

export class QueueLifecycle {
  constructor(
    private readonly state: BrokerState,
    private readonly dispatch: QueueDispatch,
  ) {}

  /**
   * Deletes a queue. Without `force`, QUEUE_NOT_EMPTY while it holds any message (ready,
   * leased, scheduled, dead, or a send not yet committed). With `force` its messages go too.
   * Its consumers are cancelled with QUEUE_DELETED. Resolves once the delete is committed.
   */
  async deleteQueue(name: string, options: DeleteQueueOptions = {}): Promise<{ messages: number }> {
    if (options.force !== undefined && typeof options.force !== 'boolean') {
      throw new FerryError('BAD_ARGUMENTS', 'force must be true or false');
    }
    const q = this.state.requireQueue(name);
    const c = q.counts;
    const held = c.ready + c.leased + c.scheduled + c.dead + q.pendingCount;
    if (held > 0 && options.force !== true) {
      throw new FerryError(
        'QUEUE_NOT_EMPTY',
        `queue ${name} holds ${held} messages (ready ${c.ready}, leased ${c.leased}, ` +
          `scheduled ${c.scheduled}, dead ${c.dead}, being stored ${q.pendingCount}); ` +
          'delete with force to drop them',
      );
    }
    // From here on the name is free: a send or consume in a later call makes a new queue,
    // and its store calls come after this delete's, so it starts empty.
    this.state.queues.delete(name);
    this.dispatch.dropQueue(q, new FerryError('QUEUE_DELETED', `queue ${name} was deleted`));
    const out = await this.state.calls.track(this.state.storage.deleteQueue(name));
    this.state.log.info('queue deleted', { queue: name, messages: out.messages });
    return { messages: out.messages };
  }

  /** Stops deliveries (sends are still stored). Leases already out stay valid. */
  async pause(name: string): Promise<void> {
    const q = this.state.requireQueue(name);
    q.paused = true;
    await this.save(q);
  }

  /** Starts deliveries again. */
  async resume(name: string): Promise<void> {
    const q = this.state.requireQueue(name);
    q.paused = false;
    q.probe = true;
    await this.save(q);
    this.dispatch.pump(q);
  }

  /**
   * Changes a queue's runtime policy: `reset` first drops every runtime value, then each key
   * of `changes` is set (a number) or dropped (null). INVALID_POLICY for an unknown key or a
   * value out of bounds, with nothing changed. Applies at once; stored before it resolves.
   */
  async setPolicy(
    name: string,
    changes: QueuePolicyChanges = {},
    options: { reset?: boolean | undefined } = {},
  ): Promise<QueuePolicyInfo> {
    const problem = policyChangesProblem(changes);
    if (problem !== undefined) throw new FerryError('INVALID_POLICY', problem);
    if (options.reset !== undefined && typeof options.reset !== 'boolean') {
      throw new FerryError('BAD_ARGUMENTS', 'reset must be true or false');
    }
    const q = this.state.requireQueue(name);
    const next: Partial<QueuePolicy> = options.reset ? {} : { ...q.overrides };
    for (const [k, v] of Object.entries(changes) as [keyof QueuePolicy, number | null][]) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    const policy = this.state.effectivePolicy(name, next);
    if (policy.retryMaxMs < policy.retryBaseMs) {
      throw new FerryError(
        'INVALID_POLICY',
        `retryMaxMs (${policy.retryMaxMs}) must not be below retryBaseMs (${policy.retryBaseMs})`,
      );
    }
    q.overrides = next;
    q.policy = policy;
    await this.save(q);
    return this.policyInfo(name);
  }

  policyInfo(name: string): QueuePolicyInfo {
    const q = this.state.requireQueue(name);
    return { queue: name, policy: { ...q.policy }, overrides: { ...q.overrides } };
  }

  private save(q: QueueState): Promise<void> {
    const settings: QueueSettings = { paused: q.paused, overrides: { ...q.overrides } };
    return this.state.calls.track(this.state.storage.saveQueueSettings(q.name, settings));
  }
}
