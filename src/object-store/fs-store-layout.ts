/**
 * The file layout of the filesystem object store (fs-store.ts module doc): key components as
 * percent-encoded file names, and the in-order walk of a directory tree that LIST uses.
 */
import path from 'node:path';
import { compareObjectKeys } from './object-store.ts';
import type { StoreFs } from './store-fs.ts';

/** Suffix of every directory name, so key `a` (file) and key `a/b` (directory `a~`) never collide. */
export const DIRECTORY_SUFFIX = '~';

/**
 * Keys under `dir` (whose keys all start with `dirKeyPrefix`) that start with `prefix` and sort
 * after `startAfter`, in key order. Children are visited sorted by the key range they hold (a
 * file `c` holds key `<dirKeyPrefix>c`, a directory `d~` holds keys starting `<dirKeyPrefix>d/`);
 * since keys sharing a prefix are contiguous in key order, this yields keys in order, and whole
 * subtrees outside the prefix or before `startAfter` are skipped unread.
 */
export async function* walk(
  fs: StoreFs,
  dir: string,
  dirKeyPrefix: string,
  prefix: string,
  startAfter: string | undefined,
): AsyncGenerator<{ key: string; file: string }> {
  if (fs.missing?.(dir) === true) return;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const children: { keyOrKeyPrefix: string; name: string; isDir: boolean }[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue; // temporary files
    const isDir = name.endsWith(DIRECTORY_SUFFIX);
    const component = decodeComponent(isDir ? name.slice(0, -DIRECTORY_SUFFIX.length) : name);
    if (component === undefined) continue; // not written by this store
    children.push({ keyOrKeyPrefix: dirKeyPrefix + component + (isDir ? '/' : ''), name, isDir });
  }
  children.sort((a, b) => compareObjectKeys(a.keyOrKeyPrefix, b.keyOrKeyPrefix));
  for (const child of children) {
    const k = child.keyOrKeyPrefix;
    if (child.isDir) {
      if (!k.startsWith(prefix) && !prefix.startsWith(k)) continue;
      // Every key under `k` is below a `startAfter` that is greater than `k` without extending it.
      if (startAfter !== undefined && compareObjectKeys(startAfter, k) > 0 && !startAfter.startsWith(k)) continue;
      yield* walk(fs, path.join(dir, child.name), k, prefix, startAfter);
    } else {
      if (!k.startsWith(prefix)) continue;
      if (startAfter !== undefined && compareObjectKeys(k, startAfter) <= 0) continue;
      yield { key: k, file: path.join(dir, child.name) };
    }
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

function isPlainByte(byte: number, index: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x5f || // _
    byte === 0x2d || // -
    (byte === 0x2e && index > 0) // . (not leading)
  );
}

/** Percent-encodes one key component into a file name (see the layout in the module doc). */
export function encodeComponent(component: string): string {
  let name = '';
  const bytes = textEncoder.encode(component);
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    name += isPlainByte(byte, i) ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return name;
}

/** The key component a file name encodes, or undefined for a name `encodeComponent` cannot produce. */
export function decodeComponent(name: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const char = name.charCodeAt(i);
    if (char === 0x25) {
      const hex = name.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      const byte = Number.parseInt(hex, 16);
      if (isPlainByte(byte, bytes.length)) return undefined; // not canonical
      bytes.push(byte);
      i += 2;
    } else if (isPlainByte(char, bytes.length)) {
      bytes.push(char);
    } else {
      return undefined;
    }
  }
  try {
    const component = textDecoder.decode(new Uint8Array(bytes));
    return component === '' ? undefined : component;
  } catch {
    return undefined;
  }
}
