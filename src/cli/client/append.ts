/**
 * `cairn append`: one POST (PROTOCOL.md §5.2) whose body is streamed from a file or stdin, never
 * held whole in memory by the client. The stream's content type is sent (from `--content-type`,
 * else learnt with a HEAD, which also fails fast on a missing stream before stdin is read). A
 * progress bar (cli-progress) is drawn on stderr when stderr is a terminal and the input's size is
 * known and large.
 */
import { createReadStream, fstatSync, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import cliProgress from 'cli-progress';
import { CliError, EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE } from '../exit-codes.ts';
import { send, type ClientOptions } from './http.ts';


/** Inputs at least this large get a progress bar (smaller ones finish before it is worth drawing). */
export const PROGRESS_MIN_BYTES = 1024 * 1024;

export interface AppendOptions extends ClientOptions {
  contentType?: string;
  /** Close the stream with this append (`Stream-Closed: true`). */
  close?: boolean;
  /** Idempotent producer headers (PROTOCOL.md §5.2.1): all three or none. */
  producerId?: string;
  producerEpoch?: number;
  producerSeq?: number;
  /** `Stream-Seq`, the writer's own sequence (§5.2). */
  seq?: string;
  /** Draw a progress bar when it makes sense (`--no-progress` turns it off). */
  progress: boolean;
}

/** Appends the file (or stdin for `-`/undefined); resolves with the stream's new `Stream-Next-Offset`. */
export async function appendStream(url: URL, file: string | undefined, options: AppendOptions): Promise<string> {
  const producer = [options.producerId, options.producerEpoch, options.producerSeq];
  if (producer.some((value) => value !== undefined) && producer.some((value) => value === undefined)) {
    throw new CliError(EXIT_USAGE, 'append: --producer-id, --producer-epoch and --producer-seq go together');
  }
  let contentType = options.contentType;
  if (contentType === undefined) {
    const head = await send(url, { method: 'HEAD' }, options);
    contentType = head.headers.get('content-type') ?? 'application/octet-stream';
  }

  const fromStdin = file === undefined || file === '-';
  let sizeBytes: number | undefined;
  try {
    const stat = fromStdin ? fstatSync(0) : statSync(file);
    if (stat.isFile()) sizeBytes = stat.size;
  } catch (error) {
    throw new CliError(EXIT_ERROR, `append: cannot read ${file}: ${(error as Error).message}`);
  }
  const input: Readable = fromStdin ? process.stdin : createReadStream(file);
  input.on('error', () => undefined); // reported through the request body below

  const headers: Record<string, string> = { 'content-type': contentType };
  if (sizeBytes !== undefined) headers['content-length'] = String(sizeBytes);
  if (options.close === true) headers['stream-closed'] = 'true';
  if (options.producerId !== undefined) {
    headers['producer-id'] = options.producerId;
    headers['producer-epoch'] = String(options.producerEpoch);
    headers['producer-seq'] = String(options.producerSeq);
  }
  if (options.seq !== undefined) headers['stream-seq'] = options.seq;

  const showProgress = options.progress && process.stderr.isTTY === true && sizeBytes !== undefined && sizeBytes >= PROGRESS_MIN_BYTES;
  const bar = showProgress
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: 'append [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted} left', hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let sentBytes = 0;
  const counted = input.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        sentBytes += chunk.length;
        bar?.update(sentBytes);
        callback(null, chunk);
      },
    }),
  );
  input.once('error', (error) => counted.destroy(error));
  bar?.start(sizeBytes ?? 0, 0);
  try {
    const response = await send(
      url,
      { method: 'POST', headers, body: Readable.toWeb(counted) as ReadableStream<Uint8Array>, duplex: 'half' },
      options,
    );
    await response.body?.cancel();
    return response.headers.get('stream-next-offset') ?? '';
  } catch (error) {
    throw await explainBrokenUpload(error, url, sentBytes, options);
  } finally {
    bar?.stop();
  }
}

/**
 * A server that refuses a body of unknown length (stdin) mid-upload, e.g. with 413 above its
 * `--append-bytes-max`, closes the connection, and fetch reports only the broken pipe. If the
 * server still answers a HEAD, it is up and refused the body: EXIT_ERROR with that explanation;
 * otherwise the server went away: the original EXIT_UNAVAILABLE.
 */
async function explainBrokenUpload(error: unknown, url: URL, sentBytes: number, options: ClientOptions): Promise<unknown> {
  if (!(error instanceof CliError) || error.exitCode !== EXIT_UNAVAILABLE || sentBytes === 0) return error;
  try {
    await send(url, { method: 'HEAD' }, options);
  } catch {
    return error;
  }
  return new CliError(
    EXIT_ERROR,
    `POST ${url.href}: the server closed the connection after ${sentBytes} bytes of the body were sent; ` +
      'it is up, so it refused the append (a body above its --append-bytes-max gets 413)',
    { cause: error },
  );
}
