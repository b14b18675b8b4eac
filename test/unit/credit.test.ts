/** Credit: totals, round robin over consumers, least recently used over workers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  leastRecentlyUsed,
  nextWithCredit,
  totalCredit,
} from 'ferrymq-server/internal/core/credit.js';

const h = (credit: number, lastAssignSeq = 0): { credit: number; lastAssignSeq: number } => ({
  credit,
  lastAssignSeq,
});

describe('credit', () => {
  it('totalCredit adds every holder’s credit', () => {
    assert.equal(totalCredit([]), 0);
    assert.equal(totalCredit([h(3), h(0), h(5)]), 8);
  });

  it('nextWithCredit looks from the cursor on, wrapping, skipping holders without credit', () => {
    const list = [h(1), h(0), h(2), h(0)];
    assert.equal(nextWithCredit(list, 0), 0);
    assert.equal(nextWithCredit(list, 1), 2);
    assert.equal(nextWithCredit(list, 3), 0, 'wraps around');
    assert.equal(nextWithCredit(list, 7), 0, 'a cursor past the end wraps too');
    assert.equal(nextWithCredit([h(0), h(0)], 0), -1);
    assert.equal(nextWithCredit([], 0), -1);
  });

  it('round robin over equal credit visits each holder in turn', () => {
    const list = [h(10), h(10), h(10)];
    const seen: number[] = [];
    let cursor = 0;
    for (let k = 0; k < 6; k++) {
      const i = nextWithCredit(list, cursor);
      seen.push(i);
      cursor = (i + 1) % list.length;
    }
    assert.deepEqual(seen, [0, 1, 2, 0, 1, 2]);
  });

  it('leastRecentlyUsed picks the holder with credit assigned longest ago', () => {
    const a = h(1, 5);
    const b = h(0, 1);
    const c = h(2, 3);
    const d = h(1, 3);
    assert.equal(leastRecentlyUsed([a, b, c, d]), c, 'b has no credit; c comes before d on a tie');
    assert.equal(leastRecentlyUsed([b]), undefined);
    assert.equal(leastRecentlyUsed([]), undefined);
  });
});
