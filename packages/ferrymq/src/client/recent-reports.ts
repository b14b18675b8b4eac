/**
 * Quiet job reports (COMPLETE, FAIL) kept for a moment after they were sent. The broker
 * answers a quiet report only when it fails, so one sent shortly before the broker went down
 * may never have been read. After a new HELLO the connection sends these again: a broker that
 * restarted ends, with them, the jobs it holds for its recovery grace (docs/semantics.md,
 * Restart); one that had read them answers LEASE_LOST, which is ignored for a repeat.
 *
 * Kept: the reports sent since one grace window before the broker was last heard from (it
 * answered later requests, so it read the earlier ones), at most REPORTS_KEPT_MAX of them and
 * REPORT_BYTES_KEPT_MAX bytes (the oldest go first).
 */
import type { FerryError } from '../model/errors.js';
import type { Command, Json } from '../protocol/codec.js';

const REPORTS_KEPT_MAX = 10_000;
const REPORT_BYTES_KEPT_MAX = 64 * 1024 * 1024;

export interface KeptReport {
  command: Command;
  args: Json;
  payload: Buffer[];
  /** Where its ERROR goes. */
  onError: (err: FerryError) => void;
  /** It went out (false: there was no session; it goes out after the next HELLO). */
  sent: boolean;
  sentAt: number;
  bytes: number;
}

export class RecentReports {
  private list: KeptReport[] = [];
  private bytes = 0;

  constructor(
    /** How long before the broker was last heard from a report is still kept. */
    private readonly windowMs: number,
  ) {}

  add(report: Omit<KeptReport, 'bytes'>, lastHeard: number): void {
    let bytes = 0;
    for (const f of report.payload) bytes += f.length;
    this.list.push({ ...report, bytes });
    this.bytes += bytes;
    const before = lastHeard - this.windowMs;
    while (
      this.list.length > 0 &&
      ((this.list[0]!.sent && this.list[0]!.sentAt < before) ||
        this.list.length > REPORTS_KEPT_MAX ||
        this.bytes > REPORT_BYTES_KEPT_MAX)
    ) {
      this.bytes -= this.list.shift()!.bytes;
    }
  }

  /** Every report kept, oldest first; forgets them. */
  take(): KeptReport[] {
    const out = this.list;
    this.list = [];
    this.bytes = 0;
    return out;
  }
}
