/** Timers over a hand-driven clock: periodic scans, one-shots, the earliest-due timer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { DueTimer, Scheduler } from 'ferrymq-server/internal/core/scheduler.js';

describe('scheduler', () => {
  it('every runs at each interval, re-armed after each run, until stop', () => {
    const clock = new ManualClock(0);
    const s = new Scheduler(clock);
    const runs: number[] = [];
    s.every(100, () => runs.push(clock.now()));
    clock.advance(350);
    assert.deepEqual(runs, [100, 200, 300]);
    assert.equal(s.isStopped, false);
    s.stop();
    assert.equal(s.isStopped, true);
    clock.advance(1_000);
    assert.deepEqual(runs, [100, 200, 300], 'nothing after stop');
  });

  it('a periodic run that stops the scheduler is not re-armed', () => {
    const clock = new ManualClock(0);
    const s = new Scheduler(clock);
    let runs = 0;
    s.every(10, () => {
      runs++;
      if (runs === 2) s.stop();
    });
    clock.advance(100);
    assert.equal(runs, 2);
  });

  it('periodic timers fire in the order they were armed when due together', () => {
    const clock = new ManualClock(0);
    const s = new Scheduler(clock);
    const order: string[] = [];
    s.every(100, () => order.push('a'));
    s.every(100, () => order.push('b'));
    clock.advance(200);
    assert.deepEqual(order, ['a', 'b', 'a', 'b']);
    s.stop();
  });

  it('after runs once; stop cancels the ones that have not fired', () => {
    const clock = new ManualClock(0);
    const s = new Scheduler(clock);
    const fired: string[] = [];
    s.after(50, () => fired.push('early'));
    s.after(500, () => fired.push('late'));
    clock.advance(100);
    assert.deepEqual(fired, ['early']);
    s.stop();
    clock.advance(1_000);
    assert.deepEqual(fired, ['early']);
  });
});

describe('due timer', () => {
  it('fires once for the earliest time asked for', () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const due = new DueTimer(clock, 5, () => fired.push(clock.now()));
    due.schedule(300);
    due.schedule(100);
    due.schedule(200);
    assert.equal(due.nextAt, 100);
    clock.advance(1_000);
    assert.deepEqual(fired, [100], 'later times are the callback’s to re-arm');
    assert.equal(due.nextAt, null);
  });

  it('waits at least the minimum interval, even for a time already past', () => {
    const clock = new ManualClock(1_000);
    const fired: number[] = [];
    const due = new DueTimer(clock, 5, () => fired.push(clock.now()));
    due.schedule(500);
    clock.advance(4);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, [1_005]);
  });

  it('can be armed again from its own callback, and not after stop', () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const due: DueTimer = new DueTimer(clock, 5, () => {
      fired.push(clock.now());
      if (fired.length === 1) due.schedule(clock.now() + 50);
    });
    due.schedule(10);
    clock.advance(100);
    assert.deepEqual(fired, [10, 60]);
    due.schedule(200);
    due.stop();
    due.schedule(150);
    clock.advance(1_000);
    assert.deepEqual(fired, [10, 60]);
  });
});
