/**
 * The stack's parameters: CDK context values (`cdk synth -c name=value`, or `context` in cdk.json),
 * validated with zod, each with a default so that `cdk synth` needs none of them.
 */
import { z } from 'zod';
import { LONG_POLL_TIMEOUT_MS_DEFAULT } from '../../../src/config/limits.ts';

/**
 * Seconds CloudFront waits for the origin beyond the long-poll timeout before giving up: Cairn
 * answers a long-poll with 204 at its timeout, and the margin covers a busy event loop and the
 * network. The origin read timeout must be above the long-poll timeout or CloudFront cuts every
 * idle long-poll with a 504.
 */
export const ORIGIN_READ_TIMEOUT_MARGIN_SECONDS = 10;

/** CloudFront's largest origin read timeout without a quota increase. */
export const ORIGIN_READ_TIMEOUT_SECONDS_MAX = 60;

const contextSchema = z.object({
  /** S3 key prefix for segments and manifests; the instance role may touch nothing else in the bucket. */
  bucketPrefix: z
    .string()
    .regex(/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/, 'bucketPrefix: path segments of safe S3 key characters, no leading or trailing /')
    .default('cairn'),
  /** EC2 instance type; its architecture (arm64 or x86_64) picks the AMI and the Node.js build. */
  instanceType: z.string().default('m7g.large'),
  /** Size of the gp3 EBS volume holding the WAL and checkpoints (`--data-dir`), in GiB. */
  walVolumeSizeGib: z.coerce.number().int().min(8).max(16_384).default(100),
  /** Cairn's `--long-poll-timeout-ms`; the CloudFront origin read timeout is derived from it. */
  longPollTimeoutMs: z.coerce.number().int().min(1000).default(LONG_POLL_TIMEOUT_MS_DEFAULT),
  /** A fixed AMI id; default: the latest Amazon Linux 2023 for the architecture (an SSM parameter read at deploy). */
  amiId: z.string().regex(/^ami-[0-9a-f]+$/).optional(),
  /** Node.js 24 release installed on the instance (checked against nodejs.org's SHASUMS256.txt). */
  nodeVersion: z.string().regex(/^24\.\d+\.\d+$/, 'nodeVersion: a Node.js 24 release such as 24.21.0').default('24.21.0'),
  /** Region of the CloudFront Origin Shield cache: pick the one nearest the instance's region. */
  originShieldRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).default('us-east-1'),
  /** Path pattern of private streams: their cache key includes `Authorization`. */
  privatePathPattern: z.string().startsWith('/v1/stream/').default('/v1/stream/private/*'),
  /**
   * Start Cairn without auth configuration (`CAIRN_ALLOW_UNAUTHENTICATED=true`). Off by default:
   * Cairn then reads its tokens from /etc/cairn/auth-tokens, which the operator installs.
   */
  allowUnauthenticated: z
    .union([z.boolean(), z.enum(['true', 'false'])])
    .transform((value) => value === true || value === 'true')
    .default(false),
});

export type CairnStackConfig = z.infer<typeof contextSchema> & {
  /** Derived: CloudFront's origin read timeout, in seconds (long-poll timeout + margin). */
  originReadTimeoutSeconds: number;
};

/** Thrown for an invalid context value; the message names the value and the rule. */
export class StackConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackConfigError';
  }
}

/**
 * Reads and validates the stack parameters from a context lookup (`app.node.tryGetContext`).
 * @throws StackConfigError when a value is malformed or the long-poll timeout leaves no room
 *   under CloudFront's 60 s origin read timeout.
 */
export function readStackConfig(context: (key: string) => unknown): CairnStackConfig {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(contextSchema.shape)) {
    const value = context(key);
    if (value !== undefined) raw[key] = value;
  }
  const parsed = contextSchema.safeParse(raw);
  if (!parsed.success) throw new StackConfigError(`invalid stack context: ${z.prettifyError(parsed.error)}`);
  const originReadTimeoutSeconds = Math.ceil(parsed.data.longPollTimeoutMs / 1000) + ORIGIN_READ_TIMEOUT_MARGIN_SECONDS;
  if (originReadTimeoutSeconds > ORIGIN_READ_TIMEOUT_SECONDS_MAX) {
    throw new StackConfigError(
      `longPollTimeoutMs ${parsed.data.longPollTimeoutMs} needs an origin read timeout of ${originReadTimeoutSeconds} s; CloudFront allows ${ORIGIN_READ_TIMEOUT_SECONDS_MAX} s`,
    );
  }
  return { ...parsed.data, originReadTimeoutSeconds };
}
