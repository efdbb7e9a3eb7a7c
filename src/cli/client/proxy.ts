/**
 * `cairn proxy create <upstream-url>`: asks a Cairn server's durable proxy (README "Durable
 * proxy") to make an upstream request and store its response in a stream; prints the capability
 * URL, which `cairn read` and `cairn tail` (and any Durable Streams client) read, resume and share.
 * Headers given with `--header` are for the upstream: `Authorization` travels as
 * `Upstream-Authorization`, since the request's own `Authorization` is the `--token` for Cairn.
 * An upstream error (502) prints the upstream's status and body on stderr.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CliError, exitCodeForStatus } from '../exit-codes.ts';
import { httpError, networkError } from './http.ts';
import { writeOut } from './output.ts';

/** One `--header "Name: value"`. */
function headerPair(text: string, previous: [string, string][] = []): [string, string][] {
  const at = text.indexOf(':');
  if (at <= 0) throw new InvalidArgumentError(`expected "Name: value", got "${text}"`);
  return [...previous, [text.slice(0, at).trim(), text.slice(at + 1).trim()]];
}

/** `--data`: text, `@file`, or `@-` (stdin). */
async function dataOf(data: string | undefined): Promise<Buffer | undefined> {
  if (data === undefined) return undefined;
  if (!data.startsWith('@')) return Buffer.from(data);
  const file = data.slice(1);
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  try {
    return await readFile(file);
  } catch (error) {
    throw new CliError(1, `cannot read ${file}: ${(error as Error).message}`);
  }
}

interface CreateFlags {
  server: string;
  method: string;
  header: [string, string][];
  data?: string;
  token?: string;
}

export function proxyCommand(): Command {
  const create = new Command('create')
    .description('make an upstream request through the durable proxy; prints the capability URL of the stream holding its response')
    .argument('<upstream-url>', 'e.g. https://api.example.com/v1/chat/completions (must be on the server\'s --proxy-allow-upstream)')
    .addOption(new Option('--server <url>', 'the Cairn server').env('CAIRN_SERVER').default('http://127.0.0.1:4437'))
    .addOption(new Option('--method <method>', 'upstream method: GET, POST, PUT, PATCH, DELETE (default: POST with --data, else GET)'))
    .addOption(new Option('--header <header>', 'upstream header "Name: value" (repeatable; Authorization is sent as Upstream-Authorization)').argParser(headerPair).default([]))
    .addOption(new Option('--data <data>', 'upstream request body: text, @file, or @- for stdin'))
    .addOption(new Option('--token <token>', 'bearer token for Cairn (a grant with the proxy operation)').env('CAIRN_TOKEN'))
    .action(async (upstreamUrl: string, flags: CreateFlags) => {
      const body = await dataOf(flags.data);
      const headers = new Headers();
      for (const [name, value] of flags.header) headers.append(name.toLowerCase() === 'authorization' ? 'upstream-authorization' : name, value);
      headers.set('upstream-url', upstreamUrl);
      headers.set('upstream-method', (flags.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase());
      if (flags.token !== undefined && flags.token !== '') headers.set('authorization', `Bearer ${flags.token}`);
      const url = new URL('/v1/proxy', flags.server);
      let response: Response;
      try {
        response = await fetch(url, { method: 'POST', headers, body });
      } catch (error) {
        throw networkError('POST', url, error);
      }
      if (response.status === 502 && response.headers.has('upstream-status')) {
        const text = (await response.text()).replace(/\s+/g, ' ').trim().slice(0, 300);
        throw new CliError(exitCodeForStatus(502), `upstream answered ${response.headers.get('upstream-status')}${text === '' ? '' : `: ${text}`}`);
      }
      if (response.status !== 201) throw await httpError('POST', url, response);
      await response.body?.cancel();
      await writeOut(`${response.headers.get('location') ?? ''}\n`);
    });
  return new Command('proxy').description('the durable proxy: make an upstream response a resumable stream').addCommand(create);
}
