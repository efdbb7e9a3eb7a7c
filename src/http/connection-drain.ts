/**
 * Connection bookkeeping for graceful shutdown. Node's `server.close()` waits for every
 * connection to end, and `closeIdleConnections()` only closes keep-alive sockets between
 * requests: a socket a client opened and has not used yet (HTTP clients and browsers pre-open
 * them) would hold the drain open until the drain timeout. This tracks sockets (one Set entry per
 * connection, nothing per request) so the drain can close those too.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export class ConnectionDrain {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(server: Server) {
    this.#server = server;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /**
   * Closes the connections that carry no request now: keep-alive sockets between requests, and
   * sockets that never sent a byte. Connections with a request in flight are left to finish.
   */
  closeUnused(): void {
    this.#server.closeIdleConnections();
    for (const socket of this.#sockets) if (socket.bytesRead === 0) socket.destroy();
  }
}
