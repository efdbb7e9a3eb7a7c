/**
 * Grants: which operations a token may perform on which stream paths (README "Authentication").
 *
 * A grant is `{ paths: [pattern…], operations: ['read' | 'write' | 'delete' | 'subscribe'…], public?: boolean }`.
 * Patterns match the stream path (the part after `/v1/stream/`, decoded): `*` matches any run of
 * characters inside one `/`-separated segment, `**` any run including `/`; everything else matches
 * itself. `public: true` marks reads of the matched paths as shareable by caches.
 */
import { z } from 'zod';

/**
 * `write` covers create (PUT), append and close (POST); `read` covers GET, HEAD, long-poll, SSE;
 * `subscribe` covers the subscription APIs over the matched streams (PROTOCOL.md §6–7).
 * `proxy` is the durable proxy's service authentication (README "Durable proxy"): create
 * (`POST /v1/proxy`, checked against the path `__proxy/`), and HEAD, DELETE and signature-less
 * GET of `/v1/proxy/<id>` (checked against `__proxy/<id>`).
 */
export type Operation = 'read' | 'write' | 'delete' | 'subscribe' | 'proxy';

export const grantSchema = z
  .object({
    paths: z.array(z.string().min(1)).min(1),
    operations: z.array(z.enum(['read', 'write', 'delete', 'subscribe', 'proxy'])).min(1),
    public: z.boolean().optional(),
  })
  .strict();

export const grantsSchema = z.array(grantSchema);

export type Grant = z.infer<typeof grantSchema>;

/** A grant with its patterns compiled once (when the token is loaded or verified). */
export interface CompiledGrant {
  patterns: RegExp[];
  /** The patterns as written (subscription globs are compared with them, grantsCoverGlob). */
  sources: string[];
  operations: ReadonlySet<Operation>;
  public: boolean;
}

/** The result of a successful check. */
export interface Access {
  /** True when a grant covering this path for `read` is marked public (shared caches may store reads). */
  publicRead: boolean;
}

/** Compiles a path pattern to an anchored regular expression. */
export function compilePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        source += '.*';
        i++;
      } else {
        source += '[^/]*';
      }
    } else {
      source += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`, 's');
}

export function compileGrants(grants: readonly Grant[]): CompiledGrant[] {
  return grants.map((grant) => ({
    patterns: grant.paths.map(compilePattern),
    sources: [...grant.paths],
    operations: new Set(grant.operations),
    public: grant.public === true,
  }));
}

/**
 * Whether `grants` allow `operation` on `path`; undefined when none does.
 * `publicRead` is computed for reads only: a path is public when some grant covering it for
 * `read` says so.
 */
export function checkGrants(grants: readonly CompiledGrant[], path: string, operation: Operation): Access | undefined {
  let allowed = false;
  let publicRead = false;
  for (const grant of grants) {
    if (!grant.operations.has(operation) || !grant.patterns.some((pattern) => pattern.test(path))) continue;
    allowed = true;
    if (operation !== 'read' || grant.public) {
      publicRead = operation === 'read' && grant.public;
      break;
    }
  }
  return allowed ? { publicRead } : undefined;
}

/**
 * Whether one grant gives both `subscribe` and `read` on every stream a subscription glob can
 * match (PROTOCOL.md §6, §12.1): the grant lists the same pattern, or a `prefix/**` (or `**`)
 * whose prefix the glob's fixed leading segments start with. Conservative: a grant that covers the
 * glob only in a way this check cannot see is not enough, so a subscription never reveals streams
 * its creator cannot read.
 */
export function grantsCoverGlob(grants: readonly CompiledGrant[], glob: string): boolean {
  return grants.some(
    (grant) =>
      grant.operations.has('subscribe') &&
      grant.operations.has('read') &&
      grant.sources.some((source) => {
        if (source === glob || source === '**') return true;
        if (!source.endsWith('/**')) return false;
        const prefix = source.slice(0, -2);
        return glob.startsWith(prefix) && !prefix.includes('*');
      }),
  );
}
