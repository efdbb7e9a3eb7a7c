/**
 * Checks that what a reader receives is the corpus, every mail exactly once, in order,
 * byte-exact. A checker keeps the first discrepancy and ignores what follows it, so a failure
 * names the first mail that went wrong rather than thousands of consequences.
 */
import type { Corpus, MailMessage } from './corpus.ts';
import { sha256Hex } from './corpus.ts';

/** Messages of the JSON stream, checked one by one as they arrive. */
export class MessageChecker {
  readonly #corpus: Corpus;
  /** Messages accepted so far (in order, each hash verified). */
  receivedCount = 0;
  /** Sum of the accepted mails' UTF-8 sizes. */
  receivedBytes = 0;
  /** First discrepancy, if any. */
  error: string | undefined;

  constructor(corpus: Corpus) {
    this.#corpus = corpus;
  }

  get complete(): boolean {
    return this.error === undefined && this.receivedCount === this.#corpus.mails.length;
  }

  accept(message: MailMessage): void {
    if (this.error !== undefined) return;
    const expected = this.#corpus.mails[this.receivedCount];
    if (expected === undefined) {
      this.error = `message seq ${message.seq} received after all ${this.#corpus.mails.length} mails (duplicate or extra)`;
      return;
    }
    if (message.seq !== expected.seq) {
      const kind = message.seq < expected.seq ? 'duplicate or out of order' : 'gap: mails missing';
      this.error = `expected mail seq ${expected.seq}, received seq ${message.seq} (${kind})`;
      return;
    }
    const bytes = Buffer.from(message.text, 'utf8');
    const sha256 = sha256Hex(bytes);
    if (sha256 !== expected.sha256 || message.sha256 !== expected.sha256) {
      this.error = `mail seq ${expected.seq} (${expected.group}/${expected.id}) differs: text sha256 ${sha256}, expected ${expected.sha256}`;
      return;
    }
    this.receivedCount++;
    this.receivedBytes += bytes.length;
  }
}

/**
 * The raw-bytes stream, checked chunk by chunk: each mail's byte range is hashed as soon as it
 * is complete, so memory stays at one mail plus one chunk.
 */
export class ByteChecker {
  readonly #corpus: Corpus;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Mails whose whole byte range has arrived and matched. */
  receivedCount = 0;
  /** Bytes received in all. */
  receivedBytes = 0;
  error: string | undefined;

  constructor(corpus: Corpus) {
    this.#corpus = corpus;
  }

  get complete(): boolean {
    return this.error === undefined && this.receivedCount === this.#corpus.mails.length && this.receivedBytes === this.#corpus.totalBytes;
  }

  accept(chunk: Uint8Array): void {
    if (this.error !== undefined || chunk.length === 0) return;
    this.receivedBytes += chunk.length;
    if (this.receivedBytes > this.#corpus.totalBytes) {
      this.error = `received ${this.receivedBytes} bytes, more than the corpus's ${this.#corpus.totalBytes}`;
      return;
    }
    // A copy: the client owns the chunk's memory once this callback returns.
    this.#pending.push(Buffer.from(chunk));
    this.#pendingBytes += chunk.length;
    for (;;) {
      const mail = this.#corpus.mails[this.receivedCount];
      if (mail === undefined || this.#pendingBytes < mail.bytes.length) return;
      const joined = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
      const sha256 = sha256Hex(joined.subarray(0, mail.bytes.length));
      if (sha256 !== mail.sha256) {
        const end = mail.startByte + mail.bytes.length;
        this.error = `bytes [${mail.startByte}, ${end}) of mail seq ${mail.seq} (${mail.group}/${mail.id}) differ: sha256 ${sha256}, expected ${mail.sha256}`;
        return;
      }
      const rest = joined.subarray(mail.bytes.length);
      this.#pending = rest.length === 0 ? [] : [rest];
      this.#pendingBytes = rest.length;
      this.receivedCount++;
    }
  }

  /** The error to report once the reader has reached the end, if the stream was short. */
  finalError(): string | undefined {
    if (this.error !== undefined) return this.error;
    if (this.complete) return undefined;
    return `stream ended after ${this.receivedBytes} of ${this.#corpus.totalBytes} bytes (${this.receivedCount} of ${this.#corpus.mails.length} mails complete)`;
  }
}

/** The error to report once a JSON reader has reached the end, if it came up short. */
export function finalMessageError(checker: MessageChecker, expectedCount: number): string | undefined {
  if (checker.error !== undefined) return checker.error;
  if (checker.receivedCount !== expectedCount) return `stream ended after ${checker.receivedCount} of ${expectedCount} mails`;
  return undefined;
}
