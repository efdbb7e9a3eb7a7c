/**
 * `--log-format` (src/observability/logger.ts) on a real `cairn serve` child: JSON lines when
 * stdout is not a terminal (auto) or with `json`, readable lines with `pretty`. The terminal case
 * of `auto` is covered by effectiveLogFormat's unit test (a child's stdout here is a pipe).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { effectiveLogFormat } from '../../src/observability/logger.ts';
import { ChildServer, freePort } from '../fault/support/child-server.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Starts `cairn serve` with `args`, returns its output lines once it logged that it listens. */
async function startupLines(args: string[]): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-log-'));
  dirs.push(dir);
  const lines: string[] = [];
  const child = new ChildServer({ port: await freePort(), dataDir: dir, args: ['--log-level', 'info', ...args], onLine: (line) => lines.push(line) });
  await child.start();
  const deadline = Date.now() + 20_000;
  while (!lines.some((line) => line.includes('cairn listening')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await child.stop();
  return lines.filter((line) => line.trim() !== '');
}

describe('log format', () => {
  test('auto chooses pretty only on a terminal', () => {
    expect(effectiveLogFormat('auto', true)).toBe('pretty');
    expect(effectiveLogFormat('auto', false)).toBe('json');
    expect(effectiveLogFormat('json', true)).toBe('json');
    expect(effectiveLogFormat('pretty', false)).toBe('pretty');
  });

  for (const args of [[], ['--log-format', 'json']]) {
    test(`JSON lines when stdout is a pipe (${args.join(' ') || 'auto'})`, async () => {
      const lines = await startupLines(args);
      const listening = lines.find((line) => line.includes('cairn listening'));
      expect(listening).toBeDefined();
      expect(JSON.parse(listening ?? '')).toMatchObject({ level: 30, msg: 'cairn listening' });
    }, 60_000);
  }

  test('readable lines with --log-format pretty', async () => {
    const lines = await startupLines(['--log-format', 'pretty']);
    const listening = lines.find((line) => line.includes('cairn listening'));
    expect(listening).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*cairn listening/);
    expect(() => JSON.parse(listening ?? '')).toThrow();
  }, 60_000);
});
