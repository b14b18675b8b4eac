/**
 * Calls of one kind made before the writer gets to them, run as one statement: the first
 * call queues one writer call, the next ones join it until it starts, and then each caller
 * gets its own outcome. Jobs use it for inserts and finishes, where a burst of submits or of
 * workers' results would otherwise cost a statement (a round trip) each.
 *
 * The joined calls take the first one's place in the group commit: a call queued between two
 * of them sees the later ones' rows already (they only move earlier). They also share one
 * outcome on an unexpected error: they fail together, not alone.
 */
import type { PgSession, PgWriteLevel } from './pg-writer.js';

type Run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel) => Promise<T>;

interface Waiting<I, O> {
  input: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export class Coalesced<I, O> {
  private waiting: Waiting<I, O>[] = [];

  constructor(
    private readonly run: Run,
    /** One outcome per input, in order. */
    private readonly exec: (db: PgSession, inputs: I[]) => Promise<O[]>,
  ) {}

  call(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      if (this.waiting.length > 1) return; // a writer call is queued: it takes this one too
      let taken: Waiting<I, O>[] | undefined;
      this.run(async (db) => {
        // Taken once: the writer may run the call again (its savepoint path), same inputs.
        taken ??= this.take();
        return this.exec(
          db,
          taken.map((w) => w.input),
        );
      }, 'committed').then(
        (outs) => taken!.forEach((w, i) => w.resolve(outs[i]!)),
        (err: unknown) => (taken ?? this.take()).forEach((w) => w.reject(err)),
      );
    });
  }

  private take(): Waiting<I, O>[] {
    const t = this.waiting;
    this.waiting = [];
    return t;
  }
}
