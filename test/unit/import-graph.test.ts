/**
 * The import graph follows DESIGN.md's layers (rules and the reason for each layer's place:
 * .dependency-cruiser.cjs): no upward import, no import between peers, hence no folder-level
 * cycle. Runs the same dependency-cruiser CLI as `npm run lint:imports`, on src/ and on a tiny
 * fixture tree with an injected upward import, to show the rules can fail.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const depcruise = path.join(root, 'node_modules/.bin/depcruise');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** The violations dependency-cruiser reports for `target` (relative to the repository root). */
async function violationsOf(target: string): Promise<Violation[]> {
  const run = promisify(execFile)(depcruise, ['--config', '.dependency-cruiser.cjs', '--output-type', 'json', target], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  // The CLI exits non-zero when it finds violations; its JSON report is on stdout either way.
  const { stdout } = await run.catch((error: { stdout?: string }) => {
    if (typeof error.stdout !== 'string' || error.stdout === '') throw error;
    return { stdout: error.stdout };
  });
  const report = JSON.parse(stdout) as { summary: { violations: Violation[]; totalCruised: number } };
  expect(report.summary.totalCruised).toBeGreaterThan(0);
  return report.summary.violations;
}

describe('import graph', () => {
  test('src/ imports only downward', async () => {
    const violations = await violationsOf('src');
    expect(violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
  }, 120_000);

  test('an injected upward import (and the folder cycle it closes) is reported', async () => {
    const violations = await violationsOf('test/unit/fixtures/import-graph/src');
    expect(violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([
      'layer-protocol: test/unit/fixtures/import-graph/src/protocol/offset.ts → test/unit/fixtures/import-graph/src/http/route.ts',
    ]);
  }, 120_000);
});
