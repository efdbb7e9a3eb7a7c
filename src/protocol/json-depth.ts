/**
 * JSON nesting depth (README "Limits", `--json-depth-max`). Cairn stores JSON text as sent, so
 * the limit protects readers whose parsers recurse; it is checked before anything is stored.
 */

/**
 * True when `body` nests arrays/objects deeper than `maxDepth` (a top-level array is depth 1).
 * Brackets inside strings do not count. One pass over the bytes; no allocation. The body need
 * not be valid JSON (validity is checked later, JSON mode §9.1.4).
 */
export function jsonDepthExceeds(body: Uint8Array, maxDepth: number): boolean {
  // Fewer bytes than the limit cannot nest deeper than it.
  if (body.length <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === 0x5c) i++; // backslash: skip the escaped byte
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (byte === 0x5d || byte === 0x7d) {
      depth--;
    }
  }
  return false;
}
