/**
 * The closer stack: what the broker is made of (components) and the one place that starts
 * and closes them. Components start in list order; shutdown unwinds the same stack twice in
 * reverse (every drain(), then every close()); server.ts's first comment says why.
 */
import type { PeerGuardStats } from 'ferrymq/model';
import type { Logger } from '../core/logger.js';

/** One part of a running broker: the store, the core, a dialect, the HTTP gateway, … */
export interface Component {
  /** Short and stable (`store`, `core`, `ferry`, `http`, …): logs and lifecycle events. */
  readonly name: string;
  /**
   * Takes what the component needs (files, sockets, timers). It may use every component
   * before it in the list. If it throws, it is still drained and closed (first), so both
   * must cope with a partial start.
   */
  start(): Promise<void>;
  /**
   * Stops taking new work and finishes what is in flight, while every component is still
   * open (its replies can still go out). Optional: most components have nothing to drain.
   */
  drain?(): Promise<void>;
  /** Releases what start() took. Safe after a partial start. Called once. */
  close(): Promise<void>;
  /** Open connections (or peers it tracks) for stats, keyed by `name`; undefined: none. */
  connections?(): number | undefined;
  /** What its endpoints' peer guards counted, for stats; undefined: no guarded endpoint. */
  peerStats?(): PeerGuardStats | undefined;
}

/** What happened to a component: for tests and tools watching the order. */
export interface LifecycleEvent {
  component: string;
  step: 'started' | 'start-failed' | 'drained' | 'drain-failed' | 'closed' | 'close-failed';
  /** The error, for the `…-failed` steps. */
  error?: unknown;
}

export type LifecycleObserver = (event: LifecycleEvent) => void;

export interface ComponentStackOptions {
  logger: Logger;
  onLifecycle?: LifecycleObserver | undefined;
}

/** Starts components in order and unwinds exactly those it started, in reverse, once. */
export class ComponentStack {
  /** Every component whose start() was called, in that order (a failed one last). */
  private readonly stack: Component[] = [];
  private closing: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly observe: LifecycleObserver;

  constructor(options: ComponentStackOptions) {
    this.log = options.logger;
    this.observe = options.onLifecycle ?? (() => {});
  }

  /**
   * Starts each component in order. When one fails, everything on the stack (the failed one
   * first) is drained and closed in reverse, and the original error is thrown.
   */
  async start(components: readonly Component[]): Promise<void> {
    for (const c of components) {
      this.stack.push(c);
      try {
        await c.start();
      } catch (err) {
        this.observe({ component: c.name, step: 'start-failed', error: err });
        // The start error is the one that matters; a close error here is only logged.
        await this.close().catch(() => {});
        throw err;
      }
      this.observe({ component: c.name, step: 'started' });
    }
  }

  /** Drains then closes every started component in reverse order. Later calls share it. */
  close(): Promise<void> {
    this.closing ??= this.unwind();
    return this.closing;
  }

  /** Both passes run to the end whatever fails; the first failure is thrown after. */
  private async unwind(): Promise<void> {
    const reversed = [...this.stack].reverse();
    const failures: unknown[] = [];
    for (const c of reversed) {
      if (c.drain) await this.step(c, () => c.drain!(), 'drained', failures);
    }
    for (const c of reversed) await this.step(c, () => c.close(), 'closed', failures);
    if (failures.length > 0) throw failures[0];
  }

  private async step(
    c: Component,
    run: () => Promise<void>,
    done: 'drained' | 'closed',
    failures: unknown[],
  ): Promise<void> {
    try {
      await run();
      this.observe({ component: c.name, step: done });
    } catch (err) {
      failures.push(err);
      const step = done === 'drained' ? 'drain-failed' : 'close-failed';
      this.log.warn(`${c.name}: ${step}`, { err: String(err) });
      this.observe({ component: c.name, step, error: err });
    }
  }
}

/** Connections per component that counts them, in list order (the stats `connections` row). */
/** The peer guard counters of every component that has some, keyed by name. */
export function peerStatsOf(components: readonly Component[]): Record<string, PeerGuardStats> {
  const out: Record<string, PeerGuardStats> = {};
  for (const c of components) {
    const s = c.peerStats?.();
    if (s !== undefined) out[c.name] = s;
  }
  return out;
}

export function connectionsOf(components: readonly Component[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of components) {
    const n = c.connections?.();
    if (n !== undefined) out[c.name] = n;
  }
  return out;
}
