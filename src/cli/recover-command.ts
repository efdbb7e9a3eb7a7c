/**
 * `cairn recover`: rebuilds the data directory's local state from the object store for every
 * stream (or a key prefix) ahead of traffic — src/recover.ts. Same settings as `cairn serve`;
 * run it while no server uses the data directory. A progress bar (cli-progress) on a terminal.
 */
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { addSettingOptions, resolvedConfig } from './config-options.ts';
import { CliError, EXIT_USAGE } from './exit-codes.ts';

export function recoverCommand(): Command {
  const command = new Command('recover')
    .description("Load every stream stored in the object store into this data directory's WAL (run while no server uses it)")
    .addOption(new Option('--key-prefix <prefix>', 'recover only incarnations under this key prefix (a hash shard such as "a3/"); default: all'))
    .addOption(new Option('--no-progress', 'no progress bar, even on a terminal'));
  return addSettingOptions(command).action(async (flags: { keyPrefix?: string; progress: boolean }, self: Command) => {
    const { recoverFromStore } = await import('../recover.ts');
    const config = resolvedConfig(self).config;
    if (config.durability === 'object-store') {
      throw new CliError(EXIT_USAGE, 'recover: not needed with --durability object-store: there is no local write-ahead log to rebuild; every start recovers from the object store, and lazy lookup serves every stored stream at once');
    }
    let bar: import('cli-progress').SingleBar | undefined;
    if (flags.progress && process.stderr.isTTY) {
      const { SingleBar, Presets } = await import('cli-progress');
      bar = new SingleBar({ stream: process.stderr, format: 'recover [{bar}] {value}/{total} {unit}' }, Presets.shades_classic);
    }
    try {
      const report = await recoverFromStore(config, pino({ level: config.logLevel }, process.stderr), flags.keyPrefix ?? '', (done, total, phase) => {
        if (bar === undefined) return;
        // Listing the key-prefix shards, then reading each incarnation's newest manifest.
        if (done === 1) bar.start(total, 0, { unit: phase === 'list' ? 'shards listed' : 'incarnations read' });
        bar.update(done);
      });
      bar?.stop();
      process.stdout.write(`incarnations: ${report.incarnations}\nloaded: ${report.loaded}\nskipped: ${report.skipped}\nrequests: ${report.requests.list} LIST, ${report.requests.get} GET\n`);
    } finally {
      bar?.stop();
    }
  });
}
