/**
 * The durable proxy demo (README "Durable proxy"): Cairn in-process with its proxy on, a mock LLM
 * (./mock-llm.ts) as the only allowed upstream, and a page (./page.html) served from another
 * loopback port (so the browser uses CORS for real). The page asks the model through the proxy and
 * shows the answer as it streams; reload it mid-answer and the answer continues from where it was,
 * read from the durable stream, without asking the model again.
 *
 * `npm run demo:proxy` (flags: `--port <cairn port>`, `--page-port <port>`, `--token-delay-ms <ms>`),
 * then open the printed page URL.
 */
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { serveConfigDefaults } from '../../src/config/serve-config.ts';
import { startServer } from '../../src/server.ts';
import { startMockLlm, type MockLlm } from './mock-llm.ts';

export interface ProxyDemo {
  /** The page, with the Cairn and model URLs in its query. */
  pageUrl: string;
  cairnUrl: string;
  llm: MockLlm;
  stop(): Promise<void>;
}

export async function startProxyDemo(options: { port?: number; pagePort?: number; tokenDelayMs?: number } = {}): Promise<ProxyDemo> {
  const llm = await startMockLlm({ tokenDelayMs: options.tokenDelayMs ?? 150 });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-proxy-demo-'));
  const cairn = await startServer(
    {
      ...serveConfigDefaults(),
      host: '127.0.0.1',
      port: options.port ?? 0,
      dataDir,
      logLevel: 'warn',
      // A fresh secret per run: the demo's links die with it.
      proxySigningSecret: randomBytes(32).toString('base64url'),
      proxyAllowUpstream: [`${llm.origin}/v1/chat/completions`],
      proxyAllowLocalhost: true,
    },
    { logger: pino({ level: 'warn' }) },
  );
  const html = await readFile(fileURLToPath(new URL('./page.html', import.meta.url)));
  const page = http.createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html));
  await new Promise<void>((resolve) => page.listen(options.pagePort ?? 0, '127.0.0.1', resolve));
  const pagePort = (page.address() as AddressInfo).port;
  const pageUrl = `http://127.0.0.1:${pagePort}/?cairn=${encodeURIComponent(cairn.url)}&llm=${encodeURIComponent(llm.origin)}`;
  return {
    pageUrl,
    cairnUrl: cairn.url,
    llm,
    async stop() {
      page.closeAllConnections();
      await new Promise<void>((resolve) => page.close(() => resolve()));
      await cairn.close();
      await llm.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const flag = (name: string) => {
    const at = process.argv.indexOf(name);
    return at === -1 ? undefined : Number(process.argv[at + 1]);
  };
  const demo = await startProxyDemo({ port: flag('--port') ?? 4437, pagePort: flag('--page-port') ?? 8080, tokenDelayMs: flag('--token-delay-ms') });
  process.stdout.write(`Cairn at ${demo.cairnUrl}, mock LLM at ${demo.llm.origin}\nOpen ${demo.pageUrl}\n(Ctrl-C to stop)\n`);
  const stop = () => void demo.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
