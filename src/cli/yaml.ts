/**
 * The `yaml` package, loaded on first use: `cairn serve` without a config file (and every client
 * command) never needs it, and not importing it keeps the server's start fast.
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let yaml: typeof Yaml | undefined;

export function loadYaml(): typeof Yaml {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml;
}
