/**
 * Builds the web inspector (src/inspector, README "Inspector") into build/inspector/: one
 * esbuild bundle of the preact app (app.js), the page (index.html) and its stylesheet, all served
 * by the server at /inspector/. Run by `npm run build:inspector`, and before `npm start` and
 * `npm test`. Takes well under a second; the output is gitignored.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const source = path.join(root, 'src/inspector');
const out = path.join(root, 'build/inspector');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [path.join(source, 'main.tsx')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});
await copyFile(path.join(source, 'index.html'), path.join(out, 'index.html'));
await copyFile(path.join(source, 'style.css'), path.join(out, 'style.css'));
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`inspector built into ${path.relative(root, out)}/ (app.js ${bytes} bytes)`);
