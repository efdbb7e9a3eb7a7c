/**
 * Summarises a V8 `.cpuprofile` (written by `node --cpu-prof`): the functions with the most self
 * time, the most total time (self + callees, each function counted once per sample), and self
 * time grouped by source file and by area (V8, Node's http/net/streams, each package, each
 * directory of Cairn's src/) as a share of the busy (non-idle) time, so a reader can see where a
 * server spends its CPU.
 *
 *   npm run bench -- profile-top <file.cpuprofile> [--limit 25] [--skip-ms 0]
 *
 * `--skip-ms` leaves out the first milliseconds of the profile (the process start: module loading
 * and type stripping), so the tables describe the workload.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { wholeNumberFlag } from './lib/bench-server.ts';
import { formatTable } from './lib/table.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const nodeModules = url.lastIndexOf('node_modules/');
  if (nodeModules >= 0) return url.slice(nodeModules + 'node_modules/'.length);
  const source = url.indexOf('/src/');
  if (source >= 0) return url.slice(source + 1);
  return url.replace(/^file:\/\//, '');
}

/** A coarse owner of a frame's self time: what a note about a bottleneck names. */
function areaOf(frame: ProfileNode['callFrame']): string {
  const { functionName, url } = frame;
  if (url === '') {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (idle), (program)
    return /^(write|writev|writeBuffer|writeBuffers|writeUtf8String|writeLatin1String|fdatasync|fsync|read|close|open)/.test(functionName)
      ? 'native: socket and file calls'
      : 'native: other';
  }
  const nodeModules = url.lastIndexOf('node_modules/');
  if (nodeModules >= 0) {
    const parts = url.slice(nodeModules + 'node_modules/'.length).split('/');
    return `package: ${parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  const source = url.indexOf('/src/');
  if (source >= 0) return `cairn: ${url.slice(source + 1).split('/').slice(0, 2).join('/').replace(/\.ts$/, '')}`;
  if (url.startsWith('node:internal/')) return `node: ${url.slice('node:internal/'.length).split('/')[0]}`;
  if (url.startsWith('node:')) return `node: ${url.slice('node:'.length).replace(/^_/, '').split('_')[0]}`;
  return shortUrl(url);
}

function addTo(totals: Map<string, number>, key: string, us: number): void {
  totals.set(key, (totals.get(key) ?? 0) + us);
}

function top(totals: Map<string, number>, totalUs: number, limit: number): string[][] {
  return [...totals.entries()]
    .sort((left, right) => right[1] - left[1])
    .slice(0, limit)
      .map(([key, us]) => [key, `${(us / 1000).toFixed(0)} ms`, `${((us / totalUs) * 100).toFixed(1)}%`]);
}

export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { limit: { type: 'string', default: '25' }, 'skip-ms': { type: 'string', default: '0' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  const usage = 'usage: npm run bench -- profile-top <file.cpuprofile> [--limit 25] [--skip-ms 0]';
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const file = positionals[0];
  if (file === undefined) throw new Error(usage);
  const limit = wholeNumberFlag('limit', values.limit, 1, 1000);
  const skipUs = wholeNumberFlag('skip-ms', values['skip-ms'], 0, 86_400_000) * 1000;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const keyOf = (frame: ProfileNode['callFrame']) =>
    `${frame.functionName || '(anonymous)'}  ${shortUrl(frame.url)}${frame.url === '' ? '' : `:${frame.lineNumber + 1}`}`;
  const totalByFunction = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byArea = new Map<string, number>();
  let totalUs = 0;
  let elapsedUs = 0;
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[index] ?? 0;
    elapsedUs += us;
    if (node === undefined || elapsedUs < skipUs) return;
    totalUs += us;
    addTo(byFunction, keyOf(node.callFrame), us);
    addTo(byFile, shortUrl(node.callFrame.url), us);
    addTo(byArea, areaOf(node.callFrame), us);
    const onStack = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parentOf.get(current)) {
      const frame = byId.get(current)?.callFrame;
      if (frame !== undefined && frame.functionName !== '(root)') onStack.add(keyOf(frame));
    }
    for (const key of onStack) addTo(totalByFunction, key, us);
  });
  const idleUs = [...byFunction.entries()].filter(([key]) => key.startsWith('(idle)')).reduce((sum, [, us]) => sum + us, 0);
  process.stdout.write(`${file}: ${(totalUs / 1000).toFixed(0)} ms sampled, ${((idleUs / totalUs) * 100).toFixed(1)}% idle\n\n`);
  process.stdout.write(`${formatTable(['self time by function', 'self', 'share'], top(byFunction, totalUs, limit))}\n\n`);
  process.stdout.write(`${formatTable(['total time by function', 'total', 'share'], top(totalByFunction, totalUs, limit))}\n\n`);
  process.stdout.write(`${formatTable(['self time by file', 'self', 'share'], top(byFile, totalUs, limit))}\n\n`);
  byArea.delete('(idle)');
  process.stdout.write(`${formatTable(['self time by area (share of busy time)', 'self', 'share'], top(byArea, totalUs - idleUs, limit))}\n`);
}
