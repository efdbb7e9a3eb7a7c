/**
 * JSON mode (PROTOCOL.md §9.1): validation, one-level array flattening, and the stored form.
 *
 * Messages are stored as their original JSON text (never re-serialised: big integers and number
 * spellings survive byte-exact), each followed by a comma. A stored range is therefore always a
 * run of whole messages, and a read answers `[` + range without its final comma + `]`.
 */
import { BadRequestError } from './errors.ts';

const COMMA = 0x2c;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The stored form of one request body: messages, each followed by `,`. */
export interface JsonMessages {
  bytes: Buffer;
  messageCount: number;
}

/**
 * Validates a JSON request body and converts it to the stored form, flattening a top-level array
 * one level (§9.1.2). An empty array yields zero messages; the caller decides whether that is
 * allowed (PUT) or a 400 (POST, §9.1.3).
 * @throws BadRequestError for invalid UTF-8 or invalid JSON.
 */
export function encodeJsonMessages(body: Buffer): JsonMessages {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new BadRequestError('request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) {
    return { bytes: Buffer.from(`${text.trim()},`), messageCount: 1 };
  }
  const elements = splitTopLevelArray(text);
  return { bytes: Buffer.from(elements.map((element) => `${element},`).join('')), messageCount: elements.length };
}

/** Wraps a stored range (whole messages, each followed by `,`) as a JSON array response body. */
export function jsonArrayBody(stored: Buffer[]): Buffer {
  const total = stored.reduce((sum, part) => sum + part.length, 0);
  if (total === 0) return Buffer.from('[]');
  const out = Buffer.allocUnsafe(total + 1);
  out[0] = 0x5b; // '['
  let at = 1;
  for (const part of stored) at += part.copy(out, at);
  out[total] = 0x5d; // ']' replaces the final comma
  return out;
}

/**
 * Byte length of the first `count` messages of a stored range, or undefined if it holds fewer.
 * Stored messages are valid JSON separated by commas at depth 0, outside strings.
 */
export function storedMessagesLength(stored: Buffer, count: number): number | undefined {
  if (count === 0) return 0;
  let depth = 0;
  let inString = false;
  let seen = 0;
  for (let i = 0; i < stored.length; i++) {
    const byte = stored[i];
    if (inString) {
      if (byte === 0x5c) i++; // backslash escapes the next byte
      else if (byte === 0x22) inString = false;
      continue;
    }
    if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) depth++;
    else if (byte === 0x5d || byte === 0x7d) depth--;
    else if (byte === COMMA && depth === 0 && ++seen === count) return i + 1;
  }
  return undefined;
}

/** Splits the text of a valid JSON array into its elements' trimmed texts. */
function splitTopLevelArray(text: string): string[] {
  const elements: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x5b || ch === 0x7b) {
      depth++;
      if (depth === 1) start = i + 1;
    } else if (ch === 0x5d || ch === 0x7d) {
      if (depth === 1) {
        const last = text.slice(start, i).trim();
        if (last.length > 0) elements.push(last);
      }
      depth--;
    } else if (ch === COMMA && depth === 1) {
      elements.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  return elements;
}
