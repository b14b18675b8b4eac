/**
 * A progress line per workload: rewritten in place with \r on a terminal, or printed as a
 * plain line every few seconds when stdout is a file or a pipe.
 */
const TTY_INTERVAL_MS = 250;
const PIPE_INTERVAL_MS = 10_000;

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private lastLen = 0;
  private readonly tty = process.stdout.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly status: () => string,
  ) {}

  start(): void {
    this.render();
    this.timer = setInterval(() => this.render(), this.tty ? TTY_INTERVAL_MS : PIPE_INTERVAL_MS);
    this.timer.unref();
  }

  private render(): void {
    const line = `  … ${this.label}: ${this.status()}`;
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
