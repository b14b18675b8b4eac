/** The in-flight table: entries by id and by holder, deadlines, the expiry scan. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InflightTable,
  type InflightEntry,
  type InflightHolder,
} from 'ferrymq-server/internal/core/inflight-table.js';

interface Holder extends InflightHolder<Entry> {
  name: string;
}
interface Entry extends InflightEntry<Holder> {
  payload: string;
}

const holder = (name: string): Holder => ({ name, held: new Set() });
const entry = (id: string, h: Holder, deadline: number): Entry => ({
  id,
  holder: h,
  deadline,
  payload: `p-${id}`,
});

describe('in-flight table', () => {
  it('add keeps the id index and the holder set in step; remove drops both', () => {
    const t = new InflightTable<Entry, Holder>();
    const a = holder('a');
    const e1 = entry('1', a, 100);
    const e2 = entry('2', a, 200);
    t.add(e1);
    t.add(e2);
    assert.equal(t.size, 2);
    assert.equal(t.get('1'), e1);
    assert.ok(t.has('2'));
    assert.deepEqual([...a.held], [e1, e2]);
    t.remove(e1);
    assert.equal(t.size, 1);
    assert.equal(t.get('1'), undefined);
    assert.ok(!t.has('1'));
    assert.deepEqual([...a.held], [e2]);
    assert.deepEqual([...t.values()], [e2]);
  });

  it('getHeld finds an entry only for its own holder, and only by string id', () => {
    const t = new InflightTable<Entry, Holder>();
    const a = holder('a');
    const b = holder('b');
    const e = entry('x', a, 100);
    t.add(e);
    assert.equal(t.getHeld(a, 'x'), e);
    assert.equal(t.getHeld(b, 'x'), undefined, 'another holder');
    assert.equal(t.getHeld(a, 'y'), undefined, 'unknown id');
    assert.equal(t.getHeld(a, 42), undefined, 'not a string');
    assert.equal(t.getHeld(a, undefined), undefined);
  });

  it('expired lists entries at or past their deadline, in insertion order, and leaves them', () => {
    const t = new InflightTable<Entry, Holder>();
    const a = holder('a');
    const b = holder('b');
    assert.deepEqual(t.expired(1_000), [], 'empty table');
    const late = entry('late', a, 300);
    const first = entry('first', b, 100);
    const exact = entry('exact', a, 200);
    t.add(late);
    t.add(first);
    t.add(exact);
    assert.deepEqual(t.expired(99), []);
    assert.deepEqual(t.expired(200), [first, exact]);
    assert.equal(t.size, 3, 'the scan removes nothing');
    assert.deepEqual(t.expired(300), [late, first, exact]);
  });

  it('extend only ever moves a deadline later', () => {
    const t = new InflightTable<Entry, Holder>();
    const e = entry('1', holder('a'), 500);
    t.add(e);
    t.extend(e, 400);
    assert.equal(e.deadline, 500, 'an earlier time is ignored');
    t.extend(e, 900);
    assert.equal(e.deadline, 900);
    assert.deepEqual(t.expired(600), []);
  });

  it('an id added again for a new holder moves to that holder', () => {
    const t = new InflightTable<Entry, Holder>();
    const a = holder('a');
    const b = holder('b');
    const first = entry('m', a, 100);
    t.add(first);
    t.remove(first);
    const second = entry('m', b, 200);
    t.add(second);
    assert.equal(a.held.size, 0);
    assert.deepEqual([...b.held], [second]);
    assert.equal(t.getHeld(a, 'm'), undefined);
    assert.equal(t.getHeld(b, 'm'), second);
  });
});
