/**
 * A process's memory from /proc/<pid>/status (Linux): resident set size now and its peak.
 */
import { readFileSync } from 'node:fs';

export interface ProcessMemory {
  /** VmRSS: resident memory now, in bytes. */
  rssBytes: number;
  /** VmHWM: the peak resident memory since the process started, in bytes. */
  peakRssBytes: number;
}

/** VmRSS and VmHWM of a live process, in bytes; NaN for each that cannot be read (exited, not Linux). */
export function processMemory(pid: number): ProcessMemory {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // exited or no /proc: NaN below
  }
  const kibOf = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  };
  return { rssBytes: kibOf('VmRSS'), peakRssBytes: kibOf('VmHWM') };
}
