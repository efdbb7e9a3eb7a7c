/**
 * The lint rules that keep time, timers and randomness injected (STYLE.md; eslint.config.js):
 * the real tree is clean, and each forbidden use is reported when injected into src/stream/.
 */
import { ESLint } from 'eslint';
import { describe, expect, test } from 'vitest';

const eslint = new ESLint();

async function rulesBrokenBy(code: string, filePath = 'src/stream/injected.ts'): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.map((message) => message.ruleId ?? message.message);
}

describe('lint rules', () => {
  test('src/ passes', async () => {
    const results = await eslint.lintFiles(['src']);
    const errors = results.flatMap((result) => result.messages.filter((m) => m.severity === 2).map((m) => `${result.filePath}:${m.line} ${m.ruleId}`));
    expect(errors).toEqual([]);
  }, 120_000);

  test.each([
    ['Date.now()', 'export const t = Date.now();\n', 'no-restricted-properties'],
    ['new Date()', 'export const t = new Date();\n', 'no-restricted-syntax'],
    ['performance.now()', 'export const t = performance.now();\n', 'no-restricted-properties'],
    ['Math.random()', 'export const r = Math.random();\n', 'no-restricted-properties'],
    ['setTimeout', 'setTimeout(() => {}, 1);\n', 'no-restricted-globals'],
    ['setInterval', 'setInterval(() => {}, 1);\n', 'no-restricted-globals'],
    ['node:timers/promises', "import { setTimeout } from 'node:timers/promises';\nawait setTimeout(1);\n", 'no-restricted-imports'],
  ])('%s in src/stream/ is reported', async (_name, code, rule) => {
    expect(await rulesBrokenBy(code)).toContain(rule);
  });

  test('src/clock.ts may use them', async () => {
    expect(await rulesBrokenBy('export const t = Date.now() + Math.random();\n', 'src/clock.ts')).toEqual([]);
  });
});
