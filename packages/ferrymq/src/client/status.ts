/** What a client reports about itself: its status events and its counters. */
import type { Command } from '../protocol/codec.js';

/** Requests that settle a lease: of a delivered message, or of a worker's job. */
export type SettleCommand = Extract<
  Command,
  'ACK' | 'NACK' | 'EXTEND' | 'COMPLETE' | 'FAIL' | 'JOB_EXTEND'
>;

export type ClientStatus =
  | { type: 'connected'; endpoint: string; session: string }
  | { type: 'disconnected'; endpoint: string }
  | { type: 'reconnected'; endpoint: string; session: string; resent: number }
  /**
   * Settling found the lease gone (the broker restarted, the session was replaced, the ack
   * timeout passed): the message or job was or will be delivered again.
   */
  | { type: 'lease-lost'; command: SettleCommand; id: string }
  | { type: 'closed' };

/** What a client counted since it connected (`client.counters`). */
export interface ClientCounters {
  /** Settles (acks, nacks, extends, job results and failures) that found their lease gone. */
  leasesLost: number;
  /** New sessions after the first (broker restarts, failovers, sessions the broker dropped). */
  reconnects: number;
  /** Requests the broker refused with SHUTTING_DOWN, held and sent again after reconnecting. */
  retriedAfterShutdown: number;
}
