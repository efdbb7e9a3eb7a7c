/**
 * Connection bookkeeping for graceful shutdown. Node's `server.close()` waits for every
 * connection to end, and `closeIdleConnections()` only closes keep-alive sockets between
 * requests: a socket a client opened and has not used yet (HTTP clients and browsers pre-open
 * them) would hold the drain open until the drain timeout. This tracks sockets (one Set entry per
 * connection, nothing per request) so the drain can close those too. HTTP/2 sessions (TLS or h2c)
 * are tracked the same way and closed with a GOAWAY: their streams in flight finish, no new ones
 * start.
 */
import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { NodeServer } from './node-server.ts';
import { isAwaitingRequest } from './sse-hand-off.ts';

export class ConnectionDrain {
  readonly #server: NodeServer;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Http2Session>();

  constructor(server: NodeServer) {
    this.#server = server;
    // One listener function for every socket (`this` is the socket), not a closure per connection.
    const sockets = this.#sockets;
    function forget(this: Socket): void {
      sockets.delete(this);
    }
    const track = (socket: Socket) => {
      // A socket may be offered twice (the event re-emitted to inject it): one entry, one listener.
      if (sockets.has(socket)) return;
      sockets.add(socket);
      socket.on('close', forget);
    };
    server.on('connection', track);
    // HTTP/1.1 over TLS: the TLS socket too, which is what an SSE hand-off holds (./sse-hand-off.ts).
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol !== 'h2') track(socket);
    });
    server.on('session', (session: Http2Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
    });
  }

  /**
   * Closes the connections that carry no request now: keep-alive sockets between requests (also
   * those an SSE response was handed off on, ./sse-hand-off.ts), and sockets that never sent a byte; HTTP/2 sessions get a GOAWAY (open streams finish, then the
   * session ends). Connections with a request in flight are left to finish.
   */
  closeUnused(): void {
    if ('closeIdleConnections' in this.#server) this.#server.closeIdleConnections();
    for (const session of this.#sessions) if (!session.closed) session.close();
    for (const socket of this.#sockets) if (socket.bytesRead === 0 || isAwaitingRequest(socket)) socket.destroy();
  }

  /** Cuts every connection now, requests in flight included (the end of the drain time). */
  closeAll(): void {
    if ('closeAllConnections' in this.#server) this.#server.closeAllConnections();
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
  }
}
