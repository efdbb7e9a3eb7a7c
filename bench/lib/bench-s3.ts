/**
 * An S3-compatible store for a benchmark, from the same sources as the integration tests
 * (DESIGN.md, "Test servers for S3"): `S3_ENDPOINT` from the environment (with `S3_BUCKET`,
 * default `cairn-bench`, `S3_REGION`, default `us-east-1`, `S3_ACCESS_KEY_ID`,
 * `S3_SECRET_ACCESS_KEY`), or a throwaway one-node Ceph RGW (test/support/s3-ceph-rgw.ts; objects
 * in RAM, about 16 s to start) when its Debian packages are installed.
 *
 * Every run writes under a fresh key prefix. The AWS SDK is loaded only when S3 is used.
 */
import { randomBytes } from 'node:crypto';
import { CEPH_PACKAGES, findCephBinaries, startCephRgw } from '../../test/support/s3-ceph-rgw.ts';

export type S3Mode = 'auto' | 'env' | 'ceph' | 'off';
export const S3_MODES: readonly S3Mode[] = ['auto', 'env', 'ceph', 'off'];

/** The `--s3` flag as an {@link S3Mode}; throws naming the choices when it is none of them. */
export function s3ModeFlag(text: string): S3Mode {
  if (!S3_MODES.includes(text as S3Mode)) throw new Error(`--s3 must be one of ${S3_MODES.join(', ')}`);
  return text as S3Mode;
}

export interface BenchS3 {
  kind: 'env' | 'ceph-rgw';
  /** e.g. `ceph-rgw http://127.0.0.1:41234 bucket cairn-bench prefix bench-…/`. */
  description: string;
  /** Time to obtain the store (0 for `env`), in ms. */
  startMs: number;
  /** PIDs of the store's processes started here (Ceph mon, osd, rgw); empty for `env`. */
  pids: number[];
  /** The Ceph cluster's temporary directory (`stop()` removes it; an interrupted run must too). */
  tempDir: string | undefined;
  /** `cairn serve` flags for a new key prefix under this run's prefix. */
  cairnFlags(name: string): string[];
  /** Environment for the Cairn process: credentials and region for the SDK's provider chain. */
  cairnEnv: Record<string, string>;
  /** Objects and bytes stored under a prefix made by `cairnFlags(name)`. */
  countObjects(name: string): Promise<{ count: number; bytes: number }>;
  /** Deletes this run's objects (env) or the whole store (Ceph). */
  stop(): Promise<void>;
}

/** Where S3 would come from for `mode`, without starting anything. */
export function s3Source(mode: S3Mode): { kind: 'env' | 'ceph-rgw' } | { kind: 'off'; reason: string } {
  if (mode === 'off') return { kind: 'off', reason: '--s3 off' };
  if ((mode === 'auto' || mode === 'env') && process.env.S3_ENDPOINT) return { kind: 'env' };
  if (mode === 'env') return { kind: 'off', reason: 'S3_ENDPOINT is not set' };
  const ceph = findCephBinaries();
  if ('found' in ceph) return { kind: 'ceph-rgw' };
  return { kind: 'off', reason: `no S3_ENDPOINT and no Ceph (${ceph.missing.join(', ')} missing; apt-get install -y ${CEPH_PACKAGES.join(' ')})` };
}

interface Endpoint {
  endpoint: string;
  bucket: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export async function startBenchS3(source: { kind: 'env' | 'ceph-rgw' }): Promise<BenchS3> {
  const { S3ObjectStore } = await import('../../src/object-store/s3-store.ts');
  let endpoint: Endpoint;
  let startMs = 0;
  let pids: number[] = [];
  let tempDir: string | undefined;
  let stopStore = async (): Promise<void> => {};
  if (source.kind === 'env') {
    const accessKeyId = process.env.S3_ACCESS_KEY_ID;
    const secretAccessKey = process.env.S3_SECRET_ACCESS_KEY;
    endpoint = {
      endpoint: process.env.S3_ENDPOINT ?? '',
      bucket: process.env.S3_BUCKET ?? 'cairn-bench',
      region: process.env.S3_REGION ?? 'us-east-1',
      credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    };
  } else {
    const rgw = await startCephRgw();
    startMs = rgw.startMs;
    pids = rgw.pids;
    tempDir = rgw.dir;
    stopStore = rgw.stop;
    endpoint = {
      endpoint: rgw.endpoint,
      bucket: 'cairn-bench',
      region: rgw.region,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    };
  }
  const runPrefix = `bench-${randomBytes(4).toString('hex')}`;
  const storeFor = (prefix: string) =>
    new S3ObjectStore({ bucket: endpoint.bucket, endpoint: endpoint.endpoint, region: endpoint.region, forcePathStyle: true, credentials: endpoint.credentials, prefix });
  const admin = storeFor('');
  try {
    await admin.ensureBucket();
  } catch (error) {
    await admin.close();
    await stopStore();
    throw error;
  }

  const list = async (prefix: string) => {
    const keys: string[] = [];
    let bytes = 0;
    let startAfter: string | undefined;
    do {
      const page = await admin.list({ prefix, startAfter });
      for (const object of page.objects) {
        keys.push(object.key);
        bytes += object.sizeBytes;
      }
      startAfter = page.nextStartAfter;
    } while (startAfter !== undefined);
    return { keys, bytes };
  };

  const cairnEnv: Record<string, string> = { AWS_REGION: endpoint.region };
  if (endpoint.credentials !== undefined) {
    cairnEnv.AWS_ACCESS_KEY_ID = endpoint.credentials.accessKeyId;
    cairnEnv.AWS_SECRET_ACCESS_KEY = endpoint.credentials.secretAccessKey;
  }
  return {
    kind: source.kind,
    description: `${source.kind} ${endpoint.endpoint} bucket ${endpoint.bucket} prefix ${runPrefix}/`,
    startMs,
    pids,
    tempDir,
    cairnFlags: (name) => [
      '--object-store',
      's3',
      '--s3-endpoint',
      endpoint.endpoint,
      '--s3-bucket',
      endpoint.bucket,
      '--s3-prefix',
      `${runPrefix}/${name}`,
      '--s3-region',
      endpoint.region,
      '--s3-force-path-style',
    ],
    cairnEnv,
    async countObjects(name) {
      const { keys, bytes } = await list(`${runPrefix}/${name}/`);
      return { count: keys.length, bytes };
    },
    async stop() {
      try {
        if (source.kind === 'env') {
          const { keys } = await list(`${runPrefix}/`);
          if (keys.length > 0) await admin.deleteMany(keys);
        }
      } finally {
        await admin.close();
        await stopStore();
      }
    },
  };
}
