/**
 * CPU accounting from /proc (Linux): one process's user + system time, and every other process's,
 * so a benchmark can report what its server and load generator used and how much everything else
 * on the machine used in the same window (a busy neighbour skews results). Per-process times are
 * used rather than /proc/stat's machine totals because those are sampled per tick and, on this
 * kind of VM, disagree with the exact per-process times by tens of percent of a core.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ, the unit of /proc times; 100 on mainstream Linux builds. */
const CLOCK_TICKS_PER_S = clockTicksPerSecond();

function clockTicksPerSecond(): number {
  const probe = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(probe.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}

/** utime + stime of a live process from /proc/<pid>/stat, in seconds; NaN when unavailable. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name start at field 3 (state); utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (self + reaped children), parent pid and command name of every process, keyed by pid, at one moment. */
export type CpuSnapshot = Map<number, { cpuS: number; parentPid: number; command: string }>;

/**
 * Reads utime + stime + cutime + cstime of every process in /proc. Children's times count once
 * their parent reaps them, so short-lived processes (test runs, compilers) are seen through their
 * parents. Kernel threads are included. Empty when /proc is unavailable.
 */
export function snapshotAllProcessesCpu(): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return snapshot;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime are fields 14-17 (indices 11-14 after the command name).
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      snapshot.set(Number(entry), {
        cpuS: ticks / CLOCK_TICKS_PER_S,
        parentPid: Number(fields[1]),
        command: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      });
    } catch {
      // exited between readdir and read
    }
  }
  return snapshot;
}

/** The command line of a live process, shortened; undefined once it has exited. */
function commandLine(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return text === '' ? undefined : text.slice(0, 160);
  } catch {
    return undefined;
  }
}

export interface OthersCpu {
  cpuS: number;
  /** The largest users, e.g. `[{ pid: 123, command: 'node', cpuS: 1.2 }]`, at most five. */
  top: { pid: number; command: string; cpuS: number }[];
}

/**
 * CPU seconds used between two snapshots by all processes except `excludedPids` (and the time
 * they reaped from their children). A child that exited in between moves its whole lifetime into
 * its reaper's time; what it had used before the first snapshot is taken off again, so a long
 * test run ending inside the window is not charged to the window. Processes that exited in between
 * without a live parent reaping them are missed, so this is close to a lower bound.
 */
export function cpuOfOthers(before: CpuSnapshot, after: CpuSnapshot, excludedPids: ReadonlySet<number>): OthersCpu {
  // An exited process's time ends up with its nearest ancestor still alive (npm reaps tsc, then
  // bash reaps npm): take its pre-window time off there.
  const usedBeforeByExitedChildrenS = new Map<number, number>();
  for (const [pid, { cpuS }] of before) {
    if (after.has(pid)) continue;
    let reaper = before.get(pid)?.parentPid ?? 0;
    for (let hops = 0; reaper > 1 && !after.has(reaper) && hops < 64; hops++) reaper = before.get(reaper)?.parentPid ?? 0;
    if (after.has(reaper)) usedBeforeByExitedChildrenS.set(reaper, (usedBeforeByExitedChildrenS.get(reaper) ?? 0) + cpuS);
  }
  const users: OthersCpu['top'] = [];
  for (const [pid, { cpuS, command }] of after) {
    if (excludedPids.has(pid)) continue;
    const usedS = cpuS - (before.get(pid)?.cpuS ?? 0) - (usedBeforeByExitedChildrenS.get(pid) ?? 0);
    if (usedS > 0) users.push({ pid, command, cpuS: Math.round(usedS * 100) / 100 });
  }
  users.sort((left, right) => right.cpuS - left.cpuS);
  const top = users.slice(0, 5).map((user) => ({ ...user, command: commandLine(user.pid) ?? user.command }));
  return { cpuS: users.reduce((sum, user) => sum + user.cpuS, 0), top };
}

/** Child pids of `pid` (every thread's `/proc/<pid>/task/<tid>/children`); empty when it is gone. */
function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(' ')) {
        if (child !== '') children.push(Number(child));
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  return children;
}

/** `rootPid` and all its live descendants (e.g. a `cairn serve --workers` primary and its workers), root first. */
export function processTreePids(rootPid: number): number[] {
  const pids: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.shift() as number;
    if (pids.includes(pid)) continue;
    pids.push(pid);
    pending.push(...childPids(pid));
  }
  return pids;
}

/** utime + stime per live process of the tree under `rootPid`, in seconds, at one moment. */
export function processTreeCpuSeconds(rootPid: number): Map<number, number> {
  const perPid = new Map<number, number>();
  for (const pid of processTreePids(rootPid)) {
    const cpuS = processCpuSeconds(pid);
    if (Number.isFinite(cpuS)) perPid.set(pid, cpuS);
  }
  return perPid;
}

/**
 * CPU seconds the tree used between two {@link processTreeCpuSeconds} snapshots: a process born in
 * between counts whole, one that ended in between is missed (`lostPids` names it).
 */
export function treeCpuBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): { cpuS: number; lostPids: number[] } {
  let cpuS = 0;
  for (const [pid, afterS] of after) cpuS += afterS - (before.get(pid) ?? 0);
  return { cpuS, lostPids: [...before.keys()].filter((pid) => !after.has(pid)) };
}

/** Context switches of a live process so far (`/proc/<pid>/status`): voluntary (it waited) and involuntary (preempted); undefined once gone. */
export function processContextSwitches(pid: number): { voluntary: number; involuntary: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { voluntary: field('voluntary_ctxt_switches'), involuntary: field('nonvoluntary_ctxt_switches') };
  } catch {
    return undefined;
  }
}
