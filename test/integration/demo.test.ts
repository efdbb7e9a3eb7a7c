/**
 * `npm run demo` (demo/spam-assassin.ts) on the first 300 mails of the SpamAssassin corpus, run
 * as a user runs it — a child process — on the embedded filesystem store, and on S3 when an
 * S3-compatible server is at hand (test/support/s3-server.ts; the S3 test files themselves
 * insist on one in CI). It must exit 0 and report every mail verified by every reader.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { demoCommand } from '../../demo/spam-assassin.ts';
import type { DemoSummary } from '../../demo/run.ts';
import { findS3ServerSource, startS3Server } from '../support/s3-server.ts';

const DEMO = fileURLToPath(new URL('../../demo/spam-assassin.ts', import.meta.url));
const LIMIT = 300;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the demo CLI; `CAIRN_*` variables of this environment are not passed on. */
function runDemoCli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CAIRN_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO, ...args], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function expectEverythingVerified(run: Run): DemoSummary {
  expect(run.code, run.stderr).toBe(0);
  const summary = JSON.parse(run.stdout) as DemoSummary;
  expect(summary.failures).toEqual([]);
  expect(summary.verified).toBe(true);
  expect(summary.mailCount).toBe(LIMIT);
  expect(summary.rawBytes).toBeGreaterThan(1_000_000);
  expect(summary.tailers.sse.mailCount).toBe(LIMIT);
  expect(summary.tailers.longPoll.mailCount).toBe(LIMIT);
  const { cold, warm } = summary.verification;
  expect(cold.json).toHaveLength(2);
  expect(cold.raw).toHaveLength(2);
  for (const read of [...cold.json, ...cold.raw, ...warm.json, ...warm.raw]) {
    expect(read.error).toBeUndefined();
    expect(read.mailCount).toBe(LIMIT);
  }
  // Most bytes were read from segments, the rest from the hot tail.
  expect(summary.segments.written).toBeGreaterThan(3);
  expect(summary.segments.sealedBytesAtVerify).toBeGreaterThan(summary.rawBytes);
  expect(summary.segments.hotTailBytesAtVerify).toBeGreaterThan(0);
  expect(cold.cost.segmentsWritten + warm.cost.segmentsWritten).toBe(0);
  expect(summary.objectStoreRequests.putCount).toBeGreaterThanOrEqual(2 * summary.segments.written); // segment + manifest
  // Cold: every segment fetched once, shared by the concurrent readers; warm: all from the cache.
  expect(cold.cost.getCount).toBeGreaterThan(0);
  expect(cold.cost.cache.hits + cold.cost.cache.misses + cold.cost.cache.collapsed + cold.cost.collapsedReads).toBeGreaterThan(0);
  expect(warm.cost.getCount).toBe(0);
  expect(warm.cost.cache.hitRatio).toBe(1);
  return summary;
}

describe('npm run demo', () => {
  test(`replays the first ${LIMIT} mails on the filesystem store and verifies them all`, async () => {
    const run = await runDemoCli(['--limit', String(LIMIT), '--json']);
    const summary = expectEverythingVerified(run);
    expect(summary.objectStore).toMatch(/^fs under /);
    expect(run.stderr).toContain(`${LIMIT}/${LIMIT} mails acknowledged`);
  }, 120_000);

  test('prints a readable summary without --json', async () => {
    const run = await runDemoCli(['--limit', '50', '--segment-size-bytes', '16384']);
    expect(run.code, run.stderr).toBe(0);
    for (const label of ['mails', 'bytes', 'segments', 'object store', 'segment cache', 'elapsed', 'live tailers']) {
      expect(run.stdout).toContain(`  ${label}`);
    }
    expect(run.stdout).toMatch(/PUT \d+.*GET \d+/);
    expect(run.stdout).toMatch(/hit ratio \d+\.\d%/);
    expect(run.stdout).toContain('VERIFIED: all 50 mails');
  }, 120_000);

  test('--help exits 0; a bad flag exits 2; S3 without a bucket exits 2', async () => {
    const help = await runDemoCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--s3-bucket');
    expect((await runDemoCli(['--limit', 'many'])).code).toBe(2);
    expect((await runDemoCli(['--object-store', 's3'])).code).toBe(2);
  }, 60_000);

  test('the S3 flags mirror cairn serve', () => {
    const flags = demoCommand()
      .parse(['--object-store', 's3', '--s3-bucket', 'b', '--s3-prefix', 'p', '--s3-endpoint', 'http://127.0.0.1:9000', '--s3-region', 'r', '--s3-force-path-style'], {
        from: 'user',
      })
      .opts();
    expect(flags).toMatchObject({ objectStore: 's3', s3Bucket: 'b', s3Prefix: 'p', s3Endpoint: 'http://127.0.0.1:9000', s3Region: 'r', s3ForcePathStyle: true });
  });

  const source = findS3ServerSource();
  test.skipIf(source.kind === 'unavailable')(`replays the first ${LIMIT} mails on S3 (${source.kind})`, async () => {
    const s3 = await startS3Server(source);
    try {
      const store = s3.storeConfig();
      const credentials = store.credentials;
      const run = await runDemoCli(
        [
          '--limit',
          String(LIMIT),
          '--json',
          '--object-store',
          's3',
          '--s3-bucket',
          store.bucket,
          '--s3-prefix',
          store.prefix ?? '',
          '--s3-endpoint',
          store.endpoint ?? '',
          '--s3-region',
          store.region ?? 'us-east-1',
          '--s3-force-path-style',
        ],
        credentials ? { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey } : {},
      );
      const summary = expectEverythingVerified(run);
      expect(summary.objectStore).toMatch(new RegExp(`^s3://${store.bucket}/`));
    } finally {
      await s3.stop();
    }
  }, 240_000);
});
