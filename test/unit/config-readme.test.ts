/**
 * README.md documents every setting and every command: each row of the settings table in
 * "## Configuration" matches the schema (flag, variable, file key, default), no row is stale, its
 * "### Renamed settings" table lists exactly the old spellings the schema still accepts, and
 * "## Command line" names every client command and every exit code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serveSettings } from '../../src/config/serve-config.ts';
import { longFlag, type Setting } from '../../src/config/settings.ts';
import { clientCommands } from '../../src/cli/client/commands.ts';
import * as exitCodes from '../../src/cli/exit-codes.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The text of a `## ` section, up to the next one. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start === -1) throw new Error(`README has no "## ${title}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** Table rows of a section as arrays of trimmed cells. */
function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-| ]+\|$/.test(line))
    .map((line) => line.replace(/\\\|/g, '¦').split('|').slice(1, -1).map((cell) => cell.trim()));
}

describe('README: Configuration', () => {
  const [current = '', renamed = ''] = section('Configuration').split('\n### Renamed settings\n');
  const settingRows = rows(current).filter((cells) => /^`--/.test(cells[0] ?? ''));
  const renamedRows = rows(renamed).filter((cells) => /^`--/.test(cells[0] ?? ''));

  it('has a row for every setting, with its variable, file key and default', () => {
    for (const [key, entry] of Object.entries(serveSettings)) {
      const row = settingRows.find((cells) => cells[0] === `\`${longFlag(entry)}\``);
      expect(row, `README row for ${longFlag(entry)}`).toBeDefined();
      expect(row?.[1]).toBe(`\`${entry.env}\``);
      expect(row?.[2]).toBe(`\`${key}\``);
      const shownDefault = entry.default === undefined ? (entry.unsetMeans ?? 'not set') : typeof entry.default === 'boolean' ? (entry.default ? 'on' : 'off') : `\`${entry.default}\``;
      expect(row?.[3]?.startsWith(shownDefault), `default of ${key}: ${row?.[3]}`).toBe(true);
      expect(row?.[5]?.length ?? 0).toBeGreaterThan(0);
    }
  });

  it('has no row for a flag the schema does not have', () => {
    const flags = new Set(Object.values(serveSettings).map((entry) => `\`${longFlag(entry)}\``));
    expect(settingRows.map((cells) => cells[0]).filter((flag) => !flags.has(flag ?? ''))).toEqual([]);
  });

  it('"Renamed settings" lists every old spelling the schema accepts, with its new flag, and no other', () => {
    const entries: Setting[] = Object.values(serveSettings);
    for (const entry of entries) {
      if (entry.formerly === undefined) continue;
      const row = renamedRows.find((cells) => cells[0] === `\`${entry.formerly?.flag}\``);
      expect(row, `README row for ${entry.formerly.flag}`).toBeDefined();
      expect(row?.[1]).toBe(`\`${entry.formerly.env}\``);
      expect(row?.[2]).toBe(`\`${entry.formerly.key}\``);
      expect(row?.[3]?.startsWith(`\`${longFlag(entry)}\``), `new flag of ${entry.formerly.flag}: ${row?.[3]}`).toBe(true);
    }
    const formerFlags = new Set(entries.flatMap((entry) => (entry.formerly === undefined ? [] : [`\`${entry.formerly.flag}\``])));
    expect(renamedRows.map((cells) => cells[0]).filter((flag) => !formerFlags.has(flag ?? ''))).toEqual([]);
    expect(renamedRows.length).toBe(formerFlags.size);
  });
});

describe('README: Command line', () => {
  const text = section('Command line');

  it('documents every client command in its table', () => {
    const documented = rows(text).map((cells) => cells[0] ?? '');
    for (const command of clientCommands()) {
      expect(documented.some((cell) => cell.startsWith(`\`cairn ${command.name()} `)), `cairn ${command.name()}`).toBe(true);
      for (const option of command.options) {
        if (option.long === '--token') continue;
        expect(text, `cairn ${command.name()} ${option.long}`).toContain(`\`${option.long}`);
      }
    }
  });

  it('lists every exit code', () => {
    const codes = rows(text).map((cells) => cells[0]);
    const defined = Object.entries(exitCodes).filter(([name]) => name.startsWith('EXIT_')).map(([, value]) => String(value));
    for (const code of defined) expect(codes).toContain(code);
  });
});
