/**
 * `cairn verify`: a read-only walk of the object store (the `--object-store`/`--s3-*` settings
 * as for serve; `--data-dir` locates the filesystem store), checking every stream incarnation's
 * newest manifest against its segments (src/manifest/store-verify.ts). Prints what it found;
 * exits 0 only when everything is consistent, 1 otherwise. A progress bar (cli-progress) is drawn
 * on stderr when it is a terminal.
 */
import { Command, Option } from 'commander';
import { CliError, EXIT_ERROR } from './exit-codes.ts';
import { addSettingOptions, resolvedConfig } from './config-options.ts';

export function verifyCommand(): Command {
  const command = new Command('verify')
    .description('Check the object store read-only: manifests against segments (presence, sizes, checksums, contiguity, retention, fork sources)')
    .addOption(new Option('--key-prefix <prefix>', 'verify only keys starting with this (a hash-prefix shard such as "a3/"); default: the whole store'))
    .addOption(new Option('--no-progress', 'no progress bar, even on a terminal'));
  return addSettingOptions(command).action(async (flags: { keyPrefix?: string; progress: boolean }, self: Command) => {
    const { openBaseStore } = await import('../server.ts');
    const { verifyStore } = await import('../manifest/store-verify.ts');
    const config = resolvedConfig(self).config;
    const store = await openBaseStore(config);
    let bar: import('cli-progress').SingleBar | undefined;
    if (flags.progress && process.stderr.isTTY) {
      const { SingleBar, Presets } = await import('cli-progress');
      bar = new SingleBar({ stream: process.stderr, format: 'verify [{bar}] {value}/{total} incarnations' }, Presets.shades_classic);
    }
    try {
      const report = await verifyStore(store, flags.keyPrefix ?? '', (done, total) => {
        if (bar === undefined) return;
        if (done === 1) bar.start(total, 0);
        bar.update(done);
      });
      bar?.stop();
      const out = process.stdout;
      out.write(`store: ${store.description}\n`);
      out.write(`incarnations: ${report.incarnations} (tombstoned: ${report.tombstones})\n`);
      out.write(`segments checked: ${report.segmentsChecked} (${report.bytesChecked} bytes read back)\n`);
      out.write(`superseded manifest versions: ${report.supersededManifests}\n`);
      out.write(`orphan segments (no manifest lists them): ${report.orphanSegments.length}\n`);
      for (const key of report.orphanSegments) out.write(`  orphan ${key}\n`);
      for (const problem of report.problems) out.write(`PROBLEM ${problem}\n`);
      if (report.problems.length > 0) throw new CliError(EXIT_ERROR, `${report.problems.length} problem(s) found`);
      out.write('consistent\n');
    } finally {
      bar?.stop();
      await store.close();
    }
  });
}
