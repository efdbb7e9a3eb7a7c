import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { manualClock } from '../../src/clock.ts';
import { WaitDeadlines } from '../../src/http/wait-deadlines.ts';
import { LiveReaders } from '../../src/http/live-readers.ts';
import { EventEmitter } from 'node:events';
import type { StreamState } from '../../src/stream/stream-state.ts';

describe('wait deadlines on one shared timer', () => {
  test('entries expire at their deadline, never before, in deadline order; removed ones never', () => {
    const clock = manualClock();
    const expired: string[] = [];
    const deadlines = new WaitDeadlines<string>(clock, (entry) => expired.push(entry));
    deadlines.add('c', 300);
    const b = deadlines.add('b', 200);
    deadlines.add('a', 100);
    deadlines.add('a2', 100);
    deadlines.remove('b', b);
    expect(clock.pendingTimerCount).toBe(1);
    clock.advance(99);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired).toEqual(['a', 'a2']);
    clock.advance(250);
    expect(expired).toEqual(['a', 'a2', 'c']);
    expect(deadlines.size).toBe(0);
    expect(clock.pendingTimerCount).toBe(0);
  });

  test('any sequence of adds, removes and clock steps expires exactly the entries not removed, each at or after its deadline', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ timeoutMs: fc.integer({ min: 0, max: 1000 }), remove: fc.boolean(), stepMs: fc.integer({ min: 0, max: 300 }) }), {
          maxLength: 40,
        }),
        (ops) => {
          const clock = manualClock();
          const expiredAt = new Map<number, number>();
          const deadlines = new WaitDeadlines<number>(clock, (entry) => expiredAt.set(entry, clock.monotonicMs()));
          const dueMs = new Map<number, number>();
          ops.forEach((op, id) => {
            const tick = deadlines.add(id, op.timeoutMs);
            dueMs.set(id, clock.monotonicMs() + op.timeoutMs);
            if (op.remove) {
              deadlines.remove(id, tick);
              dueMs.delete(id);
            }
            clock.advance(op.stepMs);
          });
          clock.advance(2000);
          expect([...expiredAt.keys()].sort((x, y) => x - y)).toEqual([...dueMs.keys()].sort((x, y) => x - y));
          for (const [id, at] of expiredAt) expect(at).toBeGreaterThanOrEqual(dueMs.get(id)!);
          expect(clock.pendingTimerCount).toBe(0);
        },
      ),
    );
  });

  test('live waits hold no timer each: one timer for all; ends by change, close, timeout and shutdown', async () => {
    const clock = manualClock();
    const live = new LiveReaders(100, clock);
    const waiters = new Set<() => void>();
    const stream = { addWaiter: (wake: () => void) => waiters.add(wake), removeWaiter: (wake: () => void) => waiters.delete(wake) } as unknown as StreamState;
    const connection = () => Object.assign(new EventEmitter(), { destroyed: false });
    const closing = connection();
    const waits = [live.wait(stream, 1000, connection()), live.wait(stream, 2000, closing), live.wait(stream, 500, connection())];
    expect(clock.pendingTimerCount).toBe(1);
    expect(live.waitingCount).toBe(3);
    clock.advance(500);
    expect(await waits[2]).toBe('timeout');
    closing.emit('close');
    expect(await waits[1]).toBe('disconnected');
    for (const wake of [...waiters]) wake();
    expect(await waits[0]).toBe('changed');
    expect(live.waitingCount).toBe(0);
    expect(clock.pendingTimerCount).toBe(0);
    const last = live.wait(stream, 1000, connection());
    live.closeAll();
    expect(await last).toBe('shutdown');
  });

  test('callback waits (SSE sessions): woken once by a change, the deadline or shutdown; ended by the caller', () => {
    const clock = manualClock();
    const live = new LiveReaders(2, clock);
    const waiters = new Set<() => void>();
    const stream = { addWaiter: (wake: () => void) => waiters.add(wake), removeWaiter: (wake: () => void) => waiters.delete(wake) } as unknown as StreamState;
    const woken: (string | undefined)[][] = [[], [], []];
    const wakes = woken.map((log) => {
      const wake = (reason?: string) => {
        log.push(reason);
        live.endWait(stream, wake, ticks.get(wake)!);
      };
      return wake;
    });
    const ticks = new Map<(reason?: string) => void, number>();
    ticks.set(wakes[0]!, live.startWait(stream, 1000, wakes[0]!));
    ticks.set(wakes[1]!, live.startWait(stream, 300, wakes[1]!));
    expect(live.waitingCount).toBe(2);
    // The limit counts callback waits too.
    expect(() => live.startWait(stream, 1000, wakes[2]!)).toThrow(/too many live readers/);
    clock.advance(300);
    expect(woken[1]).toEqual(['timeout']);
    for (const wake of [...waiters]) wake();
    expect(woken[0]).toEqual([undefined]);
    expect(live.waitingCount).toBe(0);
    expect(waiters.size).toBe(0);
    expect(clock.pendingTimerCount).toBe(0);
    clock.advance(1000);
    expect(woken[0]).toEqual([undefined]);

    ticks.set(wakes[2]!, live.startWait(stream, 1000, wakes[2]!));
    live.closeAll();
    expect(woken[2]).toEqual(['shutdown']);
    expect(live.waitingCount).toBe(0);
  });
});
