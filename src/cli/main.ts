/**
 * Entry point of the `cairn` command (bin/cairn.js, the container image, `npm start`). It turns on
 * Node's module compile cache before loading anything else: Node strips the TypeScript types of
 * every source file at each start, and the cache keeps the stripped output and V8's code for the
 * next start (about 0.25 s of CPU less per start, 0.5 s → 0.2 s on the development VM; it is part
 * of every restart's time). The cache lives in `NODE_COMPILE_CACHE` or `<os tmpdir>/node-compile-cache`;
 * `NODE_DISABLE_COMPILE_CACHE=1` turns it off; failing to enable it only costs the speed-up.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('./program.ts');
await main(process.argv);
