/**
 * `cairn config print`: the effective configuration of `cairn serve` for the same flags,
 * environment and config file, with secrets redacted. YAML (the default) notes the source of
 * each value in a comment and is itself a valid config file; JSON is the bare object.
 */
import { Command, Option } from 'commander';
import { loadYaml } from './yaml.ts';
import { describeSource, redactedConfig, type ResolvedConfig, type SettingTable } from '../config/settings.ts';
import { serveSettings } from '../config/serve-config.ts';
import { addSettingOptions, resolvedConfig } from './config-options.ts';

/** The effective configuration as text: `yaml` with a source comment per value, or `json`. */
export function formatConfig(table: SettingTable, resolved: ResolvedConfig<object>, format: 'yaml' | 'json'): string {
  const values = redactedConfig(table, resolved.config);
  if (format === 'json') return `${JSON.stringify(values, null, 2)}\n`;
  const { Document, isMap, isScalar, isSeq } = loadYaml();
  const document = new Document(values);
  if (isMap(document.contents)) {
    for (const pair of document.contents.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const source = resolved.sources[key];
      // A list (corsOrigins, trustProxy) is printed on one line, so it can carry its comment too.
      if (isSeq(pair.value)) pair.value.flow = true;
      if ((isScalar(pair.value) || isSeq(pair.value)) && source !== undefined) pair.value.comment = ` ${describeSource(source)}`;
    }
  }
  const unset = Object.keys(table).filter((key) => values[key] === undefined);
  if (unset.length > 0) document.comment = ` not set: ${unset.join(', ')}`;
  return document.toString();
}

export function configCommand(): Command {
  const print = addSettingOptions(
    new Command('print')
      .description('print the effective `cairn serve` configuration (flags, CAIRN_* env, config file, defaults), secrets redacted')
      .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml')),
  ).action((flags: { format: 'yaml' | 'json' }, self: Command) => {
    process.stdout.write(formatConfig(serveSettings, resolvedConfig(self), flags.format));
  });
  return new Command('config').description('inspect the server configuration').addCommand(print);
}
