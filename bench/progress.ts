/**
 * A progress line per workload — a bar with the share done, when the workload knows it, then
 * its counters: rewritten in place with \r on a terminal, or printed as a plain line every few
 * seconds when stdout is a file or a pipe.
 */
const TTY_INTERVAL_MS = 250;
const PIPE_INTERVAL_MS = 10_000;
/** Width of the bar, characters. */
const BAR_WIDTH = 20;

/** `[######              ]  31 %` for a share in [0, 1]. */
export function progressBar(fraction: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.floor(f * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(f * 100)).padStart(3)} %`;
}

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private lastLen = 0;
  private readonly tty = process.stdout.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly status: () => string,
    /** Share of the run done, 0–1; absent: no bar. */
    private readonly fraction?: () => number,
  ) {}

  start(): void {
    this.render();
    this.timer = setInterval(() => this.render(), this.tty ? TTY_INTERVAL_MS : PIPE_INTERVAL_MS);
    this.timer.unref();
  }

  private render(): void {
    const bar = this.fraction ? `${progressBar(this.fraction())} ` : '';
    const line = `  … ${this.label}: ${bar}${this.status()}`;
    if (this.tty) {
      process.stdout.write(`\r${line.padEnd(this.lastLen)}`);
      this.lastLen = line.length;
    } else {
      process.stdout.write(`${line}\n`);
    }
  }

  /** Stops updating and clears the line (on a terminal). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.lastLen > 0) process.stdout.write(`\r${' '.repeat(this.lastLen)}\r`);
    this.lastLen = 0;
  }
}
