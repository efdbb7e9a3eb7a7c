/**
 * The upstream conformance suite with tiering forced, on the embedded filesystem store: 64-byte
 * segments sealed as soon as bytes are durable, so reads cross segments, read units, fork sources
 * and the hot tail. Subscriptions on (webhooks on loopback).
 */
import { afterAll, test } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import {
  CONFORMANCE_SUBSCRIPTIONS,
  CONFORMANCE_LONG_POLL_TIMEOUT_MS,
  TIERING_FORCED,
  expectSealedReadsServedFromSegments,
  expectSuiteReadSegments,
} from '../support/conformance.ts';
import { startTestServer } from '../support/server.ts';

const server = await startTestServer({ ...CONFORMANCE_SUBSCRIPTIONS, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS, ...TIERING_FORCED });
afterAll(async () => {
  await server.stop();
});

runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS, subscriptions: true });

test('the suite really exercised segments: segments were written and its reads were served from them', () => {
  expectSuiteReadSegments(server);
});

test('sealed bytes are read from segments, byte-exact, across segments and a fork source', async () => {
  await expectSealedReadsServedFromSegments(server);
}, 90_000);
