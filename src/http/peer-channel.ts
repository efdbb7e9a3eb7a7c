/**
 * The channel between the workers of `cairn serve --workers` (DESIGN.md "One machine, many
 * cores"): calls and their answers as length-prefixed MessagePack frames (a 4-byte big-endian
 * length, then `[callId, payload]`) over a unix-domain socket in the worker's data directory.
 * Frames written in one turn of the event loop leave in one write, so a burst of forwarded appends
 * (and the burst of answers one group commit releases) costs one system call each way instead of
 * an HTTP request each. What a payload means is the caller's (./peer-appends.ts).
 */
import { chmod, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { PEER_CALLS_PENDING_MAX, PEER_FRAME_BYTES_MAX } from '../config/limits.ts';

const FRAME_HEADER_BYTES = 4;
/** Longest unix-domain socket path every platform takes (Linux allows 107 bytes, macOS 103). */
const SOCKET_PATH_BYTES_MAX = 100;
const SOCKET_FILE = 'peer.sock';

/** Where a worker with data directory `dataDir` listens for its peers; undefined when that path is too long for a socket (peers then use HTTP). */
export function peerSocketPathIn(dataDir: string): string | undefined {
  const socketPath = path.resolve(dataDir, SOCKET_FILE);
  return Buffer.byteLength(socketPath) <= SOCKET_PATH_BYTES_MAX ? socketPath : undefined;
}
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/** The peer could not be asked or did not answer (its connection closed with the call pending): it may or may not have acted. */
export class PeerChannelError extends Error {
  readonly code = 'PEER_CHANNEL_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PeerChannelError';
  }
}

/** Writes frames of one connection, one write per turn of the event loop. */
class FrameWriter {
  readonly #socket: Socket;
  #frames: Buffer[] = [];
  #bytes = 0;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  send(callId: number, payload: unknown): void {
    const encoded = packr.pack([callId, payload]);
    // After the poll phase, not the next tick: every request read in this turn of the event loop
    // (one per client connection that had data) rides the same write.
    if (this.#frames.length === 0) setImmediate(() => this.#flush());
    this.#frames.push(encoded);
    this.#bytes += FRAME_HEADER_BYTES + encoded.length;
  }

  #flush(): void {
    const out = Buffer.allocUnsafe(this.#bytes);
    let at = 0;
    for (const frame of this.#frames) {
      out.writeUInt32BE(frame.length, at);
      at += FRAME_HEADER_BYTES;
      at += frame.copy(out, at);
    }
    this.#frames = [];
    this.#bytes = 0;
    if (!this.#socket.destroyed) this.#socket.write(out);
  }
}

/** Cuts a connection's bytes into frames; calls `onFrame` with each decoded `[callId, payload]`. */
function readFrames(socket: Socket, onFrame: (callId: number, payload: unknown) => void): void {
  let pending: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    let buffer = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    pending = undefined;
    while (buffer.length >= FRAME_HEADER_BYTES) {
      const length = buffer.readUInt32BE(0);
      if (length > PEER_FRAME_BYTES_MAX) {
        socket.destroy(new PeerChannelError(`a frame of ${length} bytes exceeds the limit of ${PEER_FRAME_BYTES_MAX}`));
        return;
      }
      if (buffer.length < FRAME_HEADER_BYTES + length) break;
      const frame = unpackr.unpack(buffer.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length)) as [number, unknown];
      buffer = buffer.subarray(FRAME_HEADER_BYTES + length);
      onFrame(frame[0], frame[1]);
    }
    if (buffer.length > 0) pending = buffer;
  });
}

/**
 * A worker's end of the channel: listens at `socketPath` (owner-only permissions; a stale socket
 * file of a previous run is replaced) and answers each call with `handle`'s result.
 * `handle` must not reject: it turns every failure into an answer (a rejection cuts the connection,
 * failing every call on it).
 */
export class PeerChannelServer {
  readonly socketPath: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #inFlight = 0;
  #drained: (() => void) | undefined;

  private constructor(socketPath: string, handle: (payload: unknown) => Promise<unknown>) {
    this.socketPath = socketPath;
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined); // a peer gone: its calls are its problem
      const writer = new FrameWriter(socket);
      readFrames(socket, (callId, payload) => {
        this.#inFlight++;
        handle(payload)
          .then(
            (answer) => writer.send(callId, answer),
            (error: unknown) => socket.destroy(error as Error),
          )
          .finally(() => {
            this.#inFlight--;
            if (this.#inFlight === 0) this.#drained?.();
          });
      });
    });
  }

  /** @throws the listen error (EADDRINUSE, a path too long for a socket, …). */
  static async listen(socketPath: string, handle: (payload: unknown) => Promise<unknown>): Promise<PeerChannelServer> {
    await unlink(socketPath).catch(() => undefined);
    const channel = new PeerChannelServer(socketPath, handle);
    await new Promise<void>((resolve, reject) => {
      channel.#server.once('error', reject);
      channel.#server.listen({ path: socketPath, exclusive: true }, () => resolve());
    });
    await chmod(socketPath, 0o600);
    return channel;
  }

  /** Stops accepting, waits for the calls in flight to be answered, then closes the connections. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    // Let the last answers' write (after this turn's poll phase) leave before the connections end.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const socket of this.#sockets) socket.end();
    await closed;
  }
}

interface PendingCall {
  resolve(answer: unknown): void;
  reject(error: Error): void;
}

/** One connection to a peer, opened on first use; a closed one fails its pending calls and is replaced on the next call. */
class PeerConnection {
  readonly #socket: Socket;
  readonly #writer: FrameWriter;
  readonly #pending = new Map<number, PendingCall>();
  #nextCallId = 0;
  closed = false;

  constructor(socketPath: string, onClose: () => void) {
    this.#socket = createConnection({ path: socketPath });
    this.#writer = new FrameWriter(this.#socket);
    readFrames(this.#socket, (callId, answer) => {
      const call = this.#pending.get(callId);
      this.#pending.delete(callId);
      call?.resolve(answer);
    });
    let failure: Error | undefined;
    this.#socket.on('error', (error) => (failure = error));
    this.#socket.on('close', () => {
      this.closed = true;
      onClose();
      const error = new PeerChannelError(`the peer at ${socketPath} closed the channel${failure === undefined ? '' : `: ${failure.message}`}`, { cause: failure });
      for (const call of this.#pending.values()) call.reject(error);
      this.#pending.clear();
    });
  }

  call(payload: unknown): Promise<unknown> {
    if (this.#pending.size >= PEER_CALLS_PENDING_MAX) return Promise.reject(new PeerChannelError(`${PEER_CALLS_PENDING_MAX} calls already wait on this peer`));
    const callId = this.#nextCallId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(callId, { resolve, reject });
      this.#writer.send(callId, payload);
    });
  }

  close(): void {
    this.#socket.end();
  }
}

/** A worker's calls to its peers: one connection per peer socket, shared by every call. */
export class PeerChannelClient {
  readonly #connections = new Map<string, PeerConnection>();

  /** Sends `payload` to the peer at `socketPath`. @returns its answer. @throws PeerChannelError when the peer cannot be reached or closed the channel before answering. */
  call(socketPath: string, payload: unknown): Promise<unknown> {
    let connection = this.#connections.get(socketPath);
    if (connection === undefined || connection.closed) {
      const opened = new PeerConnection(socketPath, () => {
        if (this.#connections.get(socketPath) === opened) this.#connections.delete(socketPath);
      });
      connection = opened;
      this.#connections.set(socketPath, connection);
    }
    return connection.call(payload);
  }

  close(): void {
    for (const connection of this.#connections.values()) connection.close();
    this.#connections.clear();
  }
}
