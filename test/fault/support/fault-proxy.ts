/**
 * A TCP proxy for fault tests, between Cairn and a real S3 server on 127.0.0.1. Its mode applies
 * to every byte from the moment it is set (connections already open included):
 *   - `pass`: forwards both ways;
 *   - `latency`: forwards each chunk `delayMs` later, in order, both ways;
 *   - `reset`: new connections are reset (RST) as soon as they are accepted; open ones are reset;
 *   - `blackhole`: accepts and reads everything, answers nothing (the client's timeouts must fire);
 *     open connections stop forwarding too;
 *   - `refuse`: the listener is closed (ECONNREFUSED); open connections are reset. Leaving it
 *     listens again on the same port;
 *   - `http-error`: answers every request on a new connection with `status` and an S3 XML error
 *     body carrying `code` (e.g. 503 SlowDown), then closes; open connections are reset;
 *   - `truncate`: forwards only the first `afterBytes` bytes the server sends on each connection,
 *     then resets it: responses longer than that are cut mid-body.
 */
import net from 'node:net';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'latency'; delayMs: number }
  | { kind: 'reset' }
  | { kind: 'blackhole' }
  | { kind: 'refuse' }
  | { kind: 'http-error'; status: number; code: string }
  | { kind: 'truncate'; afterBytes: number };

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

const REASONS: Record<number, string> = { 500: 'Internal Server Error', 503: 'Service Unavailable', 429: 'Too Many Requests' };

export class FaultProxy {
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  #server: net.Server;
  #port = 0;
  #mode: ProxyMode = { kind: 'pass' };
  readonly #pairs = new Set<Pair>();
  /** Connections accepted, in all. */
  connectionCount = 0;

  private constructor(upstreamHost: string, upstreamPort: number) {
    this.upstreamHost = upstreamHost;
    this.upstreamPort = upstreamPort;
    this.#server = this.#newServer();
  }

  /** Starts a proxy on 127.0.0.1 (a free port) forwarding to `upstreamUrl` (http://host:port). */
  static async start(upstreamUrl: string): Promise<FaultProxy> {
    const url = new URL(upstreamUrl);
    const proxy = new FaultProxy(url.hostname, Number(url.port || 80));
    await proxy.#listen(0);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Switches the mode; see the module doc for what happens to open connections. */
  async setMode(mode: ProxyMode): Promise<void> {
    const previous = this.#mode;
    this.#mode = mode;
    if (mode.kind === 'reset' || mode.kind === 'refuse' || mode.kind === 'http-error') {
      for (const pair of this.#pairs) this.#resetPair(pair);
    }
    if (mode.kind === 'refuse' && previous.kind !== 'refuse') {
      await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    } else if (mode.kind !== 'refuse' && previous.kind === 'refuse') {
      this.#server = this.#newServer();
      await this.#listen(this.#port);
    }
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) this.#resetPair(pair);
    if (this.#mode.kind !== 'refuse') await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #newServer(): net.Server {
    return net.createServer((client) => this.#accept(client));
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        const address = this.#server.address();
        this.#port = typeof address === 'object' && address !== null ? address.port : 0;
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  #resetPair(pair: Pair): void {
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (pair.upstream !== undefined && !pair.upstream.destroyed) pair.upstream.resetAndDestroy();
    this.#pairs.delete(pair);
  }

  #accept(client: net.Socket): void {
    this.connectionCount++;
    const pair: Pair = { client, upstream: undefined };
    this.#pairs.add(pair);
    client.on('error', () => this.#resetPair(pair));
    client.on('close', () => this.#resetPair(pair));
    const mode = this.#mode;
    if (mode.kind === 'reset' || mode.kind === 'refuse') {
      this.#resetPair(pair);
      return;
    }
    if (mode.kind === 'http-error') {
      client.once('data', () => {
        const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${mode.code}</Code><Message>injected by the fault proxy</Message><RequestId>fault</RequestId></Error>`;
        client.end(
          `HTTP/1.1 ${mode.status} ${REASONS[mode.status] ?? 'Error'}\r\ncontent-type: application/xml\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
            `connection: close\r\n\r\n${body}`,
        );
      });
      client.on('data', () => {}); // the rest of the request is read and dropped
      return;
    }
    const upstream = net.connect(this.upstreamPort, this.upstreamHost);
    pair.upstream = upstream;
    upstream.on('error', () => this.#resetPair(pair));
    upstream.on('close', () => this.#resetPair(pair));
    this.#pipe(client, upstream, pair, false);
    this.#pipe(upstream, client, pair, true);
  }

  /** Forwards `from` → `to` under the current mode, in order; `fromServer` for the upstream's bytes. */
  #pipe(from: net.Socket, to: net.Socket, pair: Pair, fromServer: boolean): void {
    let chain: Promise<void> = Promise.resolve();
    let forwardedBytes = 0;
    from.on('data', (chunk: Buffer) => {
      const mode = this.#mode;
      if (mode.kind === 'blackhole') return; // swallowed: nothing reaches the other side
      if (mode.kind === 'truncate' && fromServer) {
        const room = mode.afterBytes - forwardedBytes;
        forwardedBytes += chunk.length;
        if (room < chunk.length) {
          if (room > 0) to.write(chunk.subarray(0, room));
          // Give the partial bytes a moment to leave, then cut the connection.
          setTimeout(() => this.#resetPair(pair), 20);
          return;
        }
      }
      if (mode.kind === 'latency') {
        chain = chain.then(() => new Promise((resolve) => setTimeout(resolve, mode.delayMs))).then(() => {
          if (!to.destroyed) to.write(chunk);
        });
        return;
      }
      chain = chain.then(() => {
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => {
      chain = chain.then(() => {
        if (!to.destroyed) to.end();
      });
    });
  }
}
