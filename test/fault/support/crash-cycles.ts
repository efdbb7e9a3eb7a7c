/**
 * The SIGKILL/restart loop shared by the crash tests (test/fault/crash*.test.ts).
 *
 * Cycle 0 starts the server and creates every subject; each later cycle restarts the server on
 * the same data directory and port, recovers and verifies every subject (crash-model.ts), then
 * (except after the last restart) runs a load phase of random length and kills the server with
 * SIGKILL at a random moment, or right after the closer's close request when planned. Hooks let
 * a test choose the server's arguments per start, add checks while the server is up and idle, and
 * inspect the data directory while it is down.
 */
import { expect } from 'vitest';
import type { ChildServer } from './child-server.ts';
import { CheckFailure, type ByteStream, type Rng, type Run, type Stats, type Subject } from './crash-model.ts';
import { HttpClient } from './http-client.ts';

export interface CrashCyclesOptions {
  seed: number;
  /** Kills; the server is started `cycles + 1` times. */
  cycles: number;
  /** Draws the load lengths (after the caller drew the close plan from it). */
  driver: Rng;
  server: ChildServer;
  subjects: Subject[];
  /** The subject with a close plan (also in `subjects`). */
  closer: ByteStream;
  stats: Stats;
  /** Load phase before the kill, in milliseconds. */
  loadMsMin: number;
  loadMsMax: number;
  /** Before each start (cycles 0 to `cycles`): e.g. set `server.args`. */
  beforeStart?: (cycle: number) => void;
  /**
   * The server is up and every subject was created (cycle 0) or recovered and verified; no load
   * runs. `last` on the final restart. A CheckFailure thrown here fails the test with the cycle log.
   */
  afterVerify?: (run: Run, last: boolean) => Promise<void>;
  /** The server was killed and has exited; returns a note for the cycle log. */
  afterKill?: (cycle: number) => Promise<string | undefined>;
}

/** A whole number from the environment (CRASH_SEED, CRASH_CYCLES), or `fallback`. */
export function envInteger(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return Number(text);
}

/** Where the time went, in milliseconds summed over the cycles. */
export interface CrashCyclesTiming {
  /** Starting the server until it answers (recovery of the WAL included). */
  startMs: number;
  /** Creating, recovering and verifying the subjects, and `afterVerify`. */
  checkMs: number;
  /** Load phases, up to the kill. */
  loadMs: number;
  /** `afterKill`. */
  afterKillMs: number;
}

/** Runs the cycles; fails the test (vitest `expect`, or an Error with the cycle log) on any broken check. */
export async function runCrashCycles(options: CrashCyclesOptions): Promise<CrashCyclesTiming> {
  const { seed, cycles, driver, server, subjects, closer, stats } = options;
  const timing: CrashCyclesTiming = { startMs: 0, checkMs: 0, loadMs: 0, afterKillMs: 0 };
  const cycleLog: string[] = [];
  const where = (cycle: number) => `seed ${seed}, cycle ${cycle} of ${cycles}`;

  for (let cycle = 0; cycle <= cycles; cycle++) {
    options.beforeStart?.(cycle);
    let phaseStarted = performance.now();
    await server.start();
    timing.startMs += performance.now() - phaseStarted;
    phaseStarted = performance.now();
    const client = new HttpClient(server.port);
    const failures: string[] = [];
    let stopped = false;
    let fire: () => void = () => {};
    const run: Run = {
      cycle,
      client,
      get stopped() {
        return stopped;
      },
      failures,
      stats,
      requestKill: (delayMs) => setTimeout(() => fire(), delayMs),
    };
    try {
      if (cycle === 0) {
        for (const subject of subjects) await subject.create(run);
      } else {
        // Subjects are independent streams: check them concurrently (reads dominate the cycle time).
        await Promise.all(subjects.map((subject) => subject.recover(run)));
        await Promise.all(subjects.map((subject) => subject.verify(run)));
      }
      await options.afterVerify?.(run, cycle === cycles);
    } catch (error) {
      if (error instanceof CheckFailure) {
        throw new Error(`[${where(cycle)}] after restart: ${error.message}\n${cycleLog.join('\n')}\nserver output:\n${server.stderrTail}`);
      }
      throw error;
    }
    timing.checkMs += performance.now() - phaseStarted;
    if (cycle === cycles) {
      client.destroy();
      break;
    }

    // Load, then SIGKILL at a random moment (or right after the close request when planned).
    const loadMs = driver.int(options.loadMsMin, options.loadMsMax);
    const ackedBefore = stats.acked;
    const inFlightBefore = stats.inFlightAtKill;
    const killed = new Promise<number>((resolve) => {
      const loadStarted = performance.now();
      const timer = setTimeout(() => fire(), loadMs);
      fire = () => {
        if (stopped) return;
        stopped = true; // writers see this before any rejection caused by the kill
        server.kill();
        clearTimeout(timer);
        resolve(performance.now() - loadStarted);
      };
    });
    const loops = subjects.flatMap((subject) => subject.writers(run));
    const killedAfterMs = await killed;
    await Promise.all(loops);
    await server.waitExit();
    client.destroy();
    timing.loadMs += killedAfterMs;
    phaseStarted = performance.now();
    const note = await options.afterKill?.(cycle);
    timing.afterKillMs += performance.now() - phaseStarted;
    cycleLog.push(
      `cycle ${cycle}: killed after ${Math.round(killedAfterMs)} ms, ${stats.acked - ackedBefore} acked, ` +
        `${stats.inFlightAtKill - inFlightBefore} in flight${closer.closedInCycle === cycle ? ', closer closed' : ''}` +
        (note === undefined ? '' : `; ${note}`),
    );
    expect(failures, `[${where(cycle)}] during load\n${cycleLog.join('\n')}\nserver output:\n${server.stderrTail}`).toEqual([]);
  }
  return timing;
}

/**
 * A load phase that ends without a kill: writers stop starting requests after `loadMs` and every
 * request they sent completes and is acknowledged. Returns the writers' failures.
 */
export async function loadWithoutKill(run: Omit<Run, 'stopped' | 'failures' | 'requestKill'>, subjects: Subject[], loadMs: number): Promise<string[]> {
  let stopped = false;
  const failures: string[] = [];
  const graceful: Run = {
    cycle: run.cycle,
    client: run.client,
    stats: run.stats,
    failures,
    get stopped() {
      return stopped;
    },
    requestKill: () => {},
  };
  const loops = subjects.flatMap((subject) => subject.writers(graceful));
  await new Promise((resolve) => setTimeout(resolve, loadMs));
  stopped = true;
  await Promise.all(loops);
  return failures;
}
