/**
 * Grant matching (src/auth/grants.ts) and the static tokens file (src/auth/tokens-file.ts).
 */
import { describe, expect, test } from 'vitest';
import { checkGrants, compileGrants, compilePattern } from '../../src/auth/grants.ts';
import { parseTokensFile, sha256Hex, TokensFileError } from '../../src/auth/tokens-file.ts';

describe('path patterns', () => {
  test('* stays inside one segment, ** crosses segments, the rest is literal', () => {
    expect(compilePattern('tenant-a/*').test('tenant-a/chat')).toBe(true);
    expect(compilePattern('tenant-a/*').test('tenant-a/chat/1')).toBe(false);
    expect(compilePattern('tenant-a/*').test('tenant-a')).toBe(false);
    expect(compilePattern('tenant-a/**').test('tenant-a/chat/1')).toBe(true);
    expect(compilePattern('tenant-a/**').test('tenant-b/chat')).toBe(false);
    expect(compilePattern('**').test('any/thing/at/all')).toBe(true);
    expect(compilePattern('logs/*.json').test('logs/a.json')).toBe(true);
    expect(compilePattern('logs/*.json').test('logs/axjson')).toBe(false); // '.' is literal
    expect(compilePattern('a+b(c)').test('a+b(c)')).toBe(true);
    expect(compilePattern('a+b(c)').test('aab')).toBe(false);
    expect(compilePattern('exact').test('exact2')).toBe(false);
    expect(compilePattern('x/**').test('x/line1\nline2')).toBe(true);
  });
});

describe('checkGrants', () => {
  const grants = compileGrants([
    { paths: ['tenant-a/**'], operations: ['read', 'write'] },
    { paths: ['public/*'], operations: ['read'], public: true },
    { paths: ['tenant-a/trash/*'], operations: ['delete'] },
  ]);

  test('an operation is allowed only on paths of a grant that lists it', () => {
    expect(checkGrants(grants, 'tenant-a/chat/1', 'read')).toEqual({ publicRead: false });
    expect(checkGrants(grants, 'tenant-a/chat/1', 'write')).toEqual({ publicRead: false });
    expect(checkGrants(grants, 'tenant-a/chat/1', 'delete')).toBeUndefined();
    expect(checkGrants(grants, 'tenant-a/trash/x', 'delete')).toEqual({ publicRead: false });
    expect(checkGrants(grants, 'tenant-b/chat', 'read')).toBeUndefined();
    expect(checkGrants(grants, 'public/news', 'write')).toBeUndefined();
  });

  test('public marks reads only, and only of the paths its grant covers', () => {
    expect(checkGrants(grants, 'public/news', 'read')).toEqual({ publicRead: true });
    const overlapping = compileGrants([
      { paths: ['**'], operations: ['read', 'write'] },
      { paths: ['public/**'], operations: ['read'], public: true },
    ]);
    expect(checkGrants(overlapping, 'public/a', 'read')).toEqual({ publicRead: true });
    expect(checkGrants(overlapping, 'private/a', 'read')).toEqual({ publicRead: false });
    expect(checkGrants(overlapping, 'public/a', 'write')).toEqual({ publicRead: false });
  });

  test('no grants, no access', () => {
    expect(checkGrants([], 'a', 'read')).toBeUndefined();
  });
});

describe('tokens file', () => {
  const hashed = 'a-long-enough-ingest-token-0001';
  const yaml = `
tokens:
  - name: ingest
    sha256: ${sha256Hex(hashed).toUpperCase()}
    grants:
      - paths: ["tenant-a/**"]
        operations: [read, write]
  - token: plain-text-token-of-a-reader
    grants:
      - { paths: ["public/*"], operations: [read], public: true }
`;

  test('YAML with hashed and plain tokens: looked up by SHA-256, keyed by name or hash prefix', () => {
    const tokens = parseTokensFile(yaml, 'tokens.yaml');
    expect(tokens.size).toBe(2);
    const ingest = tokens.get(sha256Hex(hashed));
    expect(ingest?.key).toBe('token:ingest');
    expect(checkGrants(ingest?.grants ?? [], 'tenant-a/x', 'write')).toEqual({ publicRead: false });
    const reader = tokens.get(sha256Hex('plain-text-token-of-a-reader'));
    expect(reader?.key).toBe(`token:${sha256Hex('plain-text-token-of-a-reader').slice(0, 16)}`);
    expect(checkGrants(reader?.grants ?? [], 'public/x', 'read')).toEqual({ publicRead: true });
  });

  test('JSON, as a bare list, is accepted too', () => {
    const json = JSON.stringify([{ token: 'json-token-0123456789', grants: [{ paths: ['**'], operations: ['delete'] }] }]);
    const tokens = parseTokensFile(json, 'tokens.json');
    expect(checkGrants(tokens.get(sha256Hex('json-token-0123456789'))?.grants ?? [], 'x', 'delete')).toBeDefined();
  });

  const invalid: [string, string, RegExp][] = [
    ['not YAML', 'tokens: [', /not valid YAML or JSON/],
    ['unknown operation', 'tokens: [{ token: "0123456789abcdef", grants: [{ paths: ["a"], operations: [admin] }] }]', /operations/],
    ['both token and sha256', `tokens: [{ token: "0123456789abcdef", sha256: "${'a'.repeat(64)}", grants: [] }]`, /exactly one of token or sha256/],
    ['neither token nor sha256', 'tokens: [{ grants: [] }]', /exactly one of token or sha256/],
    ['short token', 'tokens: [{ token: "short", grants: [] }]', /at least 16 characters/],
    ['bad hash', 'tokens: [{ sha256: "xyz", grants: [] }]', /64 hex digits/],
    ['unknown field', 'tokens: [{ token: "0123456789abcdef", grants: [], admin: true }]', /admin/],
    ['empty paths', 'tokens: [{ token: "0123456789abcdef", grants: [{ paths: [], operations: [read] }] }]', /paths/],
    ['duplicate', 'tokens: [{ token: "0123456789abcdef", grants: [] }, { token: "0123456789abcdef", grants: [] }]', /repeats a token/],
  ];
  for (const [name, text, message] of invalid) {
    test(`refused: ${name}`, () => {
      expect(() => parseTokensFile(text, 'tokens.yaml')).toThrow(TokensFileError);
      expect(() => parseTokensFile(text, 'tokens.yaml')).toThrow(message);
    });
  }
});
