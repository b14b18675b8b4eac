/**
 * What is in flight and until when: message leases held by sessions, jobs running on workers.
 * Entries by id, each with a deadline and one holder; every holder keeps the set of entries it
 * holds (so closing a session or a worker finds its own without a scan). The table keeps the
 * two views in step and finds the entries past their deadline.
 */

/** Something that holds in-flight entries: a session (leases) or a worker (running jobs). */
export interface InflightHolder<E> {
  readonly held: Set<E>;
}

/** One in-flight entry. `deadline` is a Clock time in ms. */
export interface InflightEntry<H> {
  readonly id: string;
  readonly holder: H;
  deadline: number;
}

export class InflightTable<E extends InflightEntry<H>, H extends InflightHolder<E>> {
  private readonly byId = new Map<string, E>();

  get size(): number {
    return this.byId.size;
  }

  add(entry: E): void {
    this.byId.set(entry.id, entry);
    entry.holder.held.add(entry);
  }

  get(id: string): E | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The entry of `id` if `holder` holds it (ids of any other type find nothing). */
  getHeld(holder: H, id: unknown): E | undefined {
    if (typeof id !== 'string') return undefined;
    const entry = this.byId.get(id);
    return entry !== undefined && entry.holder === holder ? entry : undefined;
  }

  remove(entry: E): void {
    this.byId.delete(entry.id);
    entry.holder.held.delete(entry);
  }

  /** Moves the deadline to `until` if that is later (never earlier). */
  extend(entry: E, until: number): void {
    entry.deadline = Math.max(entry.deadline, until);
  }

  /** Entries whose deadline is at or before `now`, in insertion order (left in the table). */
  expired(now: number): E[] {
    const out: E[] = [];
    if (this.byId.size === 0) return out;
    for (const entry of this.byId.values()) if (entry.deadline <= now) out.push(entry);
    return out;
  }

  values(): IterableIterator<E> {
    return this.byId.values();
  }
}
