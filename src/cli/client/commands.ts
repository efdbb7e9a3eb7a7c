/**
 * The client commands: `cairn create | append | read | tail | head | close | delete <stream-url>`,
 * and `cairn proxy create <upstream-url>` (./proxy.ts).
 * Each takes `--token` (or `CAIRN_TOKEN`), sent as `Authorization: Bearer`. Failures exit with the
 * codes of ../exit-codes.ts and one line on stderr.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { appendStream } from './append.ts';
import { send, type ClientOptions } from './http.ts';
import { writeOut } from './output.ts';
import { proxyCommand } from './proxy.ts';

/** A stream URL argument: absolute http(s). */
export function streamUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`expected a stream URL such as http://127.0.0.1:4437/v1/stream/demo, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`expected an http or https URL, got "${text}"`);
  return url;
}

function wholeNumber(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`expected a whole number, got "${text}"`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`expected a number up to 2^53-1, got "${text}"`);
  return value;
}

function tokenOption(): Option {
  return new Option('--token <token>', 'bearer token sent as Authorization: Bearer').env('CAIRN_TOKEN');
}

function clientCommand(name: string, description: string): Command {
  return new Command(name).description(description).argument('<stream-url>', 'e.g. http://127.0.0.1:4437/v1/stream/demo', streamUrl).addOption(tokenOption());
}

/** Headers whose values describe a stream (PROTOCOL.md §5.5, plus Cairn's own). */
function metadataHeaders(response: Response): [string, string][] {
  const out: [string, string][] = [];
  response.headers.forEach((value, name) => {
    if (name === 'content-type' || name.startsWith('stream-') || name.startsWith('cairn-')) out.push([name, value]);
  });
  return out.sort(([a], [b]) => a.localeCompare(b));
}

async function printLine(text: string): Promise<void> {
  if (text !== '') await writeOut(`${text}\n`);
}

export function clientCommands(): Command[] {
  const create = clientCommand('create', 'create a stream (PUT); prints its Stream-Next-Offset')
    .addOption(new Option('--content-type <type>', "the stream's content type (application/json: JSON mode)").default('application/octet-stream'))
    .addOption(new Option('--ttl-seconds <seconds>', 'expire after this long without reads or writes').argParser(wholeNumber).conflicts('expiresAt'))
    .addOption(new Option('--expires-at <time>', 'expire at this RFC 3339 time, e.g. 2030-01-01T00:00:00Z'))
    .option('--closed', 'create it closed (no appends ever)')
    .action(async (url: URL, flags: ClientOptions & { contentType: string; ttlSeconds?: number; expiresAt?: string; closed?: boolean }) => {
      const headers: Record<string, string> = { 'content-type': flags.contentType };
      if (flags.ttlSeconds !== undefined) headers['stream-ttl'] = String(flags.ttlSeconds);
      if (flags.expiresAt !== undefined) headers['stream-expires-at'] = flags.expiresAt;
      if (flags.closed === true) headers['stream-closed'] = 'true';
      const response = await send(url, { method: 'PUT', headers }, flags);
      await response.body?.cancel();
      await printLine(response.headers.get('stream-next-offset') ?? '');
    });

  const append = clientCommand('append', 'append a file, or stdin, as one append (POST); prints the new Stream-Next-Offset')
    .argument('[file]', 'file to append; - or absent: stdin')
    .option('--content-type <type>', "content type to send (default: the stream's, asked with HEAD)")
    .option('--close', 'close the stream with this append')
    .option('--producer-id <id>', 'idempotent producer id (with --producer-epoch and --producer-seq)')
    .addOption(new Option('--producer-epoch <n>', 'idempotent producer epoch').argParser(wholeNumber))
    .addOption(new Option('--producer-seq <n>', 'idempotent producer sequence number').argParser(wholeNumber))
    .option('--seq <seq>', 'Stream-Seq: a writer sequence that must increase (lexicographically)')
    .option('--no-progress', 'no progress bar (drawn on stderr for inputs of 1 MiB or more when stderr is a terminal)')
    .action(async (url: URL, file: string | undefined, flags: Parameters<typeof appendStream>[2]) => {
      const { appendStream } = await import('./append.ts'); // cli-progress only when appending
      await printLine(await appendStream(url, file, flags));
    });

  const read = clientCommand('read', 'read from an offset to the current end, to stdout (byte-exact; JSON streams: one message per line)')
    .addOption(new Option('--offset <offset>', 'where to start: -1 (the beginning), now, or an offset from Stream-Next-Offset').default('-1'))
    .action(async (url: URL, flags: ClientOptions & { offset: string }) => {
      const { readStream } = await import('./read.ts');
      await readStream(url, flags.offset, flags);
    });

  const tail = clientCommand('tail', 'follow the stream live (SSE), to stdout, until it is closed or Ctrl-C')
    .addOption(new Option('--offset <offset>', 'where to start: now (new data only), -1 (everything), or an offset').default('now'))
    .action(async (url: URL, flags: ClientOptions & { offset: string }) => {
      const { tailStream } = await import('./tail.ts');
      await tailStream(url, flags.offset, flags);
    });

  const head = clientCommand('head', "print the stream's metadata (content type, Stream-Next-Offset, TTL, expiry, closed)")
    .option('--json', 'print a JSON object instead of header lines')
    .action(async (url: URL, flags: ClientOptions & { json?: boolean }) => {
      const headers = metadataHeaders(await send(url, { method: 'HEAD' }, flags));
      if (flags.json === true) await writeOut(`${JSON.stringify(Object.fromEntries(headers), null, 2)}\n`);
      else for (const [name, value] of headers) await writeOut(`${name}: ${value}\n`);
    });

  const close = clientCommand('close', 'close the stream (POST with Stream-Closed: true); prints its final offset').action(
    async (url: URL, flags: ClientOptions) => {
      const response = await send(url, { method: 'POST', headers: { 'stream-closed': 'true' } }, flags);
      await response.body?.cancel();
      await printLine(response.headers.get('stream-next-offset') ?? '');
    },
  );

  const remove = clientCommand('delete', 'delete the stream and its data (DELETE)').action(async (url: URL, flags: ClientOptions) => {
    const response = await send(url, { method: 'DELETE' }, flags);
    await response.body?.cancel();
  });

  return [create, append, read, tail, head, close, remove, proxyCommand()];
}


