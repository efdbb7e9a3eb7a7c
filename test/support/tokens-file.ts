/**
 * Writes an `--auth-tokens-file` (README "Auth") for tests: one entry per token, each with its
 * grants (path globs and operations).
 */
import { writeFile } from 'node:fs/promises';

export interface TestToken {
  name: string;
  token: string;
  grants: { paths: string[]; operations: string[] }[];
}

/** Writes `tokens` as the YAML tokens file at `file`. */
export function writeTokensFile(file: string, tokens: readonly TestToken[]): Promise<void> {
  const entries = tokens.map(
    ({ name, token, grants }) =>
      `  - name: ${name}\n    token: ${token}\n    grants: [${grants.map((grant) => `{ paths: ${JSON.stringify(grant.paths)}, operations: [${grant.operations.join(', ')}] }`).join(', ')}]\n`,
  );
  return writeFile(file, `tokens:\n${entries.join('')}`);
}
