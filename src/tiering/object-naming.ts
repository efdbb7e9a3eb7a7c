/**
 * The node id of a data directory (object keys carry it; see src/manifest/object-keys.ts). The
 * key naming itself lives in src/manifest/object-naming.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The node id of a data directory: 12 random hex digits in `<dataDir>/node-id`, created on first
 * start. It is identity, not test-replayable logic, so it comes from the OS random source.
 */
export async function loadNodeId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'node-id');
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{12}$/.test(text)) return text;
    throw new Error(`${file} does not hold a node id (12 hex digits); it was changed by hand?`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const nodeId = randomBytes(6).toString('hex');
  await mkdir(dataDir, { recursive: true });
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(`${nodeId}\n`);
    await handle.sync(); // objects will carry this id: it must survive a crash
  } finally {
    await handle.close();
  }
  return nodeId;
}
