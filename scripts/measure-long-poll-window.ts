/**
 * Measures how long the upstream conformance suite's tightest long-poll needs: "Fork - Live Modes:
 * should wait for fork appends, not source appends, on long-poll at tail" opens a long-poll at the
 * fork's tail, sleeps 50 ms, appends to the source, then appends to the fork, and expects the
 * long-poll to answer 200 with the fork's bytes. The server's long-poll timeout must outlast that
 * whole window, or the answer is 204. This replays the same steps against the tiered configuration
 * of test/conformance/conformance-tiered-fs.test.ts (with a long timeout, so nothing times out)
 * and prints the window from sending the long-poll to the fork append's answer, in ms.
 *
 * Usage: node scripts/measure-long-poll-window.ts [rounds=200]; run it beside a CPU hog
 * (e.g. `stress-ng --cpu 2`) to see what a busy machine needs.
 */
import { startTestServer } from '../test/support/server.ts';

const rounds = Number(process.argv[2] ?? 200);
const server = await startTestServer({ longPollTimeoutMs: 60_000, segmentSizeBytes: 64, sealIdleMs: 0, maxChunkBytes: 4096 });
const windowsMs: number[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const source = `${server.url}/v1/stream/window-src-${i}`;
    const fork = `${server.url}/v1/stream/window-fork-${i}`;
    await fetch(source, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'source' });
    await fetch(fork, { method: 'PUT', headers: { 'content-type': 'text/plain', 'stream-forked-from': `/v1/stream/window-src-${i}` } });
    const head = await fetch(fork);
    await head.text();
    const offset = head.headers.get('stream-next-offset');
    const startMs = performance.now();
    const longPoll = fetch(`${fork}?offset=${offset}&live=long-poll`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fetch(source, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: ' source extra' });
    await fetch(fork, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: ' fork new' });
    windowsMs.push(performance.now() - startMs);
    const response = await longPoll;
    if (response.status !== 200 || (await response.text()) !== ' fork new') throw new Error(`round ${i}: long-poll answered ${response.status}`);
  }
} finally {
  await server.stop();
}
windowsMs.sort((a, b) => a - b);
const at = (q: number): string => windowsMs[Math.min(windowsMs.length - 1, Math.floor(q * windowsMs.length))].toFixed(0);
console.log(`rounds ${rounds}: window ms p50 ${at(0.5)} p90 ${at(0.9)} p99 ${at(0.99)} max ${at(1)}`);
