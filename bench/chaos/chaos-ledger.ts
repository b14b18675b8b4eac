/**
 * What the chaos tool (chaos.ts) records for one kind of work — queue messages, durable jobs,
 * durable pub/sub deliveries — and the audit it prints: lost, duplicated and stuck items.
 * An item is "accepted" once the broker acknowledged it to its producer; from then on it must
 * be delivered (a message, a publish) or run to `done` (a job) at least once.
 */

export type ChaosKind = 'queue' | 'jobs' | 'pubsub';

/** One kind's audit line. */
export interface AuditRow {
  kind: ChaosKind;
  /** Acknowledged to the producer by the broker. */
  accepted: number;
  /** Accepted and delivered (run, for jobs) at least once. */
  delivered: number;
  /** Accepted, never delivered, and no longer held by the broker. */
  lost: number;
  /** Accepted, never delivered, still held by the broker when the drain ended. */
  stuck: number;
  /** Delivered more than once (at least once allows it). */
  duplicated: number;
  /** Of those: the ack (or completion) of an earlier delivery was in flight at a kill. */
  duplicatedSettleInFlight: number;
  /**
   * Of those: stored twice under two ids — the producer's request was re-sent after a kill
   * and its first copy had been stored (a publish or submit carries no idempotency key).
   */
  duplicatedStoredTwice: number;
  /** Deliveries in total (≥ delivered). */
  deliveries: number;
}

/** The bookkeeping of one kind. Keys are the items' bodies (unique per run). */
export class Ledger {
  readonly accepted = new Set<string>();
  /** Deliveries per item. */
  readonly deliveries = new Map<string, number>();
  /** The broker's ids an item was delivered under (more than one: it was stored twice). */
  private readonly ids = new Map<string, Set<string>>();
  /** Items whose ack (completion) was sent and not yet answered. */
  private readonly settling = new Set<string>();
  /** Items whose ack (completion) was in flight at some kill. */
  private readonly settleInFlightAtKill = new Set<string>();
  /** Accepted items not delivered yet. */
  private readonly undelivered = new Set<string>();

  constructor(readonly kind: ChaosKind) {}

  accept(item: string): void {
    this.accepted.add(item);
    // A delivery can come before the producer's reply.
    if (!this.deliveries.has(item)) this.undelivered.add(item);
  }

  /** `item` was delivered (a job: run) under the broker's `id`. */
  deliver(item: string, id: string): void {
    this.deliveries.set(item, (this.deliveries.get(item) ?? 0) + 1);
    let ids = this.ids.get(item);
    if (!ids) this.ids.set(item, (ids = new Set()));
    ids.add(id);
    this.undelivered.delete(item);
  }

  /** The ack (or completion) of `item` is on its way: call `done` when it is answered. */
  settle(item: string, answered: Promise<unknown>): void {
    this.settling.add(item);
    const done = (): void => {
      this.settling.delete(item);
    };
    answered.then(done, done);
  }

  /** The broker is being killed now: note what was in flight. */
  noteKill(): void {
    for (const item of this.settling) this.settleInFlightAtKill.add(item);
  }

  /** How many accepted items were not delivered yet. */
  missingCount(): number {
    return this.undelivered.size;
  }

  /** `held` = how many of the missing items the broker still holds (the rest are lost). */
  audit(held: number): AuditRow {
    const missing = this.undelivered.size;
    const stuck = Math.min(missing, Math.max(0, held));
    let duplicated = 0;
    let duplicatedSettleInFlight = 0;
    let duplicatedStoredTwice = 0;
    let deliveries = 0;
    for (const [item, n] of this.deliveries) {
      deliveries += n;
      if (n > 1) {
        duplicated++;
        if ((this.ids.get(item)?.size ?? 0) > 1) duplicatedStoredTwice++;
        else if (this.settleInFlightAtKill.has(item)) duplicatedSettleInFlight++;
      }
    }
    return {
      kind: this.kind,
      accepted: this.accepted.size,
      delivered: this.accepted.size - missing,
      lost: missing - stuck,
      stuck,
      duplicated,
      duplicatedSettleInFlight,
      duplicatedStoredTwice,
      deliveries,
    };
  }
}

const COLUMNS: { title: string; value: (r: AuditRow) => string }[] = [
  { title: 'kind', value: (r) => r.kind },
  { title: 'accepted', value: (r) => String(r.accepted) },
  { title: 'delivered', value: (r) => String(r.delivered) },
  { title: 'lost', value: (r) => String(r.lost) },
  { title: 'stuck', value: (r) => String(r.stuck) },
  { title: 'duplicated', value: (r) => String(r.duplicated) },
  { title: 'dup. ack in flight', value: (r) => String(r.duplicatedSettleInFlight) },
  { title: 'dup. stored twice', value: (r) => String(r.duplicatedStoredTwice) },
  { title: 'deliveries', value: (r) => String(r.deliveries) },
];

/** The audit as a Markdown table (readable in a terminal, pasteable into the docs). */
export function formatAudit(rows: AuditRow[]): string {
  const cells = [COLUMNS.map((c) => c.title), ...rows.map((r) => COLUMNS.map((c) => c.value(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  const line = (parts: string[]): string =>
    `| ${parts.map((p, i) => (i === 0 ? p.padEnd(widths[i]!) : p.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

/** Loss or stuck items fail the run; duplicates do not (delivery is at least once). */
export function auditFailed(rows: AuditRow[]): boolean {
  return rows.some((r) => r.lost > 0 || r.stuck > 0);
}
