/**
 * The peer channel of `--workers` (src/http/peer-channel.ts) over real unix-domain sockets: calls
 * answered by their own answers whatever order they finish in, a peer gone with calls pending
 * fails them (never leaves them waiting), the next call reaches a peer started again on the same
 * socket, an oversized frame cuts the connection, and close waits for the calls in flight.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { PEER_FRAME_BYTES_MAX } from '../../src/config/limits.ts';
import { PeerChannelClient, PeerChannelError, PeerChannelServer, peerSocketPathIn } from '../../src/http/peer-channel.ts';

const dir = await mkdtemp(path.join(tmpdir(), 'cairn-peer-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
let sockets = 0;
const socketPath = () => path.join(dir, `${sockets++}.sock`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('peer channel', () => {
  test('answers every call with its own answer, whatever order they finish in', async () => {
    const at = socketPath();
    const server = await PeerChannelServer.listen(at, async (payload) => {
      const [n, body] = payload as [number, Buffer];
      await sleep((n * 7) % 5); // finish out of order
      return [n * 2, Buffer.concat([body, Buffer.from('!')])];
    });
    expect((await stat(at)).mode & 0o777).toBe(0o600);
    const client = new PeerChannelClient();
    const answers = await Promise.all(Array.from({ length: 500 }, (_, n) => client.call(at, [n, Buffer.from(`body-${n}`)])));
    answers.forEach((answer, n) => {
      const [doubled, body] = answer as [number, Uint8Array];
      expect(doubled).toBe(n * 2);
      expect(Buffer.from(body).toString()).toBe(`body-${n}!`);
    });
    client.close();
    await server.close();
  });

  test('a peer gone with calls pending fails them; the next call reaches the peer started again', async () => {
    const at = socketPath();
    // A peer that takes calls and dies without answering (a worker killed mid-request).
    const dying: Server = createServer((socket) => socket.once('data', () => setTimeout(() => socket.destroy(), 20)));
    await new Promise<void>((resolve) => dying.listen(at, resolve));
    const client = new PeerChannelClient();
    const pending = Array.from({ length: 10 }, (_, n) => client.call(at, n));
    for (const call of pending) await expect(call).rejects.toBeInstanceOf(PeerChannelError);
    await new Promise<void>((resolve) => dying.close(() => resolve()));

    // Nothing listens: the call fails at once.
    await expect(client.call(at, 1)).rejects.toBeInstanceOf(PeerChannelError);

    const server = await PeerChannelServer.listen(at, async (payload) => payload);
    expect(await client.call(at, 'again')).toBe('again');
    client.close();
    await server.close();
  });

  test('a frame over the limit cuts the connection', async () => {
    const at = socketPath();
    let handled = 0;
    const server = await PeerChannelServer.listen(at, async () => ++handled);
    const client = new PeerChannelClient();
    await expect(client.call(at, Buffer.alloc(PEER_FRAME_BYTES_MAX + 1))).rejects.toBeInstanceOf(PeerChannelError);
    expect(handled).toBe(0);
    expect(await client.call(at, 'small')).toBe(1);
    client.close();
    await server.close();
  });

  test('close waits for the calls in flight and answers them', async () => {
    const at = socketPath();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = await PeerChannelServer.listen(at, async (payload) => {
      await gate;
      return payload;
    });
    const client = new PeerChannelClient();
    const calls = [client.call(at, 'a'), client.call(at, 'b')];
    await sleep(50);
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await sleep(50);
    expect(closed).toBe(false);
    release();
    expect(await Promise.all(calls)).toEqual(['a', 'b']);
    await closing;
    client.close();
  });

  test('the socket lives in the data directory, unless that path is too long for a socket', () => {
    expect(peerSocketPathIn('/var/lib/cairn/workers/0')).toBe('/var/lib/cairn/workers/0/peer.sock');
    expect(peerSocketPathIn(`/${'d'.repeat(120)}`)).toBeUndefined();
  });
});
