/**
 * The data directory and its node id, created crash-safely: a power loss at any point leaves
 * either no `node-id` (a later start makes one) or the whole one, never an empty file. The id is
 * in every object key this node writes, so it must never change once an object carries it.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';

const NODE_ID_FILE = 'node-id';
const NODE_ID_RE = /^[0-9a-f]{12}$/;

/**
 * The node id of `dataDir`: 12 random hex digits in `<dataDir>/node-id`, created on first start
 * (with the directory). It is identity, not test-replayable logic, so it comes from the OS random
 * source. Creation: write a temporary file, fsync it, `link()` it to `node-id` (create-if-absent:
 * of two racing starts one id wins and both return it), fsync the directory; a new data directory
 * is also fsynced in its parent.
 * @throws Error if `node-id` holds something else (changed by hand), or the I/O error.
 */
export async function loadNodeId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, NODE_ID_FILE);
  const existing = await readNodeId(file);
  if (existing !== undefined) {
    // An earlier start may have died between its link and its directory fsync.
    await syncDir(dataDir);
    return existing;
  }
  const firstCreated = await mkdir(dataDir, { recursive: true });
  if (firstCreated !== undefined) {
    for (let d = dataDir; d !== path.dirname(firstCreated); d = path.dirname(d)) await syncDir(path.dirname(d));
  }
  const nodeId = randomBytes(6).toString('hex');
  const temp = path.join(dataDir, `.${NODE_ID_FILE}-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx');
  try {
    await handle.writeFile(`${nodeId}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  let won = true;
  try {
    await link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    won = false;
  } finally {
    await unlink(temp).catch(() => {});
  }
  await syncDir(dataDir);
  if (won) return nodeId;
  const winner = await readNodeId(file);
  if (winner === undefined) throw new Error(`${file} vanished while it was being created`);
  return winner;
}

async function readNodeId(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (NODE_ID_RE.test(text)) return text;
  throw new Error(`${file} does not hold a node id (12 hex digits); it was changed by hand?`);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
