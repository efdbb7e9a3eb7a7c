/**
 * Turns the settings table (src/config/serve-config.ts) into commander options and, before the
 * command's action runs, into a validated configuration: flag > `CAIRN_*` env > config file
 * (`--config` / `CAIRN_CONFIG`) > default. Used by `cairn serve` and `cairn config print`, so both
 * see exactly the same configuration.
 *
 * A renamed setting's old flag, variable and file key (`formerly` in the table) still work; each
 * use is reported once on stderr as `cairn: --old is deprecated; use --new`.
 *
 * The resolved values are also written back into the command's option values, so an action that
 * reads `command.opts()` (as bench/lib/cairn-with-stats.ts does) gets the validated, typed config.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadYaml } from './yaml.ts';
import {
  ConfigError,
  helpText,
  isSwitch,
  longFlag,
  resolveConfig,
  type ConfigSources,
  type ResolvedConfig,
  type SettingSource,
} from '../config/settings.ts';
import { serveConfigSchema, serveSettings, type ServeConfig } from '../config/serve-config.ts';

export const CONFIG_ENV = 'CAIRN_CONFIG';

const resolvedByCommand = new WeakMap<Command, ResolvedConfig<ServeConfig>>();

/** Adds one option per setting (no commander default or env: resolution is ours) and `--config`. */
export function addSettingOptions(command: Command): Command {
  command.addOption(new Option('--config <path>', `YAML or JSON config file, camelCase keys (env: ${CONFIG_ENV})`));
  for (const entry of Object.values(serveSettings)) {
    command.addOption(new Option(entry.flag, helpText(entry)));
    // A renamed setting's old flag still works for one release, hidden from --help.
    if (entry.formerly !== undefined) command.addOption(new Option(`${entry.formerly.flag}${entry.flag.slice(longFlag(entry).length)}`).hideHelp());
  }
  command.addHelpText(
    'after',
    '\nPrecedence: flag > CAIRN_* environment variable > config file > default. ' +
      '`cairn config print` shows the effective configuration and where each value came from.',
  );
  command.hook('preAction', (thisCommand) => {
    const resolved = resolveFromCommand(thisCommand, process.env);
    for (const warning of resolved.warnings) process.stderr.write(`cairn: ${warning}\n`);
    resolvedByCommand.set(thisCommand, resolved);
  });
  return command;
}

/** The configuration resolved for `command` by its preAction hook. */
export function resolvedConfig(command: Command): ResolvedConfig<ServeConfig> {
  const resolved = resolvedByCommand.get(command);
  if (resolved === undefined) throw new Error('configuration was not resolved (addSettingOptions not applied?)');
  return resolved;
}

/** Reads and parses a YAML or JSON config file (YAML is a superset of JSON). Throws ConfigError. */
export function loadConfigFile(path: string, source: SettingSource): { path: string; values: Record<string, unknown> } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ key: 'config', source, reason: `cannot read ${path}: ${(error as Error).message}` }]);
  }
  let values: unknown;
  try {
    values = loadYaml().parse(text);
  } catch (error) {
    throw new ConfigError([{ key: 'config', source, reason: `${path} is not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}` }]);
  }
  if (values === null || values === undefined) return { path, values: {} };
  if (typeof values !== 'object' || Array.isArray(values)) {
    throw new ConfigError([{ key: 'config', source, reason: `${path} must hold a mapping of settings (camelCase keys)` }]);
  }
  return { path, values: values as Record<string, unknown> };
}

/** Resolves and validates the configuration from a parsed command and an environment. Throws ConfigError. */
export function resolveFromCommand(command: Command, env: Record<string, string | undefined>): ResolvedConfig<ServeConfig> {
  const opts = command.opts<Record<string, string | boolean | undefined>>();
  const flags: ConfigSources['flags'] = {};
  for (const [key, entry] of Object.entries(serveSettings)) {
    for (const given of entry.formerly === undefined ? [key] : [key, entry.formerly.key]) {
      if (command.getOptionValueSource(given) !== 'cli') continue;
      flags[given] = isSwitch(entry) ? true : opts[given];
    }
  }
  const configFlag = opts.config;
  const configEnv = env[CONFIG_ENV];
  let file: ConfigSources['file'];
  if (typeof configFlag === 'string') file = loadConfigFile(configFlag, { kind: 'flag', flag: '--config' });
  else if (configEnv !== undefined && configEnv !== '') file = loadConfigFile(configEnv, { kind: 'env', name: CONFIG_ENV });
  const resolved = resolveConfig(serveSettings, serveConfigSchema, { flags, env, file });
  for (const key of Object.keys(serveSettings)) {
    const source = resolved.sources[key]?.kind ?? 'default';
    command.setOptionValueWithSource(key, resolved.config[key as keyof ServeConfig], source === 'flag' ? 'cli' : source === 'file' ? 'config' : source === 'env' ? 'env' : 'default');
  }
  return resolved;
}
