/**
 * Summarises a V8 `.cpuprofile` (written by `node --cpu-prof`): the functions with the most self
 * time, the most total time (self + callees, each function counted once per sample), and self
 * time grouped by source file, so a reader can see where a server spends its CPU.
 *
 *   npm run bench -- profile-top <file.cpuprofile> [--limit 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
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
    options: { limit: { type: 'string', default: '25' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  const usage = 'usage: npm run bench -- profile-top <file.cpuprofile> [--limit 25]';
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const file = positionals[0];
  if (file === undefined) throw new Error(usage);
  const limit = Number(values.limit);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const keyOf = (frame: ProfileNode['callFrame']) =>
    `${frame.functionName || '(anonymous)'}  ${shortUrl(frame.url)}${frame.url === '' ? '' : `:${frame.lineNumber + 1}`}`;
  const totalByFunction = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[index] ?? 0;
    if (node === undefined) return;
    totalUs += us;
    addTo(byFunction, keyOf(node.callFrame), us);
    addTo(byFile, shortUrl(node.callFrame.url), us);
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
  process.stdout.write(`${formatTable(['self time by file', 'self', 'share'], top(byFile, totalUs, limit))}\n`);
}
