/**
 * Benchmark entry: `npm run bench -- <name> [flags]`, e.g. `npm run bench -- append --duration-ms 3000`.
 * Benchmarks print their results; they are not tests (STYLE.md).
 */
interface Bench {
  description: string;
  load: () => Promise<{ main: (args: string[]) => Promise<void> }>;
}

const BENCHES: Record<string, Bench> = {
  append: {
    description: 'append throughput/latency: cairn (wal) vs the reference server (file, memory)',
    load: () => import('./append.ts'),
  },
  'cold-read': {
    description: 'catch-up of a 256 MiB stream: cairn hot tail / segments (cache cold, warm) vs the reference server; object-store requests per GiB',
    load: () => import('./cold-read.ts'),
  },
  'profile-top': {
    description: 'top self-time functions of a .cpuprofile (e.g. from `append --cpu-prof`)',
    load: () => import('./profile-top.ts'),
  },
};

const [name, ...args] = process.argv.slice(2);
const bench = name === undefined ? undefined : BENCHES[name];
if (bench === undefined) {
  process.stderr.write(`usage: npm run bench -- <name> [flags]\n\n`);
  for (const [key, entry] of Object.entries(BENCHES)) process.stderr.write(`  ${key.padEnd(12)} ${entry.description}\n`);
  process.exitCode = name === undefined ? 0 : 2;
} else {
  const module = await bench.load();
  try {
    await module.main(args);
  } catch (error) {
    process.stderr.write(`bench ${name}: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
