/**
 * Whole servers under etcd faults (issue 14; docs/cluster.md "Failures"): three `cairn serve` nodes
 * over a real 3-member etcd, plain appenders and long-poll tailers sending through a front that
 * picks a random node per request, while etcd members are killed (SIGKILL by PID) or paused
 * (SIGSTOP).
 *
 * - One member dies, quorum kept: every append still succeeds, at worst after retries (each retry
 *   a new token: a plain append answered 503 may or may not have been logged).
 * - Quorum lost (the etcd leader killed and a follower paused) for longer than the lease TTL:
 *   every node's `/readyz` turns 503; from then on every write answers 503 with `Retry-After`
 *   (CLUSTER_UNAVAILABLE or SLOT_NOT_OWNED), never a 2xx; sealed history stays readable from
 *   every node. Quorum back: every node is ready again, the slots are where they were, and writes
 *   succeed, without restarting a node.
 *
 * Both end with the history check: every acknowledged append is in its stream exactly once, in
 * acknowledgement order, with increasing offsets; an append whose answer was not 204 appears at
 * most once; each tailer saw exactly the stream's bytes. No timing is asserted: waits are bounded
 * generously, and every process is stopped by PID in the hooks of `useClusterUnderTest`, also when
 * a test fails (paused members are resumed first).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useClusterUnderTest } from '../support/cluster-front.ts';
import { waitFor } from '../support/cluster-nodes.ts';
import { etcdAvailable, isEtcdLeader, type EtcdCluster } from '../support/etcd.ts';

const LEASE_TTL_MS = 3_000;
const APPENDERS = 6;
/** How long one logical append may keep being refused before the quorum-kept test fails ("beyond retries"). */
const LOGICAL_APPEND_TIMEOUT_MS = 45_000;
const REQUEST_TIMEOUT_MS = 20_000;
const RECOVERY_TIMEOUT_MS = 60_000;
const SEALED_STREAMS = 3;
const text = { 'content-type': 'text/plain' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const run = etcdAvailable();
const running = run
  ? useClusterUnderTest({
      size: 3,
      name: `quorum-${process.pid}`,
      extraArgs: ['--cluster-lease-ttl-ms', String(LEASE_TTL_MS), '--segment-size-bytes', '4096', '--seal-idle-ms', '0', '--long-poll-timeout-ms', '2000'],
    })
  : () => {
      throw new Error('etcd is not installed');
    };

/** One answered (or failed) append: when it was sent and answered (performance.now()), and how. */
interface Attempt {
  token: string;
  sentAtMs: number;
  answeredAtMs: number;
  /** HTTP status, 0 for a network error or timeout. */
  status: number;
  retryAfter: string | null;
  /** CLUSTER_UNAVAILABLE, SLOT_NOT_OWNED or OTHER, for a 503. */
  refusal?: 'CLUSTER_UNAVAILABLE' | 'SLOT_NOT_OWNED' | 'OTHER';
  body?: string;
  nextOffset?: string;
  node: string | null;
}

/** Which cluster refusal a 503 is: SLOT_NOT_OWNED carries `Cairn-Slot-Owner`; CLUSTER_UNAVAILABLE's text starts with its subject. */
function refusalOf(response: Response, body: string): Attempt['refusal'] {
  if (response.headers.get('cairn-slot-owner') !== null) return 'SLOT_NOT_OWNED';
  if (body.startsWith('cluster unavailable:')) return 'CLUSTER_UNAVAILABLE';
  return 'OTHER';
}

interface Appender {
  url: string;
  attempts: Attempt[];
}

/** Reads a whole stream from the start (following `Stream-Next-Offset` until up to date). */
async function readAll(url: string): Promise<string> {
  let offset = '-1';
  let content = '';
  for (let page = 0; page < 10_000; page++) {
    const response = await fetch(`${url}?offset=${offset}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`reading ${url} at ${offset} answered ${response.status}: ${body}`);
    content += body;
    offset = response.headers.get('stream-next-offset') ?? offset;
    if (response.headers.get('stream-up-to-date') === 'true') return content;
  }
  throw new Error(`reading ${url}: no end`);
}

/** Long-polls `url` from the start until `done()` and the tail is reached (or `aborted()`); returns every byte received. */
async function tail(url: string, done: () => boolean, aborted: () => boolean, failures: string[]): Promise<string> {
  let offset = '-1';
  let received = '';
  while (!aborted()) {
    try {
      const response = await fetch(`${url}?offset=${offset}&live=long-poll`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const body = await response.text();
      if (response.status === 200 || response.status === 204) {
        received += response.status === 200 ? body : '';
        offset = response.headers.get('stream-next-offset') ?? offset;
        if (response.headers.get('stream-up-to-date') === 'true' && done()) return received;
      } else if (response.status !== 503) {
        failures.push(`tailer of ${url} got ${response.status}: ${body}`);
        return received;
      }
    } catch {
      // a timeout or reset: ask again
    }
    if (done()) await sleep(10);
  }
  return received;
}

/** Loads still running; a failed test's afterEach ends them. */
const activeLoads = new Set<{ abort(): void }>();

/**
 * The load: `APPENDERS` plain streams, each with one sequential appender and one tailer, through
 * the front. A logical append is retried with a new token until acknowledged (at most
 * {@link LOGICAL_APPEND_TIMEOUT_MS}, then the appender records a failure and goes on).
 */
async function startLoad(base: string): Promise<{ appenders: Appender[]; failures: string[]; stop(): Promise<string[]> }> {
  const failures: string[] = [];
  const appenders: Appender[] = [];
  for (let a = 0; a < APPENDERS; a++) {
    const url = `${base}plain-${a}`;
    const created = await fetch(url, { method: 'PUT', headers: text, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await created.arrayBuffer();
    expect(created.status).toBe(201);
    appenders.push({ url, attempts: [] });
  }
  let stopping = false;
  let appendsAnswered = false;
  let aborted = false;
  const tailers = appenders.map((appender) => tail(appender.url, () => appendsAnswered, () => aborted, failures));
  const appending = appenders.map(async (appender, a) => {
    for (let k = 0; !stopping; k++) {
      const startedMs = performance.now();
      for (let attempt = 0; !stopping; attempt++) {
        const token = `a${a}-${k}.${attempt};`;
        const sentAtMs = performance.now();
        let record: Attempt;
        try {
          const response = await fetch(appender.url, { method: 'POST', headers: text, body: token, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
          const body = await response.text();
          record = { token, sentAtMs, answeredAtMs: performance.now(), status: response.status, retryAfter: response.headers.get('retry-after'), node: response.headers.get('cairn-node') };
          if (response.status === 204) record.nextOffset = response.headers.get('stream-next-offset') ?? '';
          if (response.status === 503) record.refusal = refusalOf(response, body);
          if (response.status !== 204) record.body = body;
        } catch {
          record = { token, sentAtMs, answeredAtMs: performance.now(), status: 0, retryAfter: null, node: null };
        }
        appender.attempts.push(record);
        if (record.status === 204) break;
        if (record.status !== 503 && record.status !== 0) failures.push(`append ${token} answered ${record.status}: ${record.body ?? ''}`);
        if (performance.now() - startedMs > LOGICAL_APPEND_TIMEOUT_MS) {
          failures.push(`append a${a}-${k} refused for over ${LOGICAL_APPEND_TIMEOUT_MS} ms (last: ${record.status} ${record.body ?? ''})`);
          break;
        }
        await sleep(50);
      }
      await sleep(5);
    }
  });
  const handle = {
    abort: () => {
      stopping = true;
      aborted = true;
    },
  };
  activeLoads.add(handle);
  return {
    appenders,
    failures,
    async stop() {
      stopping = true;
      await Promise.all(appending);
      appendsAnswered = true;
      const tailed = await Promise.all(tailers);
      activeLoads.delete(handle);
      return tailed;
    },
  };
}

/**
 * The history check: each stream holds every acknowledged token exactly once, in acknowledgement
 * order, and nothing else but tokens whose answer was unknown (each at most once); acknowledged
 * offsets increase; the tailer saw exactly the stream.
 */
async function checkHistory(appenders: readonly Appender[], tailed: readonly string[]): Promise<void> {
  for (const [a, appender] of appenders.entries()) {
    const content = await readAll(appender.url);
    const tokens = content.split(';').filter(Boolean).map((token) => `${token};`);
    expect(new Set(tokens).size, `${appender.url}: no token twice`).toBe(tokens.length);
    const acknowledged = appender.attempts.filter((attempt) => attempt.status === 204);
    const acknowledgedTokens = new Set(acknowledged.map((attempt) => attempt.token));
    const unknown = new Set(appender.attempts.filter((attempt) => attempt.status !== 204).map((attempt) => attempt.token));
    expect(tokens.filter((token) => acknowledgedTokens.has(token)), `${appender.url}: acknowledged appends once each, in order`).toEqual(acknowledged.map((attempt) => attempt.token));
    expect(tokens.filter((token) => !acknowledgedTokens.has(token) && !unknown.has(token)), `${appender.url}: nothing never sent`).toEqual([]);
    const offsets = acknowledged.map((attempt) => attempt.nextOffset ?? '');
    expect(offsets.every((offset, i) => offset !== '' && (i === 0 || offset > (offsets[i - 1] as string))), `${appender.url}: acknowledged offsets increase`).toBe(true);
    const seen = tailed[a] ?? '';
    expect(seen === content, `${appender.url}: the tailer saw the stream exactly (${seen.length} of ${content.length} bytes)`).toBe(true);
  }
}

/** `/readyz` of a node: true for 200, false for 503 (not ready), undefined when it did not answer. */
async function ready(port: number): Promise<boolean | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    return response.status === 200 ? true : response.status === 503 ? false : undefined;
  } catch {
    return undefined;
  }
}

/** Index of the etcd leader member among the running ones. */
async function etcdLeader(etcd: EtcdCluster): Promise<number> {
  let leader = -1;
  await waitFor('an etcd leader', async () => {
    const flags = await Promise.all(etcd.endpoints.map((url) => isEtcdLeader(url).catch(() => false)));
    leader = flags.indexOf(true);
    return leader >= 0;
  });
  return leader;
}

describe.runIf(run)('a 3-node cluster under etcd member loss', () => {
  afterEach(async () => {
    for (const load of activeLoads) load.abort();
    activeLoads.clear();
    // Every member back and healthy before the next test (teardown of the suite stops them by PID).
    const { etcd } = running();
    for (let i = 0; i < etcd.members.length; i++) {
      etcd.signalMember(i, 'SIGCONT');
      await etcd.startMember(i);
    }
    for (let i = 0; i < etcd.members.length; i++) await etcd.waitHealthy(i);
  }, RECOVERY_TIMEOUT_MS);

  it('one etcd member killed (quorum kept): appends go on, at worst after retries; the history check passes', async () => {
    const { cluster, etcd } = running();
    const load = await startLoad(`${cluster.url}/v1/stream/quorum-kept/`);
    await sleep(1_000);
    // The leader: the harder case (an election) of a single member lost.
    const leader = await etcdLeader(etcd);
    const killedAtMs = performance.now();
    await etcd.stopMember(leader, 'SIGKILL');
    // Past two lease TTLs: a lease not kept alive across the election would have expired.
    await sleep(LEASE_TTL_MS * 2);
    await waitFor('every appender acknowledged after the kill', () =>
      load.appenders.every((appender) => appender.attempts.some((attempt) => attempt.status === 204 && attempt.sentAtMs > killedAtMs + LEASE_TTL_MS)),
      RECOVERY_TIMEOUT_MS,
    );
    const tailed = await load.stop();
    expect(load.failures).toEqual([]);
    const refused = load.appenders.flatMap((appender) => appender.attempts.filter((attempt) => attempt.status === 503));
    for (const attempt of refused) {
      expect(attempt.retryAfter, `503 for ${attempt.token} carries Retry-After`).not.toBeNull();
      expect(['CLUSTER_UNAVAILABLE', 'SLOT_NOT_OWNED'], `503 for ${attempt.token}: ${attempt.body ?? ''}`).toContain(attempt.refusal);
    }
    const acknowledgedCount = load.appenders.reduce((sum, appender) => sum + appender.attempts.filter((attempt) => attempt.status === 204).length, 0);
    const byRefusal = (refusal: Attempt['refusal']) => refused.filter((attempt) => attempt.refusal === refusal).length;
    process.stdout.write(
      `quorum kept: ${acknowledgedCount} appends acknowledged, ${refused.length} refused with 503 and retried (${byRefusal('CLUSTER_UNAVAILABLE')} CLUSTER_UNAVAILABLE, ${byRefusal('SLOT_NOT_OWNED')} SLOT_NOT_OWNED), ${load.appenders.reduce((sum, appender) => sum + appender.attempts.filter((attempt) => attempt.status === 0).length, 0)} network errors\n`,
    );
    await checkHistory(load.appenders, tailed);
    // Nothing moved: every node still owns its share.
    await cluster.converged(RECOVERY_TIMEOUT_MS);
  }, 90_000);

  it('quorum lost past the lease TTL: writes 503 + Retry-After, /readyz not ready, sealed history readable; quorum back: writes resume; the history check passes', async () => {
    const { cluster, etcd } = running();
    const base = `${cluster.url}/v1/stream/quorum-lost/`;

    // Sealed history: closed streams of several segments, wholly sealed, so any node answers them.
    const sealed: { url: string; content: string }[] = [];
    for (let s = 0; s < SEALED_STREAMS; s++) {
      const url = `${base}sealed-${s}`;
      expect((await fetch(url, { method: 'PUT', headers: text })).status).toBe(201);
      let content = '';
      for (let i = 0; i < 12; i++) {
        const chunk = `s${s}-${i}:${'x'.repeat(1000)};`;
        const response = await fetch(url, { method: 'POST', headers: { ...text, ...(i === 11 ? { 'stream-closed': 'true' } : {}) }, body: chunk });
        await response.arrayBuffer();
        expect(response.status).toBe(204);
        content += chunk;
      }
      sealed.push({ url: url.slice(cluster.url.length), content });
    }
    const readsFromEveryNode = async (): Promise<string[]> => {
      const problems: string[] = [];
      for (const [n, node] of cluster.nodes.entries()) {
        for (const { url, content } of sealed) {
          try {
            const response = await fetch(`http://127.0.0.1:${node.port}${url}?offset=-1`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
            const body = await response.text();
            if (response.status !== 200 || body !== content) problems.push(`${cluster.nodeIds[n]} ${url}: ${response.status} (${body.length} of ${content.length} bytes) ${response.status === 200 ? '' : body}`);
          } catch (error) {
            problems.push(`${cluster.nodeIds[n]} ${url}: ${(error as Error).message}`);
          }
        }
      }
      return problems;
    };
    // Wholly sealed: the owner's HEAD says so.
    await waitFor('the closed streams are wholly sealed', async () => {
      const heads = await Promise.all(sealed.map(({ url }) => fetch(`${cluster.url}${url}`, { method: 'HEAD' })));
      return heads.every((head) => head.headers.get('cairn-sealed-offset') !== null && head.headers.get('cairn-sealed-offset') === head.headers.get('stream-next-offset'));
    });
    expect(await readsFromEveryNode()).toEqual([]);

    const load = await startLoad(base);
    await sleep(1_000);
    const leader = await etcdLeader(etcd);
    const paused = (leader + 1) % etcd.members.length;
    const lostAtMs = performance.now();
    await etcd.stopMember(leader, 'SIGKILL');
    etcd.signalMember(paused, 'SIGSTOP');

    // Every node's fence shuts (TTL − margin after its last answered keep-alive): /readyz says so.
    await waitFor('every node reports not ready', async () => (await Promise.all(cluster.nodes.map((node) => ready(node.port)))).every((state) => state === false), RECOVERY_TIMEOUT_MS);
    const shutAtMs = performance.now();
    // Quorum stays lost for two more lease TTLs; meanwhile /readyz stays 503 and sealed history is read from every node.
    const readProblems: string[] = [];
    const readiness: (boolean | undefined)[] = [];
    while (performance.now() < shutAtMs + LEASE_TTL_MS * 2) {
      readiness.push(...(await Promise.all(cluster.nodes.map((node) => ready(node.port)))));
      readProblems.push(...(await readsFromEveryNode()));
      await sleep(200);
    }
    const restoredAtMs = performance.now();
    etcd.signalMember(paused, 'SIGCONT');
    await etcd.startMember(leader);

    expect(readiness.every((state) => state === false), `/readyz while quorum was lost: ${readiness.join(',')}`).toBe(true);
    expect(readProblems).toEqual([]);

    // Quorum back: every node ready, the slots where they were, writes acknowledged again.
    for (let i = 0; i < etcd.members.length; i++) await etcd.waitHealthy(i);
    await waitFor('every node ready again', async () => (await Promise.all(cluster.nodes.map((node) => ready(node.port)))).every((state) => state === true), RECOVERY_TIMEOUT_MS);
    await cluster.converged(RECOVERY_TIMEOUT_MS);
    await waitFor('every appender acknowledged after quorum returned', () =>
      load.appenders.every((appender) => appender.attempts.some((attempt) => attempt.status === 204 && attempt.sentAtMs > restoredAtMs)),
      RECOVERY_TIMEOUT_MS,
    );
    await sleep(1_000);
    const tailed = await load.stop();

    const attempts = load.appenders.flatMap((appender) => appender.attempts);
    // Sent after every fence was shut and answered before quorum came back: refused, never acknowledged.
    const duringLoss = attempts.filter((attempt) => attempt.sentAtMs > shutAtMs && attempt.answeredAtMs < restoredAtMs);
    const answeredDuringLoss = duringLoss.filter((attempt) => attempt.status !== 0);
    expect(answeredDuringLoss.length, 'writes were answered while quorum was lost').toBeGreaterThan(0);
    for (const attempt of answeredDuringLoss) {
      expect(attempt.status, `${attempt.token} while quorum was lost (node ${attempt.node}): ${attempt.body ?? ''}`).toBe(503);
      expect(attempt.retryAfter, `503 for ${attempt.token} carries Retry-After`).not.toBeNull();
      expect(['CLUSTER_UNAVAILABLE', 'SLOT_NOT_OWNED'], `503 for ${attempt.token}: ${attempt.body ?? ''}`).toContain(attempt.refusal);
    }
    for (const attempt of attempts.filter((candidate) => candidate.status === 503)) {
      expect(attempt.retryAfter, `503 for ${attempt.token} carries Retry-After`).not.toBeNull();
      expect(['CLUSTER_UNAVAILABLE', 'SLOT_NOT_OWNED'], `503 for ${attempt.token}: ${attempt.body ?? ''}`).toContain(attempt.refusal);
    }
    expect(load.failures).toEqual([]);
    process.stdout.write(
      `quorum lost for ${Math.round(restoredAtMs - lostAtMs)} ms (lease TTL ${LEASE_TTL_MS} ms), ${Math.round(restoredAtMs - shutAtMs)} ms of it after every fence shut: ${answeredDuringLoss.length} writes answered meanwhile (all 503); ${attempts.filter((attempt) => attempt.status === 204).length} acknowledged in all\n`,
    );
    await checkHistory(load.appenders, tailed);
    expect(await readsFromEveryNode()).toEqual([]);
  }, 120_000);
});
