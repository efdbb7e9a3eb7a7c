/**
 * Requests over one node:http2 session (TLS or h2c), for the HTTP/2 tests: whole responses, and
 * open streams read as they arrive (SSE).
 */
import http2 from 'node:http2';

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** Connects to `url` (https: trusting `ca`; http: h2c with prior knowledge). */
export function connectH2(url: string, ca?: Buffer | Buffer[]): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, ca === undefined ? {} : { ca });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** One request on `session`; resolves with the whole response. Rejects on a stream reset. */
export function h2Request(
  session: http2.ClientHttp2Session,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...options.headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (received) => {
      headers = received;
      status = Number(received[':status']);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    stream.on('close', () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`stream reset with code ${stream.rstCode}`));
    });
    stream.end(options.body);
  });
}

/** An open response (SSE): its status and the text received so far. */
export interface H2OpenStream {
  status: () => number;
  text: () => string;
  ended: Promise<void>;
  close(): void;
}

export function h2Open(session: http2.ClientHttp2Session, path: string): H2OpenStream {
  const stream = session.request({ ':method': 'GET', ':path': path });
  let status = 0;
  let text = '';
  stream.setEncoding('utf8');
  stream.on('response', (headers) => {
    status = Number(headers[':status']);
  });
  stream.on('data', (chunk: string) => {
    text += chunk;
  });
  const ended = new Promise<void>((resolve) => stream.on('close', () => resolve()));
  stream.on('error', () => {});
  stream.end();
  return { status: () => status, text: () => text, ended, close: () => stream.close() };
}
