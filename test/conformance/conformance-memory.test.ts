/**
 * The upstream conformance suite (@durable-streams/server-conformance-tests) against
 * `cairn serve --durability memory`, in-process on port 0 with the long-poll timeout of
 * test/support/conformance.ts.
 * Subscriptions on: the "Reserved subscription APIs" tests run too (webhooks on loopback).
 */
import { afterAll } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { CONFORMANCE_LONG_POLL_TIMEOUT_MS, CONFORMANCE_SUBSCRIPTIONS } from '../support/conformance.ts';
import { startTestServer } from '../support/server.ts';

const server = await startTestServer({ ...CONFORMANCE_SUBSCRIPTIONS, durability: 'memory', longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS });
afterAll(() => server.stop());

runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS, subscriptions: true });
