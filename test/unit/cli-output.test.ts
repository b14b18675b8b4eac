/** The CLI's output helpers: tables, durations, and a progress bar drawn only on a terminal. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatMs, formatTable, ProgressBar } from 'ferrymq-server/internal/cli/output.js';

/** ANSI "erase to the end of the line", which ends each redraw. */
const ERASE_LINE_END = '\u001b[K';

/** A stream that records what is written; `isTTY` as a terminal or a pipe would say. */
function recorder(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = {
    isTTY,
    write: (s: string) => {
      text += s;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

describe('CLI output', () => {
  it('draws a progress bar on a terminal and ends its line', () => {
    const tty = recorder(true);
    const bar = new ProgressBar('send q', 4, { stream: tty.stream });
    bar.tick(1);
    bar.tick(3);
    bar.finish();
    assert.match(tty.text(), /^\rsend q \[#{8}-{22}\] 1\/4/);
    assert.ok(tty.text().endsWith(`\rsend q [${'#'.repeat(30)}] 4/4${ERASE_LINE_END}\n`));
  });

  it('draws nothing when the stream is not a terminal', () => {
    const pipe = recorder(false);
    const bar = new ProgressBar('purge q', 10, { stream: pipe.stream });
    bar.tick(10);
    bar.finish();
    assert.equal(pipe.text(), '');
  });

  it('grows the total when more is done than announced', () => {
    const tty = recorder(true);
    const bar = new ProgressBar('redrive q', 1, { stream: tty.stream });
    bar.tick(3);
    bar.finish();
    assert.ok(tty.text().endsWith(`3/3${ERASE_LINE_END}\n`));
  });

  it('pads table columns and formats durations', () => {
    assert.equal(formatTable(['a', 'bb'], [['ccc', 'd']]), 'a    bb\nccc  d\n');
    assert.equal(formatMs(0.25), '250µs');
    assert.equal(formatMs(3.456), '3.46ms');
    assert.equal(formatMs(42), '42.0ms');
    assert.equal(formatMs(2500), '2.5s');
  });
});
