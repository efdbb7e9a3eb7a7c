// ESLint flat config. Its main job: time, timers and randomness come only from src/clock.ts
// (STYLE.md: injected clock and seeded random source, so failing runs replay exactly).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const clockOnly = 'use the injected Clock / RandomSource (src/clock.ts) so tests control time and replay runs';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'cdk.out/**', 'coverage/**', 'bench/results/**'] },
  {
    // .tsx: the inspector's browser code (src/inspector) keeps the same rules.
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    rules: {
      // `_name` marks a deliberately unused binding (e.g. a property split off with a rest pattern).
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Validators test for control characters on purpose.
      'no-control-regex': 'off',
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: clockOnly },
        { object: 'Math', property: 'random', message: clockOnly },
        { object: 'performance', property: 'now', message: clockOnly },
      ],
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', ].map((name) => ({ name, message: clockOnly })),
      ],
      'no-restricted-imports': [
        'error',
        { paths: ['node:timers', 'node:timers/promises', 'timers', 'timers/promises', 'node:perf_hooks'].map((name) => ({ name, message: clockOnly })) },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: clockOnly }],
    },
  },
  {
    // The browser's clock for the inspector: its one door to time and timers, as src/clock.ts is the server's.
    files: ['src/clock.ts', 'src/inspector/browser-clock.ts'],
    rules: { 'no-restricted-properties': 'off', 'no-restricted-globals': 'off', 'no-restricted-imports': 'off', 'no-restricted-syntax': 'off' },
  },
);
