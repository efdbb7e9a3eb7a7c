/**
 * One measured wrk run against a running server, with the CPU each side used: the server (from
 * /proc/<pid>/stat), wrk (its own `os.clock()`), and every other process on the machine (a busy
 * neighbour skews results). Shared by the append, large-append and create benchmarks.
 */
import { cpuOfOthers, snapshotAllProcessesCpu, type OthersCpu } from './cpu.ts';
import type { RunningServer } from './server-process.ts';
import { runWrk, type WrkResult, type WrkRun } from './wrk.ts';

export interface WrkMeasurement {
  wrk: WrkResult;
  /** wrk's measured duration, in seconds. */
  measuredS: number;
  /** Responses with status ≥ 400 (wrk's "Non-2xx or 3xx" counter). */
  non2xxCount: number;
  /** Connect, read, write errors and timeouts. */
  socketErrorCount: number;
  /** Shares of one core (%) over the wrk run's wall time. */
  serverCpuPercent: number;
  generatorCpuPercent: number;
  /** Machine CPU not used by the server, wrk or the benchmark process itself, in % of one core. */
  otherCpuPercent: number;
  otherCpuTop: OthersCpu['top'];
}

/** Runs wrk once (`run.durationS` whole seconds) and accounts the CPU of server, wrk and everything else. */
export async function measureWrk(server: RunningServer, run: WrkRun): Promise<WrkMeasurement> {
  const serverCpuBeforeS = server.cpuSeconds();
  const othersBefore = snapshotAllProcessesCpu();
  const startedMs = performance.now();
  const wrk = await runWrk(run);
  const elapsedS = (performance.now() - startedMs) / 1000;
  const serverCpuAfterS = server.cpuSeconds();
  const othersAfter = snapshotAllProcessesCpu();
  // The bench process reaps wrk, so excluding it excludes wrk's time too (wrk reports its own).
  const others = cpuOfOthers(othersBefore, othersAfter, new Set([process.pid, server.pid]));
  return {
    wrk,
    measuredS: wrk.durationUs / 1e6,
    non2xxCount: wrk.errors.status,
    socketErrorCount: wrk.errors.connect + wrk.errors.read + wrk.errors.write + wrk.errors.timeout,
    serverCpuPercent: ((serverCpuAfterS - serverCpuBeforeS) / elapsedS) * 100,
    generatorCpuPercent: (wrk.cpuSeconds / elapsedS) * 100,
    otherCpuPercent: (others.cpuS / elapsedS) * 100,
    otherCpuTop: others.top,
  };
}
