/**
 * The upstream conformance suite against `cairn serve --workers 2` (README "Workers"): one port,
 * two node processes, streams sharded by slot, and every request for the other worker's slot
 * forwarded over its peer listener. The child runs as a user would start it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { CONFORMANCE_LONG_POLL_TIMEOUT_MS } from '../support/conformance.ts';
import { ChildServer, freePort } from '../fault/support/child-server.ts';

const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-conformance-workers-'));
const server = new ChildServer({
  port: await freePort(),
  dataDir,
  // Tiering forced (64-byte segments sealed at once): reads of sealed history are answered by
  // whichever worker gets them, the rest forwarded to the owner.
  args: ['--workers', '2', '--long-poll-timeout-ms', String(CONFORMANCE_LONG_POLL_TIMEOUT_MS), '--segment-size-bytes', '64', '--seal-idle-ms', '0', '--chunk-bytes-max', '4096'],
});
beforeAll(() => server.start(), 120_000);
afterAll(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

runConformanceTests({ baseUrl: `http://127.0.0.1:${server.port}`, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS });
