/**
 * The upstream conformance suite (@durable-streams/server-conformance-tests) against
 * `cairn serve --durability memory`, in-process on port 0 with a 500 ms long-poll timeout.
 * The 6 "Reserved subscription APIs" tests stay skipped until the subscriptions issue.
 */
import { afterAll } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { startTestServer } from '../support/server.ts';

const server = await startTestServer({ durability: 'memory', longPollTimeoutMs: 500 });
afterAll(() => server.stop());

runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: 500 });
