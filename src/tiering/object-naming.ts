/**
 * Object keys of a stream incarnation (src/manifest/object-keys.ts), with this node's id and a
 * per-stream memo of the prefix (it costs a SHA-256).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { manifestKey, segmentKey, streamObjectPrefix } from '../manifest/object-keys.ts';
import type { SegmentRef } from '../manifest/manifest.ts';
import type { StreamState } from '../stream/stream-state.ts';

export class ObjectNaming {
  readonly nodeId: string;
  readonly #prefixes = new WeakMap<StreamState, string>();

  constructor(nodeId: string) {
    this.nodeId = nodeId;
  }

  /** Key prefix of everything `stream` stores, ending in '/'. */
  prefix(stream: StreamState): string {
    let prefix = this.#prefixes.get(stream);
    if (prefix === undefined) {
      prefix = streamObjectPrefix(stream.path, stream.incarnation, this.nodeId);
      this.#prefixes.set(stream, prefix);
    }
    return prefix;
  }

  segment(stream: StreamState, segment: Pick<SegmentRef, 'start' | 'end'>): string {
    return segmentKey(this.prefix(stream), segment.start, segment.end);
  }

  manifest(stream: StreamState, version: number): string {
    return manifestKey(this.prefix(stream), version);
  }
}

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
