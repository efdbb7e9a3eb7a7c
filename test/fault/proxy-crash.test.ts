/**
 * The durable proxy across `kill -9` (README "Durable proxy"): a child `cairn serve` pipes slow SSE
 * answers from a loopback upstream into streams; readers follow them; the child is killed with
 * SIGKILL mid-pipe and restarted on the same data directory, several times. After every restart:
 *   - every byte a reader saw before the kill (readers only see acknowledged bytes) is there,
 *     and the stream is a prefix of the upstream's answer (nothing lost before it, nothing doubled);
 *   - the stream is closed, with outcome `interrupted` (never left open);
 *   - nothing was requested upstream again;
 *   - the streams of earlier cycles are unchanged.
 * A graceful stop (SIGTERM) mid-pipe closes the stream as interrupted too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { sseToken, startMockUpstream, type MockUpstream } from '../support/mock-upstream.ts';
import { createProxyOk, PROXY_SECRET, readToClose, withQuery } from '../support/proxy.ts';
import { ChildServer, freePort } from './support/child-server.ts';

const CYCLES = 5;
const STREAMS_PER_CYCLE = 2;
const TOKENS = 100_000;

let server: ChildServer | undefined;
let upstream: MockUpstream | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

const fullAnswer = Array.from({ length: 20_000 }, (_, i) => sseToken(i)).join('');

/** Follows a capability URL with long-polls until `stop` resolves or it fails; returns what it saw. */
function follow(capability: string, stop: Promise<void>): { seen: () => string } {
  let text = '';
  let stopped = false;
  void stop.then(() => (stopped = true));
  void (async () => {
    let offset = '-1';
    while (!stopped) {
      try {
        const response = await fetch(withQuery(capability, offset === '-1' ? { offset } : { offset, live: 'long-poll' }));
        if (response.status !== 200 && response.status !== 204) return;
        const body = await response.text();
        text += body;
        offset = response.headers.get('stream-next-offset') ?? offset;
      } catch {
        return;
      }
    }
  })();
  return { seen: () => text };
}

test(`proxy streams survive SIGKILL mid-pipe, closed as interrupted, nothing re-requested (${CYCLES} cycles)`, { timeout: 240_000 }, async () => {
  upstream = await startMockUpstream();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-proxy-crash-'));
  server = new ChildServer({
    port: await freePort(),
    dataDir,
    args: ['--proxy-signing-secret', PROXY_SECRET, '--proxy-allow-upstream', `${upstream.origin}/*`, '--proxy-allow-localhost', '--seal-idle-ms', '200', '--segment-size-bytes', '4096'],
  });
  await server.start();
  const base = `http://127.0.0.1:${server.port}`;
  const done: { capability: string; text: string }[] = [];

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const ids = Array.from({ length: STREAMS_PER_CYCLE }, (_, k) => `c${cycle}-${k}`);
    const capabilities = await Promise.all(ids.map((id) => createProxyOk(base, `${upstream!.origin}/sse?tokens=${TOKENS}&delayMs=5&id=${id}`)));
    let release!: () => void;
    const stop = new Promise<void>((resolve) => (release = resolve));
    const readers = capabilities.map((capability) => follow(capability, stop));
    // Kill at a different point of each answer: after 5 to 200 tokens were seen.
    const killAfterTokens = 5 + ((cycle * 47) % 200);
    const deadline = Date.now() + 30_000;
    while (readers.some((reader) => (reader.seen().match(/"i":/g)?.length ?? 0) < killAfterTokens) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const seenBeforeKill = readers.map((reader) => reader.seen());
    server.kill();
    await server.waitExit();
    release();
    // The upstream requests end with the process.
    await Promise.all(ids.map((id) => upstream!.ended(id)));
    const hitsBefore = upstream.hits('/sse');
    await server.start();

    for (const [k, capability] of capabilities.entries()) {
      const { text, headers } = await readToClose(capability);
      expect(text.startsWith(seenBeforeKill[k] ?? ''), `cycle ${cycle} stream ${k}: bytes seen before the kill are kept`).toBe(true);
      expect(fullAnswer.startsWith(text), `cycle ${cycle} stream ${k}: a prefix of the upstream answer`).toBe(true);
      expect(headers.get('cairn-proxy-outcome')).toBe('interrupted');
      expect(headers.get('upstream-content-type')).toBe('text/event-stream');
      done.push({ capability, text });
    }
    expect(upstream.hits('/sse'), 'nothing is requested upstream again').toBe(hitsBefore);
    for (const earlier of done) {
      expect((await readToClose(earlier.capability)).text).toBe(earlier.text);
    }
  }

  // A graceful stop mid-pipe: the stream is closed as interrupted before the process exits.
  const capability = await createProxyOk(base, `${upstream.origin}/sse?tokens=${TOKENS}&delayMs=5&id=graceful`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  server.signal('SIGTERM');
  await server.waitExit();
  expect(server.lastExit?.code).toBe(0);
  await upstream.ended('graceful');
  const hitsBefore = upstream.hits('/sse');
  await server.start();
  const { text, headers } = await readToClose(capability);
  expect(fullAnswer.startsWith(text)).toBe(true);
  expect(text.length).toBeGreaterThan(0);
  expect(headers.get('cairn-proxy-outcome')).toBe('interrupted');
  expect(upstream.hits('/sse')).toBe(hitsBefore);
});
