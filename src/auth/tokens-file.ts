/**
 * The static API tokens file (`--auth-tokens-file`), YAML or JSON (YAML is a superset):
 *
 * ```yaml
 * tokens:
 *   - name: ingest                 # optional; names the token in logs and rate-limit keys
 *     sha256: 2c26b46b68ff…        # hex SHA-256 of the token (preferred), or:  token: <the token>
 *     grants:
 *       - { paths: ["tenant-a/**"], operations: [read, write] }
 * ```
 * A bare list of entries is accepted too. Tokens are looked up by the SHA-256 of the presented
 * bearer value, so a file holding only hashes reveals no token.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { compileGrants, grantsSchema, type CompiledGrant } from './grants.ts';

const entrySchema = z
  .object({
    name: z.string().min(1).optional(),
    token: z.string().min(16, 'a token must have at least 16 characters').optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hex digits')
      .optional(),
    grants: grantsSchema,
  })
  .strict()
  .refine((entry) => (entry.token === undefined) !== (entry.sha256 === undefined), 'give exactly one of token or sha256');

const fileSchema = z.object({ tokens: z.array(entrySchema) }).strict();

/** One static token: its key for per-client limits and its grants. */
export interface StaticToken {
  key: string;
  grants: CompiledGrant[];
}

/** Hex SHA-256 of a token's UTF-8 bytes. */
export function sha256Hex(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The tokens file is unreadable or invalid; the message names the file and the problem. */
export class TokensFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TokensFileError';
  }
}

/**
 * Parses the text of a tokens file into a map from SHA-256 (lower-case hex) to token.
 * @throws TokensFileError for invalid YAML/JSON, an invalid entry or grant, or a duplicate token.
 */
export function parseTokensFile(text: string, source: string): Map<string, StaticToken> {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new TokensFileError(`${source}: not valid YAML or JSON: ${(error as Error).message}`, { cause: error });
  }
  // A bare list is the `tokens` list.
  const result = fileSchema.safeParse(Array.isArray(document) ? { tokens: document } : document);
  if (!result.success) {
    throw new TokensFileError(`${source}: ${z.prettifyError(result.error).replace(/\n/g, '; ')}`);
  }
  const entries = result.data.tokens;
  const tokens = new Map<string, StaticToken>();
  entries.forEach((entry, index) => {
    const hash = entry.sha256?.toLowerCase() ?? sha256Hex(entry.token as string);
    if (tokens.has(hash)) throw new TokensFileError(`${source}: entry ${index} repeats a token`);
    tokens.set(hash, { key: `token:${entry.name ?? hash.slice(0, 16)}`, grants: compileGrants(entry.grants) });
  });
  return tokens;
}

/** Reads and parses a tokens file. @throws TokensFileError */
export async function loadTokensFile(file: string): Promise<Map<string, StaticToken>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TokensFileError(`cannot read --auth-tokens-file ${file}: ${(error as Error).message}`, { cause: error });
  }
  return parseTokensFile(text, file);
}
