/**
 * Starts a real Cairn server in-process on 127.0.0.1:0 over a fresh temporary data directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { serveConfigDefaults, type ServeConfig } from '../../src/config/serve-config.ts';
import { startServer, type RunningServer, type StartOptions } from '../../src/server.ts';

export interface TestServer extends RunningServer {
  dataDir: string;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * A complete ServeConfig for tests: every default, then loopback, port 0, short long-poll. A test
 * that sets `chunkBytesMax` alone gets catch-up responses of that size too (the boundary tests
 * walk one read unit per response); set `catchUpBytesMax` to test larger responses.
 */
export function testConfig(dataDir: string, overrides: Partial<ServeConfig> = {}): ServeConfig {
  return {
    ...serveConfigDefaults(),
    ...(overrides.chunkBytesMax === undefined ? {} : { catchUpBytesMax: overrides.chunkBytesMax }),
    host: '127.0.0.1',
    port: 0,
    dataDir,
    longPollTimeoutMs: 500,
    sseReconnectMs: 60_000,
    logLevel: 'warn',
    ...overrides,
  };
}

export async function startTestServer(overrides: Partial<ServeConfig> = {}, options: StartOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-test-'));
  const server = await startServer(testConfig(dataDir, overrides), { logger: pino({ level: overrides.logLevel ?? 'warn' }), ...options });
  return {
    ...server,
    dataDir,
    async stop() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
