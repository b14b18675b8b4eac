/**
 * How `ferry` writes: tables and JSON on stdout, progress bars on stderr (only on a terminal),
 * and a quiet exit when the reader of stdout goes away (`ferry stats | head`).
 */

/** Redraw a progress bar at most this often. */
const PROGRESS_REDRAW_MS = 100;
/** Width of the bar itself, characters. */
const PROGRESS_BAR_WIDTH = 30;

/**
 * `ferry … | head`: once head exits, writing to stdout fails with EPIPE. That is the reader's
 * choice, not an error: exit 0 without a stack trace.
 */
export function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    process.stderr.write(`ferry: INTERNAL: stdout: ${err.message}\n`);
    process.exit(1);
  });
}

/** Columns padded to the widest cell, two spaces apart. Prints nothing for no head. */
export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

export function printTable(head: string[], rows: string[][]): void {
  process.stdout.write(formatTable(head, rows));
}

/** A listing's `--json`: one JSON document (an array or object), indented. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A table, or when there is nothing to list a note on stderr (stdout stays empty). */
export function printListing(head: string[], rows: string[][], nothing: string): void {
  if (rows.length === 0) process.stderr.write(`${nothing}\n`);
  else printTable(head, rows);
}

/** Milliseconds as the shortest readable text: 850µs, 12.3ms, 4.0s. */
export function formatMs(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)}µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}

export interface ProgressOptions {
  /** Where to draw (default stderr); nothing is drawn unless it is a terminal. */
  stream?: NodeJS.WriteStream;
}

/** A one-line progress bar on a terminal: `label [#####-----] 50/100`. Silent elsewhere. */
export class ProgressBar {
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private done = 0;
  private drawnAt = 0;

  constructor(
    private readonly label: string,
    private total: number,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.enabled = this.stream.isTTY === true;
  }

  /** Adds `n` finished items and redraws (throttled). */
  tick(n = 1): void {
    this.done += n;
    if (this.done > this.total) this.total = this.done;
    const now = Date.now();
    if (now - this.drawnAt >= PROGRESS_REDRAW_MS) {
      this.drawnAt = now;
      this.draw();
    }
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (!this.enabled) return;
    this.draw();
    this.stream.write('\n');
  }

  private draw(): void {
    if (!this.enabled) return;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(frac * PROGRESS_BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(PROGRESS_BAR_WIDTH - filled)}`;
    this.stream.write(`\r${this.label} [${bar}] ${this.done}/${this.total}\x1b[K`);
  }
}
