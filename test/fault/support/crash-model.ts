/**
 * Writers and expectation models for the crash test (test/fault/crash.test.ts).
 *
 * Each "subject" is one stream with its writers. A writer sends appends one at a time and keeps
 * what the server acknowledged (`acked`) and the one request in flight when the server was killed
 * (`pending`, outcome unknown). After a restart `recover` reads the whole stream and checks that
 * it is exactly the acked items, optionally followed by the whole in-flight item once; then it
 * settles the in-flight item: a plain append is kept if present and forgotten if absent (never
 * retried: plain appends are not idempotent), an idempotent producer retries it with the same
 * (id, epoch, seq), which must answer 204 if the data survived and 200 if it did not.
 * `verify` then requires the stream to be exactly the acked items.
 */
import { seededRandom, type RandomSource } from '../../../src/clock.ts';
import { parseOffsetToken } from '../../../src/protocol/offset.ts';
import { header, type HttpClient, type Response } from './http-client.ts';

// -------------------------------------------------------------------------------------------------
// Randomness

export class Rng {
  readonly #source: RandomSource;

  constructor(seed: number) {
    this.#source = seededRandom(seed);
  }

  float(): number {
    return this.#source.next();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#source.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.#source.next() < probability;
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) out.writeUInt32LE(Math.floor(this.#source.next() * 4294967296), i);
    for (; i < length; i++) out[i] = Math.floor(this.#source.next() * 256);
    return out;
  }

  /** A size in [1, max], log-uniform: mostly small, sometimes up to `max`. */
  size(max: number): number {
    return Math.min(max, Math.max(1, Math.floor(Math.exp(this.#source.next() * Math.log(max + 1)))));
  }
}

/** A seed for one writer, derived from the run's seed. */
export function deriveSeed(seed: number, salt: number): number {
  return (seed ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0;
}

// -------------------------------------------------------------------------------------------------
// The run: what writers share during one server life

export interface Stats {
  acked: number;
  inFlightAtKill: number;
  plainPresent: number;
  plainLost: number;
  retried200: number;
  retried204: number;
  closedProbes: number;
}

export interface Run {
  readonly cycle: number;
  readonly client: HttpClient;
  /** Set synchronously right before the SIGKILL; writers start no request after it. */
  readonly stopped: boolean;
  /** Problems seen during the load phase (checked after the kill). */
  readonly failures: string[];
  readonly stats: Stats;
  /** Kill the server `delayMs` from now (if not already killed). */
  requestKill(delayMs: number): void;
}

export interface Subject {
  readonly name: string;
  /** The stream path as the server knows it (the URL path without `/v1/stream/`). */
  readonly streamPath: string;
  /** JSON mode: stored as whole messages, each followed by ','. */
  readonly json: boolean;
  create(run: Run): Promise<void>;
  /** The writer loops for one load phase; they return once `run.stopped` (or on a failure). */
  writers(run: Run): Promise<void>[];
  /** After a restart: check acked + in-flight data, settle the in-flight requests. */
  recover(run: Run): Promise<void>;
  /** Strict check: exactly the acked data. */
  verify(run: Run): Promise<void>;
  readonly ackedCount: number;
  /** Offsets seen by the last `recover` or `verify` (undefined before the first). */
  readonly observed: Observation | undefined;
  /**
   * The stream's bytes in stored form (what segments hold; byte streams: the bodies, JSON: each
   * message followed by ','), as of the last `verify`, which proved them equal to the acked data.
   */
  stored(): Buffer;
}

/** Positions (logical bytes) around one full read of a stream. */
export interface Observation {
  /** `Cairn-Sealed-Offset` from a HEAD right before the read: bytes below it were read from segments. */
  sealedBefore: number;
  /** `Cairn-Sealed-Offset` from the HEAD after the read. */
  sealedAfter: number;
  /** The tail (`Stream-Next-Offset`), equal for the read and the HEAD after it. */
  tail: number;
}

/** A broken expectation found while the server is up and idle (recovery or verification). */
export class CheckFailure extends Error {}

interface Expected {
  status: number;
  headers?: Record<string, string>;
}

/** Why `response` does not match, or undefined. */
function mismatch(response: Response, expected: Expected): string | undefined {
  const problems: string[] = [];
  if (response.status !== expected.status) problems.push(`status ${response.status} (expected ${expected.status})`);
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    if (header(response, name) !== value) problems.push(`${name}: '${header(response, name)}' (expected '${value}')`);
  }
  if (problems.length === 0) return undefined;
  return `${problems.join(', ')}; body: ${JSON.stringify(response.body.toString('utf8', 0, 200))}`;
}

function demand(response: Response, expected: Expected, what: string): void {
  const problem = mismatch(response, expected);
  if (problem !== undefined) throw new CheckFailure(`${what}: ${problem}`);
}

/** A request during the load phase; undefined when it failed (in flight at the kill, or a failure). */
async function send(run: Run, who: string, path: string, headers: Record<string, string>, body: Buffer): Promise<Response | undefined> {
  try {
    return await run.client.request('POST', path, { headers, body });
  } catch (error) {
    if (run.stopped) {
      run.stats.inFlightAtKill++;
    } else {
      run.failures.push(`${who}: POST failed while the server was running: ${(error as Error).message}`);
    }
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// -------------------------------------------------------------------------------------------------
// Reading

interface FullRead {
  bodies: Buffer[];
  closed: boolean;
  nextOffset: string;
  /** Sealed position from a HEAD right before the first GET. */
  sealedBefore: number;
}

/** The position named by an offset token header; `what` names it in the failure. */
function positionOf(token: string, what: string): number {
  const parsed = parseOffsetToken(token);
  if (parsed === undefined) throw new CheckFailure(`${what}: '${token}' is not an offset token`);
  return parsed.position;
}

/** `Cairn-Sealed-Offset` of a HEAD response as a position (0 when the server sends none). */
function sealedPositionOf(response: Response, path: string): number {
  const token = header(response, 'cairn-sealed-offset');
  return token === '' ? 0 : positionOf(token, `HEAD ${path}: Cairn-Sealed-Offset`);
}

/**
 * Reads a stream from the start, following Stream-Next-Offset until Stream-Up-To-Date (after a
 * HEAD that tells how much of it is sealed, so callers know the read crossed into segments).
 */
async function readAll(client: HttpClient, path: string): Promise<FullRead> {
  const head = await client.request('HEAD', path);
  demand(head, { status: 200 }, `HEAD ${path} before reading`);
  const sealedBefore = sealedPositionOf(head, path);
  const bodies: Buffer[] = [];
  let offset = '-1';
  for (let i = 0; i < 100_000; i++) {
    const response = await client.request('GET', `${path}?offset=${encodeURIComponent(offset)}`);
    demand(response, { status: 200 }, `GET ${path} at offset ${offset}`);
    bodies.push(response.body);
    const next = header(response, 'stream-next-offset');
    if (next === '') throw new CheckFailure(`GET ${path} at offset ${offset}: no Stream-Next-Offset`);
    if (header(response, 'stream-up-to-date') === 'true') {
      return { bodies, closed: header(response, 'stream-closed') === 'true', nextOffset: next, sealedBefore };
    }
    if (next === offset) throw new CheckFailure(`GET ${path}: no progress at offset ${offset} without Stream-Up-To-Date`);
    offset = next;
  }
  throw new CheckFailure(`GET ${path}: never up to date`);
}

/**
 * HEAD agrees with the read: 200, same tail offset, same closure, the stream's content type, and
 * a sealed offset that did not go back during the read and is at most the tail.
 */
async function checkHead(client: HttpClient, path: string, read: FullRead, contentType: string, closed: boolean): Promise<Observation> {
  const response = await client.request('HEAD', path);
  demand(
    response,
    { status: 200, headers: { 'stream-next-offset': read.nextOffset, 'stream-closed': closed ? 'true' : '' } },
    `HEAD ${path}`,
  );
  if (!header(response, 'content-type').startsWith(contentType)) {
    throw new CheckFailure(`HEAD ${path}: Content-Type '${header(response, 'content-type')}' (expected ${contentType})`);
  }
  if (read.closed !== closed) throw new CheckFailure(`GET ${path}: Stream-Closed ${read.closed} on the last read (expected ${closed})`);
  const tail = positionOf(read.nextOffset, `GET ${path}: Stream-Next-Offset`);
  const sealedAfter = sealedPositionOf(response, path);
  if (sealedAfter < read.sealedBefore || sealedAfter > tail) {
    throw new CheckFailure(`HEAD ${path}: sealed position ${sealedAfter} after the read, ${read.sealedBefore} before it, tail ${tail}`);
  }
  return { sealedBefore: read.sealedBefore, sealedAfter, tail };
}

/** The stored form of JSON read bodies: each `[m1,m2]` becomes `m1,m2,` (`[]` nothing). */
function jsonStoredForm(bodies: Buffer[]): Buffer {
  return Buffer.concat(bodies.filter((body) => body.length > 2).map((body) => Buffer.concat([body.subarray(1, body.length - 1), COMMA])));
}
const COMMA = Buffer.from(',');

async function createStream(client: HttpClient, path: string, contentType: string): Promise<void> {
  const response = await client.request('PUT', path, { headers: { 'content-type': contentType } });
  demand(response, { status: 201 }, `PUT ${path}`);
}

/**
 * Matches one writer's items as read back against its acked items and its in-flight group.
 * @returns whether the in-flight group is present (whole, once, after every acked item).
 * @throws CheckFailure for a missing, changed, reordered, duplicated or partial item.
 */
function matchSequence<T>(
  who: string,
  observed: T[],
  acked: T[],
  inFlight: T[] | undefined,
  same: (a: T, b: T) => boolean,
  show: (item: T) => string,
): boolean {
  const common = Math.min(observed.length, acked.length);
  for (let i = 0; i < common; i++) {
    if (!same(observed[i], acked[i])) {
      throw new CheckFailure(`${who}: item ${i} read back is ${show(observed[i])}, but the acked item ${i} is ${show(acked[i])}`);
    }
  }
  if (observed.length < acked.length) {
    throw new CheckFailure(
      `${who}: only ${observed.length} of ${acked.length} acked items are present; first missing: ${show(acked[observed.length])}`,
    );
  }
  const extra = observed.slice(acked.length);
  if (extra.length === 0) return false;
  if (inFlight !== undefined && extra.length === inFlight.length && extra.every((item, i) => same(item, inFlight[i]))) return true;
  throw new CheckFailure(
    `${who}: ${extra.length} unexpected item(s) after the ${acked.length} acked ones, first ${show(extra[0])}` +
      (inFlight === undefined ? '; nothing was in flight' : `; in flight were ${inFlight.length} item(s), first ${show(inFlight[0])}`),
  );
}

// -------------------------------------------------------------------------------------------------
// A binary stream with one sequential writer (plain appends or an idempotent producer)

const BINARY = 'application/octet-stream';
const MAX_BINARY_APPEND = 64 * 1024;

export interface ClosePlan {
  /** The first cycle in which the writer closes the stream. */
  cycle: number;
  /** How long into that cycle's load phase. */
  afterMs: number;
  /** Kill the server a few milliseconds after sending the close, while it is in flight. */
  killInFlight: boolean;
}

interface BytePending {
  body: Buffer;
  seq: number | undefined;
  close: boolean;
}

export class ByteStream implements Subject {
  readonly name: string;
  readonly path: string;
  readonly streamPath: string;
  readonly json = false;
  readonly #rng: Rng;
  readonly #appendBytesMax: number;
  readonly #producerId: string | undefined;
  readonly #closePlan: ClosePlan | undefined;
  readonly #acked: Buffer[] = [];
  #ackedBytes = 0;
  #pending: BytePending | undefined;
  #nextSeq = 0;
  #closeSeq: number | undefined;
  closed = false;
  closedInCycle: number | undefined;
  observed: Observation | undefined;

  /** `appendBytesMax`: largest random append (default 64 KiB); sizes are log-uniform. */
  constructor(options: { name: string; seed: number; producerId?: string; closePlan?: ClosePlan; appendBytesMax?: number }) {
    this.name = options.name;
    this.streamPath = `crash/${options.name}`;
    this.path = `/v1/stream/${this.streamPath}`;
    this.#rng = new Rng(options.seed);
    this.#appendBytesMax = options.appendBytesMax ?? MAX_BINARY_APPEND;
    this.#producerId = options.producerId;
    this.#closePlan = options.closePlan;
  }

  get ackedCount(): number {
    return this.#acked.length;
  }

  get ackedBytes(): number {
    return this.#ackedBytes;
  }

  create(run: Run): Promise<void> {
    return createStream(run.client, this.path, BINARY);
  }

  #headers(seq: number | undefined, close: boolean): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': BINARY };
    if (seq !== undefined && this.#producerId !== undefined) {
      headers['producer-id'] = this.#producerId;
      headers['producer-epoch'] = '0';
      headers['producer-seq'] = String(seq);
    }
    if (close) headers['stream-closed'] = 'true';
    return headers;
  }

  #expectedAck(pending: BytePending, status: number): Expected {
    const headers: Record<string, string> = {};
    if (pending.seq !== undefined) {
      headers['producer-epoch'] = '0';
      headers['producer-seq'] = String(pending.seq);
    }
    if (pending.close) headers['stream-closed'] = 'true';
    return { status, headers };
  }

  #ack(run: Run): void {
    const pending = this.#pending;
    if (pending === undefined) throw new Error('nothing pending');
    this.#acked.push(pending.body);
    this.#ackedBytes += pending.body.length;
    if (pending.seq !== undefined) this.#nextSeq = pending.seq + 1;
    if (pending.close) {
      this.closed = true;
      this.closedInCycle = run.cycle;
      this.#closeSeq = pending.seq;
    }
    this.#pending = undefined;
    run.stats.acked++;
  }

  writers(run: Run): Promise<void>[] {
    return [this.#write(run)];
  }

  async #write(run: Run): Promise<void> {
    const started = performance.now();
    while (!run.stopped) {
      if (this.closed) {
        if (!(await this.#probeClosed(run))) return;
        await sleep(this.#rng.int(10, 50));
        continue;
      }
      const plan = this.#closePlan;
      const close = plan !== undefined && run.cycle >= plan.cycle && performance.now() - started >= plan.afterMs;
      const body = close
        ? Buffer.concat([Buffer.from(`final append of ${this.name}:`), this.#rng.bytes(this.#rng.int(0, 1024))])
        : this.#rng.bytes(this.#rng.size(this.#appendBytesMax));
      const seq = this.#producerId === undefined ? undefined : this.#nextSeq;
      const pending: BytePending = { body, seq, close };
      this.#pending = pending;
      const sent = send(run, this.name, this.path, this.#headers(seq, close), body);
      if (close && plan?.killInFlight === true) run.requestKill(this.#rng.int(0, 5));
      const response = await sent;
      if (response === undefined) return;
      const problem = mismatch(response, this.#expectedAck(pending, seq === undefined ? 204 : 200));
      if (problem !== undefined) {
        run.failures.push(`${this.name}: append #${this.#acked.length}${seq === undefined ? '' : ` (seq ${seq})`}: ${problem}`);
        return;
      }
      this.#ack(run);
    }
  }

  /** After closure: appends are refused with 409 and Stream-Closed. */
  async #probeClosed(run: Run): Promise<boolean> {
    const seq = this.#producerId !== undefined && this.#rng.chance(0.5) ? this.#nextSeq : undefined;
    const response = await send(run, this.name, this.path, this.#headers(seq, false), Buffer.from('after close'));
    if (response === undefined) return false;
    const problem = mismatch(response, { status: 409, headers: { 'stream-closed': 'true' } });
    if (problem !== undefined) {
      run.failures.push(`${this.name}: append to the closed stream${seq === undefined ? '' : ` (seq ${seq})`}: ${problem}`);
      return false;
    }
    run.stats.closedProbes++;
    return true;
  }

  async recover(run: Run): Promise<void> {
    const read = await readAll(run.client, this.path);
    const actual = Buffer.concat(read.bodies);
    const pending = this.#pending;
    const present = pending !== undefined && actual.length === this.#ackedBytes + pending.body.length;
    this.#checkBytes(present ? actual.subarray(0, this.#ackedBytes) : actual, pending);
    if (present && !actual.subarray(this.#ackedBytes).equals(pending.body)) {
      throw new CheckFailure(`${this.name}: the ${pending.body.length} B after the acked appends differ from the in-flight append`);
    }
    const closed = this.closed || (present && pending.close);
    this.observed = await checkHead(run.client, this.path, read, BINARY, closed);

    if (pending !== undefined) {
      if (pending.seq === undefined) {
        if (present) run.stats.plainPresent++;
        else run.stats.plainLost++;
        if (present) this.#ack(run);
        else this.#pending = undefined;
      } else {
        const status = present ? 204 : 200;
        const response = await run.client.request('POST', this.path, { headers: this.#headers(pending.seq, pending.close), body: pending.body });
        demand(
          response,
          this.#expectedAck(pending, status),
          `${this.name}: retry of the in-flight ${pending.close ? 'closing ' : ''}append (seq ${pending.seq}, ${present ? 'present' : 'absent'} after restart)`,
        );
        if (present) run.stats.retried204++;
        else run.stats.retried200++;
        this.#ack(run);
      }
    }
    if (this.closed) await this.#checkClosed(run);
  }

  /** A closed stream refuses appends, and repeated closes are idempotent. */
  async #checkClosed(run: Run): Promise<void> {
    const client = run.client;
    let response = await client.request('POST', this.path, { headers: this.#headers(undefined, false), body: Buffer.from('after close') });
    demand(response, { status: 409, headers: { 'stream-closed': 'true' } }, `${this.name}: plain append after close`);
    response = await client.request('POST', this.path, { headers: { 'stream-closed': 'true' } });
    demand(response, { status: 204, headers: { 'stream-closed': 'true' } }, `${this.name}: close-only request on the closed stream`);
    if (this.#producerId !== undefined && this.#closeSeq !== undefined) {
      response = await client.request('POST', this.path, { headers: this.#headers(this.#nextSeq, false), body: Buffer.from('after close') });
      demand(response, { status: 409, headers: { 'stream-closed': 'true' } }, `${this.name}: producer append (seq ${this.#nextSeq}) after close`);
      const final = this.#acked[this.#acked.length - 1];
      response = await client.request('POST', this.path, { headers: this.#headers(this.#closeSeq, true), body: final });
      demand(
        response,
        { status: 204, headers: { 'stream-closed': 'true' } },
        `${this.name}: retry of the closing append (seq ${this.#closeSeq})`,
      );
    }
    run.stats.closedProbes += 2;
  }

  #checkBytes(actual: Buffer, pending: BytePending | undefined): void {
    let at = 0;
    for (let i = 0; i < this.#acked.length; i++) {
      const part = this.#acked[i];
      if (at + part.length > actual.length) {
        throw new CheckFailure(
          `${this.name}: acked append #${i} (${part.length} B at byte ${at}) is missing; the stream holds ${actual.length} B, ` +
            `acked ${this.#ackedBytes} B${pending === undefined ? '' : ` (+${pending.body.length} B in flight)`}`,
        );
      }
      if (actual.compare(part, 0, part.length, at, at + part.length) !== 0) {
        throw new CheckFailure(`${this.name}: acked append #${i} (${part.length} B at byte ${at}) differs from what was sent`);
      }
      at += part.length;
    }
    if (at !== actual.length) {
      throw new CheckFailure(
        `${this.name}: ${actual.length - at} unexpected bytes after the ${this.#acked.length} acked appends` +
          (pending === undefined ? ' (nothing in flight)' : ` (the in-flight append was ${pending.body.length} B)`),
      );
    }
  }

  async verify(run: Run): Promise<void> {
    const read = await readAll(run.client, this.path);
    this.#checkBytes(Buffer.concat(read.bodies), undefined);
    this.observed = await checkHead(run.client, this.path, read, BINARY, this.closed);
    if (this.observed.tail !== this.#ackedBytes) {
      throw new CheckFailure(`${this.name}: the tail is at ${this.observed.tail}, but ${this.#ackedBytes} B were acked`);
    }
  }

  stored(): Buffer {
    return Buffer.concat(this.#acked);
  }
}

// -------------------------------------------------------------------------------------------------
// A binary stream with several concurrent plain writers, each append a self-describing frame

const FRAME_MAGIC = 0x43524631; // 'CRF1'
const FRAME_HEADER = 16; // magic u32, writer u32, counter u32, payload length u32

function frameLabel(frame: Buffer): string {
  return `frame(writer ${frame.readUInt32BE(4)}, #${frame.readUInt32BE(8)}, ${frame.readUInt32BE(12)} B)`;
}

interface FrameWriter {
  id: number;
  rng: Rng;
  acked: Buffer[];
  pending: Buffer | undefined;
  counter: number;
}

export class FramedStream implements Subject {
  readonly name: string;
  readonly path: string;
  readonly streamPath: string;
  readonly json = false;
  readonly #writers: FrameWriter[];
  readonly #appendBytesMax: number;
  #stored: Buffer = Buffer.alloc(0);
  observed: Observation | undefined;

  /** `appendBytesMax`: largest frame (default 64 KiB). */
  constructor(options: { name: string; seed: number; writers: number; appendBytesMax?: number }) {
    this.name = options.name;
    this.streamPath = `crash/${options.name}`;
    this.path = `/v1/stream/${this.streamPath}`;
    this.#appendBytesMax = Math.max(FRAME_HEADER + 1, options.appendBytesMax ?? MAX_BINARY_APPEND);
    this.#writers = Array.from({ length: options.writers }, (_, id) => ({
      id,
      rng: new Rng(deriveSeed(options.seed, id)),
      acked: [],
      pending: undefined,
      counter: 0,
    }));
  }

  get ackedCount(): number {
    return this.#writers.reduce((sum, w) => sum + w.acked.length, 0);
  }

  create(run: Run): Promise<void> {
    return createStream(run.client, this.path, BINARY);
  }

  writers(run: Run): Promise<void>[] {
    return this.#writers.map((writer) => this.#write(run, writer));
  }

  async #write(run: Run, writer: FrameWriter): Promise<void> {
    while (!run.stopped) {
      const payload = writer.rng.bytes(writer.rng.size(this.#appendBytesMax - FRAME_HEADER));
      const frame = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
      frame.writeUInt32BE(FRAME_MAGIC, 0);
      frame.writeUInt32BE(writer.id, 4);
      frame.writeUInt32BE(writer.counter++, 8);
      frame.writeUInt32BE(payload.length, 12);
      payload.copy(frame, FRAME_HEADER);
      writer.pending = frame;
      const response = await send(run, `${this.name}/w${writer.id}`, this.path, { 'content-type': BINARY }, frame);
      if (response === undefined) return;
      const problem = mismatch(response, { status: 204 });
      if (problem !== undefined) {
        run.failures.push(`${this.name}/w${writer.id}: append of ${frameLabel(frame)}: ${problem}`);
        return;
      }
      writer.acked.push(frame);
      writer.pending = undefined;
      run.stats.acked++;
    }
  }

  /** Splits the stream into frames per writer. */
  #parse(data: Buffer): Buffer[][] {
    const byWriter: Buffer[][] = this.#writers.map(() => []);
    let at = 0;
    while (at < data.length) {
      if (at + FRAME_HEADER > data.length) throw new CheckFailure(`${this.name}: truncated frame header at byte ${at} of ${data.length}`);
      if (data.readUInt32BE(at) !== FRAME_MAGIC) throw new CheckFailure(`${this.name}: no frame starts at byte ${at} (corrupt or partial append)`);
      const writer = data.readUInt32BE(at + 4);
      const length = data.readUInt32BE(at + 12);
      if (writer >= byWriter.length || at + FRAME_HEADER + length > data.length) {
        throw new CheckFailure(`${this.name}: malformed frame at byte ${at} (writer ${writer}, ${length} B, stream ${data.length} B)`);
      }
      byWriter[writer].push(data.subarray(at, at + FRAME_HEADER + length));
      at += FRAME_HEADER + length;
    }
    return byWriter;
  }

  async recover(run: Run): Promise<void> {
    const read = await readAll(run.client, this.path);
    const byWriter = this.#parse(Buffer.concat(read.bodies));
    this.observed = await checkHead(run.client, this.path, read, BINARY, false);
    for (const writer of this.#writers) {
      const present = matchSequence(
        `${this.name}/w${writer.id}`,
        byWriter[writer.id],
        writer.acked,
        writer.pending === undefined ? undefined : [writer.pending],
        (a, b) => a.equals(b),
        frameLabel,
      );
      if (writer.pending !== undefined) {
        if (present) {
          writer.acked.push(writer.pending);
          run.stats.plainPresent++;
          run.stats.acked++;
        } else {
          run.stats.plainLost++;
        }
        writer.pending = undefined;
      }
    }
  }

  async verify(run: Run): Promise<void> {
    const read = await readAll(run.client, this.path);
    const data = Buffer.concat(read.bodies);
    const byWriter = this.#parse(data);
    this.observed = await checkHead(run.client, this.path, read, BINARY, false);
    for (const writer of this.#writers) {
      matchSequence(`${this.name}/w${writer.id}`, byWriter[writer.id], writer.acked, undefined, (a, b) => a.equals(b), frameLabel);
    }
    if (data.length !== this.observed.tail) {
      throw new CheckFailure(`${this.name}: the reads hold ${data.length} B, but the tail is at ${this.observed.tail}`);
    }
    this.#stored = data;
  }

  /** The interleaving of the writers is the server's choice: the last verified read (frames checked per writer). */
  stored(): Buffer {
    return this.#stored;
  }
}

// -------------------------------------------------------------------------------------------------
// A JSON stream with idempotent producers and a plain writer, messages tagged with their writer

const JSON_TYPE = 'application/json';
/** Characters for message padding, including ones JSON must escape and multi-byte UTF-8. */
const PAD_ALPHABET = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "\\/é中💡\n\t,[]{}'];

interface JsonPending {
  messages: string[];
  body: Buffer;
  seq: number | undefined;
}

interface JsonWriter {
  id: string;
  producer: boolean;
  rng: Rng;
  acked: string[];
  pending: JsonPending | undefined;
  counter: number;
  nextSeq: number;
}

export class JsonStream implements Subject {
  readonly name: string;
  readonly path: string;
  readonly streamPath: string;
  readonly json = true;
  readonly #writers: JsonWriter[];
  readonly #padMax: number;
  #ackedAppends = 0;
  #stored: Buffer = Buffer.alloc(0);
  observed: Observation | undefined;

  /** `padMax`: longest random padding of a message, in characters (default 300). */
  constructor(options: { name: string; seed: number; producers: number; plainWriters: number; padMax?: number }) {
    this.name = options.name;
    this.#padMax = options.padMax ?? 300;
    this.streamPath = `crash/${options.name}`;
    this.path = `/v1/stream/${this.streamPath}`;
    const ids = [
      ...Array.from({ length: options.producers }, (_, i) => ({ id: `producer-${i}`, producer: true })),
      ...Array.from({ length: options.plainWriters }, (_, i) => ({ id: `plain-${i}`, producer: false })),
    ];
    this.#writers = ids.map(({ id, producer }, i) => ({
      id,
      producer,
      rng: new Rng(deriveSeed(options.seed, i)),
      acked: [],
      pending: undefined,
      counter: 0,
      nextSeq: 0,
    }));
  }

  get ackedCount(): number {
    return this.#ackedAppends;
  }

  create(run: Run): Promise<void> {
    return createStream(run.client, this.path, JSON_TYPE);
  }

  writers(run: Run): Promise<void>[] {
    return this.#writers.map((writer) => this.#write(run, writer));
  }

  #headers(writer: JsonWriter, seq: number | undefined): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': JSON_TYPE };
    if (seq !== undefined) {
      headers['producer-id'] = writer.id;
      headers['producer-epoch'] = '0';
      headers['producer-seq'] = String(seq);
    }
    return headers;
  }

  #expectedAck(seq: number | undefined, status: number): Expected {
    return seq === undefined ? { status } : { status, headers: { 'producer-epoch': '0', 'producer-seq': String(seq) } };
  }

  #batch(writer: JsonWriter, seq: number | undefined): JsonPending {
    const rng = writer.rng;
    const messages: string[] = [];
    const count = rng.int(1, 4);
    for (let i = 0; i < count; i++) {
      let pad = '';
      const padLength = rng.int(0, this.#padMax);
      for (let j = 0; j < padLength; j++) pad += PAD_ALPHABET[rng.int(0, PAD_ALPHABET.length - 1)];
      messages.push(JSON.stringify({ w: writer.id, n: writer.counter++, seq: seq ?? null, pad }));
    }
    // A single message is sometimes sent bare rather than as a one-element array.
    const text = count === 1 && rng.chance(0.5) ? messages[0] : `[${messages.join(',')}]`;
    return { messages, body: Buffer.from(text), seq };
  }

  async #write(run: Run, writer: JsonWriter): Promise<void> {
    while (!run.stopped) {
      const seq = writer.producer ? writer.nextSeq : undefined;
      const pending = this.#batch(writer, seq);
      writer.pending = pending;
      const response = await send(run, `${this.name}/${writer.id}`, this.path, this.#headers(writer, seq), pending.body);
      if (response === undefined) return;
      const problem = mismatch(response, this.#expectedAck(seq, seq === undefined ? 204 : 200));
      if (problem !== undefined) {
        run.failures.push(`${this.name}/${writer.id}: append${seq === undefined ? '' : ` (seq ${seq})`}: ${problem}`);
        return;
      }
      this.#ack(run, writer);
    }
  }

  #ack(run: Run, writer: JsonWriter): void {
    const pending = writer.pending;
    if (pending === undefined) throw new Error('nothing pending');
    writer.acked.push(...pending.messages);
    if (pending.seq !== undefined) writer.nextSeq = pending.seq + 1;
    writer.pending = undefined;
    this.#ackedAppends++;
    run.stats.acked++;
  }

  async #readMessages(run: Run): Promise<{ read: FullRead; byWriter: Map<string, string[]> }> {
    const read = await readAll(run.client, this.path);
    const byWriter = new Map<string, string[]>(this.#writers.map((w) => [w.id, []]));
    for (const body of read.bodies) {
      let value: unknown;
      try {
        value = JSON.parse(body.toString('utf8'));
      } catch (error) {
        throw new CheckFailure(`${this.name}: a read returned invalid JSON (${(error as Error).message})`);
      }
      if (!Array.isArray(value)) throw new CheckFailure(`${this.name}: a read did not return a JSON array`);
      for (const message of value) {
        const text = JSON.stringify(message);
        const list = byWriter.get((message as { w?: unknown } | null)?.w as string);
        if (list === undefined) throw new CheckFailure(`${this.name}: message from no known writer: ${text.slice(0, 120)}`);
        list.push(text);
      }
    }
    this.observed = await checkHead(run.client, this.path, read, JSON_TYPE, false);
    return { read, byWriter };
  }

  async recover(run: Run): Promise<void> {
    const { byWriter } = await this.#readMessages(run);
    for (const writer of this.#writers) {
      const pending = writer.pending;
      const present = matchSequence(
        `${this.name}/${writer.id}`,
        byWriter.get(writer.id) ?? [],
        writer.acked,
        pending?.messages,
        (a, b) => a === b,
        (text) => text.slice(0, 120),
      );
      if (pending === undefined) continue;
      if (pending.seq === undefined) {
        if (present) {
          run.stats.plainPresent++;
          this.#ack(run, writer);
        } else {
          run.stats.plainLost++;
          writer.pending = undefined;
        }
        continue;
      }
      const response = await run.client.request('POST', this.path, { headers: this.#headers(writer, pending.seq), body: pending.body });
      demand(
        response,
        this.#expectedAck(pending.seq, present ? 204 : 200),
        `${this.name}/${writer.id}: retry of the in-flight append (seq ${pending.seq}, ${present ? 'present' : 'absent'} after restart)`,
      );
      if (present) run.stats.retried204++;
      else run.stats.retried200++;
      this.#ack(run, writer);
    }
  }

  async verify(run: Run): Promise<void> {
    const { read, byWriter } = await this.#readMessages(run);
    for (const writer of this.#writers) {
      matchSequence(`${this.name}/${writer.id}`, byWriter.get(writer.id) ?? [], writer.acked, undefined, (a, b) => a === b, (text) => text.slice(0, 120));
    }
    const stored = jsonStoredForm(read.bodies);
    if (stored.length !== this.observed?.tail) {
      throw new CheckFailure(`${this.name}: the reads hold ${stored.length} stored bytes, but the tail is at ${this.observed?.tail}`);
    }
    this.#stored = stored;
  }

  /** The last verified read in stored form (messages checked per writer; the interleaving is the server's). */
  stored(): Buffer {
    return this.#stored;
  }
}

// -------------------------------------------------------------------------------------------------
// Stream lifecycles: creates (with a first body), appends, forks and deletes, by one writer

interface LifeEntry {
  path: string;
  /** The bytes the stream must hold. */
  expected: Buffer;
  fork: boolean;
  /** An offset token of this stream and the byte count it names (a fork point), if any. */
  forkPoint: { token: string; bytes: number } | undefined;
}

type LifeOp =
  | { kind: 'create'; entry: LifeEntry }
  | { kind: 'append'; entry: LifeEntry; body: Buffer }
  | { kind: 'fork'; entry: LifeEntry }
  | { kind: 'delete'; entry: LifeEntry };

/** Live streams kept at most; beyond it the writer deletes. */
const LIFE_LIVE_MAX = 6;
/** Deleted paths remembered and re-checked (404 or 410) after every restart. */
const LIFE_DELETED_KEPT = 30;

/**
 * Binary streams that are created (PUT with a first body), appended to, forked at a recorded
 * offset (the fork then appended to), and deleted (sources with forks are soft-deleted: 410),
 * by one sequential writer. A request in flight at the kill is settled after the restart: a create
 * or fork is present whole or absent (404), an append present whole or absent, a delete done
 * (404/410) or not (the stream unchanged). Deleted paths must stay gone across restarts.
 */
export class LifecycleStreams implements Subject {
  readonly name: string;
  readonly streamPath: string;
  readonly json = false;
  readonly #rng: Rng;
  readonly #live: LifeEntry[] = [];
  readonly #deleted: string[] = [];
  #pending: LifeOp | undefined;
  #counter = 0;
  #acked = 0;
  /** Operations acknowledged, by kind. */
  readonly counts = { create: 0, append: 0, fork: 0, delete: 0 };
  observed: Observation | undefined;

  constructor(options: { name: string; seed: number }) {
    this.name = options.name;
    this.streamPath = `crash/${options.name}`;
    this.#rng = new Rng(options.seed);
  }

  get ackedCount(): number {
    return this.#acked;
  }

  /** Bytes the live streams hold (as last verified), and how many streams are live. */
  get liveBytes(): number {
    return this.#live.reduce((sum, entry) => sum + entry.expected.length, 0);
  }

  get liveCount(): number {
    return this.#live.length;
  }

  async create(run: Run): Promise<void> {
    const entry = this.#newEntry(false, Buffer.from('first'));
    const response = await run.client.request('PUT', entry.path, { headers: { 'content-type': BINARY }, body: entry.expected });
    demand(response, { status: 201 }, `PUT ${entry.path}`);
    this.#live.push(entry);
  }

  #newEntry(fork: boolean, expected: Buffer): LifeEntry {
    return { path: `/v1/stream/${this.streamPath}/${fork ? 'fork' : 'src'}-${this.#counter++}`, expected, fork, forkPoint: undefined };
  }

  writers(run: Run): Promise<void>[] {
    return [this.#write(run)];
  }

  #choose(): LifeOp {
    const rng = this.#rng;
    const live = this.#live;
    const sources = live.filter((e) => !e.fork);
    const forkable = live.filter((e) => e.forkPoint !== undefined);
    const roll = rng.float();
    if (live.length > LIFE_LIVE_MAX || (live.length > 1 && roll < 0.12)) {
      return { kind: 'delete', entry: live[rng.int(0, live.length - 2)] };
    }
    if (sources.length === 0 || roll < 0.22) {
      return { kind: 'create', entry: this.#newEntry(false, rng.bytes(rng.int(1, 2048))) };
    }
    if (forkable.length > 0 && roll < 0.32) {
      const source = forkable[rng.int(0, forkable.length - 1)];
      const point = source.forkPoint!;
      const entry = this.#newEntry(true, source.expected.subarray(0, point.bytes));
      return { kind: 'fork', entry: { ...entry, forkPoint: undefined, forkedFrom: source.path, forkToken: point.token } as LifeEntry };
    }
    return { kind: 'append', entry: live[rng.int(0, live.length - 1)], body: rng.bytes(rng.size(8192)) };
  }

  #request(op: LifeOp): { method: string; path: string; headers: Record<string, string>; body?: Buffer; status: number } {
    switch (op.kind) {
      case 'create':
        return { method: 'PUT', path: op.entry.path, headers: { 'content-type': BINARY }, body: op.entry.expected, status: 201 };
      case 'fork': {
        const extra = op.entry as LifeEntry & { forkedFrom: string; forkToken: string };
        return {
          method: 'PUT',
          path: op.entry.path,
          headers: { 'content-type': BINARY, 'stream-forked-from': extra.forkedFrom, 'stream-fork-offset': extra.forkToken },
          status: 201,
        };
      }
      case 'append':
        return { method: 'POST', path: op.entry.path, headers: { 'content-type': BINARY }, body: op.body, status: 204 };
      case 'delete':
        return { method: 'DELETE', path: op.entry.path, headers: {}, status: 204 };
    }
  }

  #settle(op: LifeOp, response: Response | undefined): void {
    this.#acked++;
    this.counts[op.kind]++;
    switch (op.kind) {
      case 'create':
      case 'fork':
        this.#live.push(op.entry);
        break;
      case 'append': {
        op.entry.expected = Buffer.concat([op.entry.expected, op.body]);
        const token = response === undefined ? '' : header(response, 'stream-next-offset');
        // Remember this point to fork at (sometimes), with the bytes it names.
        if (token !== '' && (op.entry.forkPoint === undefined || this.#rng.chance(0.3))) op.entry.forkPoint = { token, bytes: op.entry.expected.length };
        break;
      }
      case 'delete':
        this.#live.splice(this.#live.indexOf(op.entry), 1);
        this.#deleted.push(op.entry.path);
        if (this.#deleted.length > LIFE_DELETED_KEPT) this.#deleted.shift();
        break;
    }
  }

  async #write(run: Run): Promise<void> {
    while (!run.stopped) {
      const op = this.#choose();
      const request = this.#request(op);
      this.#pending = op;
      let response: Response;
      try {
        response = await run.client.request(request.method, request.path, { headers: request.headers, body: request.body });
      } catch (error) {
        if (run.stopped) run.stats.inFlightAtKill++;
        else run.failures.push(`${this.name}: ${request.method} ${request.path} failed while the server was running: ${(error as Error).message}`);
        return;
      }
      const problem = mismatch(response, { status: request.status });
      if (problem !== undefined) {
        run.failures.push(`${this.name}: ${op.kind} ${request.method} ${request.path}: ${problem}`);
        return;
      }
      this.#pending = undefined;
      this.#settle(op, response);
      run.stats.acked++;
      await sleep(this.#rng.int(0, 3));
    }
  }

  /** The whole stream, or the status when it is not readable (404/410). */
  async #read(run: Run, path: string): Promise<Buffer | number> {
    const first = await run.client.request('HEAD', path);
    if (first.status === 404 || first.status === 410) return first.status;
    const read = await readAll(run.client, path);
    return Buffer.concat(read.bodies);
  }

  async recover(run: Run): Promise<void> {
    const op = this.#pending;
    this.#pending = undefined;
    if (op !== undefined) {
      const state = await this.#read(run, op.entry.path);
      const what = `${this.name}: ${op.kind} of ${op.entry.path} in flight at the kill`;
      switch (op.kind) {
        case 'create':
        case 'fork':
          if (state === 404) break;
          if (typeof state === 'number' || !state.equals(op.entry.expected)) {
            throw new CheckFailure(`${what}: expected absent (404) or whole (${op.entry.expected.length} B), got ${typeof state === 'number' ? state : `${state.length} B`}`);
          }
          this.#settle(op, undefined);
          run.stats.acked++;
          break;
        case 'append':
          if (typeof state === 'number') throw new CheckFailure(`${what}: the stream answers ${state}`);
          if (state.equals(Buffer.concat([op.entry.expected, op.body]))) {
            this.#settle(op, undefined);
            run.stats.acked++;
            run.stats.plainPresent++;
          } else if (state.equals(op.entry.expected)) {
            run.stats.plainLost++;
          } else {
            throw new CheckFailure(`${what}: ${state.length} B read, expected ${op.entry.expected.length} B or that plus the ${op.body.length} B append`);
          }
          break;
        case 'delete':
          if (state === 404 || state === 410) {
            this.#settle(op, undefined);
            run.stats.acked++;
          } else if (typeof state === 'number' || !state.equals(op.entry.expected)) {
            throw new CheckFailure(`${what}: the stream changed (${typeof state === 'number' ? state : `${state.length} B`})`);
          }
          break;
      }
    }
    await this.verify(run);
  }

  async verify(run: Run): Promise<void> {
    for (const entry of this.#live) {
      const state = await this.#read(run, entry.path);
      if (typeof state === 'number') throw new CheckFailure(`${this.name}: live ${entry.path} answers ${state}`);
      if (!state.equals(entry.expected)) {
        throw new CheckFailure(`${this.name}: ${entry.path} holds ${state.length} B, expected ${entry.expected.length} B (or the bytes differ)`);
      }
    }
    for (const path of this.#deleted) {
      const response = await run.client.request('GET', `${path}?offset=-1`);
      if (response.status !== 404 && response.status !== 410) throw new CheckFailure(`${this.name}: deleted ${path} answers ${response.status}`);
    }
  }

  stored(): Buffer {
    return Buffer.alloc(0);
  }
}
