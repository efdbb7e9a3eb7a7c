/**
 * What the numbers were measured on: cores, CPU model, Node, kernel, the filesystem under the
 * data directories (fsync cost depends on it), and whether CPU pinning is available.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';

export interface Machine {
  date: string;
  cpuCount: number;
  cpuModel: string;
  nodeVersion: string;
  kernel: string;
  dataRoot: string;
  /** e.g. `ext4 /dev/vda` for the mount holding dataRoot. */
  dataRootFilesystem: string;
  tasksetAvailable: boolean;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((candidate) => candidate.startsWith('model name'));
    return line?.split(':').slice(1).join(':').trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Filesystem type and source of the longest mount point containing `path` (from /proc/self/mountinfo). */
function filesystemOf(path: string): string {
  try {
    const real = realpathSync(path);
    let best = { mountPoint: '', description: 'unknown' };
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      // id parent major:minor root mountPoint options [optional...] - fsType source superOptions
      const [left, right] = line.split(' - ');
      if (left === undefined || right === undefined) continue;
      const mountPoint = left.split(' ')[4] ?? '';
      const inside = real === mountPoint || real.startsWith(mountPoint === '/' ? '/' : `${mountPoint}/`);
      if (inside && mountPoint.length >= best.mountPoint.length) {
        const [fsType, source] = right.split(' ');
        best = { mountPoint, description: `${fsType} ${source} at ${mountPoint}` };
      }
    }
    return best.description;
  } catch {
    return 'unknown';
  }
}

export function describeMachine(dataRoot: string): Machine {
  return {
    date: new Date().toISOString(),
    cpuCount: availableParallelism(),
    cpuModel: cpuModel(),
    nodeVersion: process.version,
    kernel: release(),
    dataRoot,
    dataRootFilesystem: filesystemOf(dataRoot),
    tasksetAvailable: spawnSync('taskset', ['-c', '0', 'true']).status === 0,
  };
}
