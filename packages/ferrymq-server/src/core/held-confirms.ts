/**
 * The producers' confirms a queue holds back under flow control (flow-control.ts): by
 * producer session, released taking producers in turn, each its oldest first.
 */

/** A confirm held back: the producer's session and how to answer it. */
export interface HeldConfirm {
  session: string;
  release: () => void;
}

/** The confirms one queue holds back. */
export class HeldConfirms {
  private readonly bySession = new Map<string, (() => void)[]>();
  private count = 0;
  /** Confirms ever held, for the stats. */
  total = 0;

  get size(): number {
    return this.count;
  }

  hold(c: HeldConfirm): void {
    let list = this.bySession.get(c.session);
    if (!list) this.bySession.set(c.session, (list = []));
    list.push(c.release);
    this.count++;
    this.total++;
  }

  /** Answers every held confirm, one producer at a time in turn, each its oldest first. */
  releaseAll(): void {
    const lists = [...this.bySession.values()];
    this.bySession.clear();
    this.count = 0;
    const longest = Math.max(0, ...lists.map((l) => l.length));
    for (let i = 0; i < longest; i++) {
      for (const list of lists) if (i < list.length) list[i]!();
    }
  }
}
