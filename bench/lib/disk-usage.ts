/**
 * Files and bytes under a directory tree (a server's WAL, its filesystem object store), for
 * benchmarks that report what a workload left on disk.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface DiskUsage {
  /** Regular files under the directory, recursively. */
  fileCount: number;
  /** Their apparent sizes summed, in bytes (not blocks allocated). */
  bytes: number;
}

/** Counts regular files and their bytes under `dir`; zero for a directory that does not exist. */
export function diskUsage(dir: string): DiskUsage {
  let fileCount = 0;
  let bytes = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return { fileCount, bytes };
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    try {
      bytes += statSync(join(entry.parentPath, entry.name)).size;
      fileCount++;
    } catch {
      // removed while we looked (e.g. a WAL file dropped by a checkpoint)
    }
  }
  return { fileCount, bytes };
}
