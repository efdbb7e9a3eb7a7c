/**
 * HTTP for the client commands, on Node's built-in fetch: the bearer token, and every failure
 * turned into a CliError with its exit code and one line saying the status and the server's words.
 */
import { CliError, EXIT_UNAVAILABLE, exitCodeForStatus } from '../exit-codes.ts';

/** What every client command takes besides the stream URL. */
export interface ClientOptions {
  /** Sent as `Authorization: Bearer <token>`; from `--token` or `CAIRN_TOKEN`. */
  token?: string;
}

/** Longest server message quoted in an error line. */
const SERVER_MESSAGE_CHARS_MAX = 300;

/** fetch's RequestInit plus the `duplex` a streamed request body needs. */
export type StreamRequestInit = RequestInit & { duplex?: 'half' };

/**
 * Sends one request to a stream URL. Resolves with any 1xx-3xx response; a 4xx/5xx becomes a
 * CliError (exit code by status, message `<METHOD> <url>: <status> <text>: <server message>`), and
 * a network failure a CliError with EXIT_UNAVAILABLE.
 */
export async function send(url: URL, init: StreamRequestInit, options: ClientOptions): Promise<Response> {
  const headers = new Headers(init.headers);
  if (options.token !== undefined && options.token !== '') headers.set('authorization', `Bearer ${options.token}`);
  const method = init.method ?? 'GET';
  let response: Response;
  try {
    response = await fetch(url, { ...init, headers, redirect: 'follow' });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw networkError(method, url, error);
  }
  if (response.status >= 400) throw await httpError(method, url, response);
  return response;
}

export function networkError(method: string, url: URL, error: unknown): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (error as Error).message;
  return new CliError(EXIT_UNAVAILABLE, `${method} ${url.href}: cannot reach the server (${detail})`, { cause: error });
}

export async function httpError(method: string, url: URL, response: Response): Promise<CliError> {
  let text = '';
  try {
    text = method === 'HEAD' ? '' : await response.text();
  } catch {
    // The body is only for the message; the status says enough.
  }
  let message = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
    const inner = typeof parsed.error === 'object' && parsed.error !== null ? (parsed.error as { message?: unknown }).message : parsed.error;
    const found = parsed.message ?? inner;
    if (typeof found === 'string') message = found;
  } catch {
    // Cairn answers errors as text/plain; JSON is handled for proxies and other servers.
  }
  message = message.replace(/\s+/g, ' ').trim().slice(0, SERVER_MESSAGE_CHARS_MAX);
  const closed = response.headers.get('stream-closed')?.toLowerCase() === 'true' ? ' (stream closed)' : '';
  const status = `${response.status} ${response.statusText}`.trim();
  return new CliError(exitCodeForStatus(response.status), `${method} ${url.href}: ${status}${closed}${message === '' ? '' : `: ${message}`}`);
}

/** The URL with `offset` (and other query parameters) set, the offset URL-encoded. */
export function withQuery(url: URL, query: Record<string, string>): URL {
  const out = new URL(url);
  for (const [name, value] of Object.entries(query)) out.searchParams.set(name, value);
  return out;
}
