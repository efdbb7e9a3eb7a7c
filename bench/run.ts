/**
 * Benchmark entry.
 *
 *   npm run bench                       the whole suite, every workload in order, then one targets table
 *   npm run bench -- <name> [flags]     one benchmark, e.g. `npm run bench -- append --duration-ms 3000`
 *   npm run bench -- --list             the benchmarks and what each measures
 *
 * Each benchmark starts its servers itself (Cairn, the upstream reference in file and memory
 * mode), prints its own tables and writes its raw JSON to bench/results/. The suite additionally
 * prints every target of issue 4 as measured/target and writes bench/results/suite-<timestamp>.json
 * with all outcomes. Benchmarks print results; they are not tests (STYLE.md).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from './lib/table.ts';
import { TARGET_HEADER, targetRows, type BenchOutcome, type TargetCheck } from './lib/targets.ts';

interface Bench {
  description: string;
  /** Part of `npm run bench` without a name (tools such as profile-top are not). */
  inSuite: boolean;
  /** Flags the suite passes (a benchmark run by name gets only the user's). */
  suiteArgs?: readonly string[];
  load: () => Promise<{ main: (args: string[]) => Promise<BenchOutcome | void> }>;
}

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const BENCHES: Record<string, Bench> = {
  append: {
    description: '1. small appends: one stream at 1/16/64/256 writers and 1,000 streams; appends/s, p50/p99/p999',
    inSuite: true,
    load: () => import('./append.ts'),
  },
  producer: {
    description: '2. batched appends: IdempotentProducer (@durable-streams/client), 100-byte JSON messages; messages/s',
    inSuite: true,
    load: () => import('./producer.ts'),
  },
  'large-append': {
    description: '3. large appends (1 MiB): MB/s',
    inSuite: true,
    load: () => import('./large-append.ts'),
  },
  create: {
    description: '4. stream creation with 64 concurrent clients: creates/s',
    inSuite: true,
    load: () => import('./create.ts'),
  },
  'cold-read': {
    description: '5. + 10. catch-up of a 256 MiB stream: hot tail / segments (cache cold, warm) on fs and S3; PUTs/GiB ingested, GETs/GiB replayed',
    inSuite: true,
    load: () => import('./cold-read.ts'),
  },
  live: {
    description: '6. live latency: a writer every 10 ms, long-poll and SSE readers; append-to-delivery p50/p99',
    inSuite: true,
    load: () => import('./live.ts'),
  },
  'fan-out': {
    description: '7. fan-out: one append to 10,000 SSE / 5,000 long-poll readers; delivery p50/p99/max, memory per idle connection',
    inSuite: true,
    load: () => import('./fan-out.ts'),
  },
  scale: {
    description: '8. 1,000,000 streams with one small message each: creation time, server RSS, restart time',
    inSuite: true,
    // The idle-sealing watch ends at its time limit with 1M streams (about 800 seals/s); a
    // minute shows its rate and memory and keeps the suite under 15 minutes.
    suiteArgs: ['--seal-wait-ms', '60000'],
    load: () => import('./scale.ts'),
  },
  recovery: {
    description: '9. restart after kill -9 with 1 GiB of WAL to replay: seconds per GiB',
    inSuite: true,
    load: () => import('./recovery.ts'),
  },
  lifecycle: {
    description: '13. PUTs per stream (create-append-close) and per GiB (8 MiB segments); a fresh node\'s lazy lookup p50/p99 with LISTs/GETs per lookup (fs and S3)',
    inSuite: false,
    load: () => import('./lifecycle.ts'),
  },
  recover: {
    description: '13. `cairn recover` of 100,000 sealed streams after a lost disk: time, LISTs and GETs (fs store; --s3 for S3)',
    inSuite: false,
    load: () => import('./recover.ts'),
  },
  workers: {
    description: '14. small appends over 1,000 streams, cairn --workers 1 against --workers 2 (alternating, medians); forwarded share, forwarding CPU, projection to 16/64 cores',
    inSuite: false,
    load: () => import('./workers.ts'),
  },
  cluster: {
    description: '14. a 3-node cluster (3 etcd members) against 1 node: appends to random nodes, catch-up of sealed history from any node, live tails; forwarded share, CPU per append per node, projection',
    inSuite: false,
    load: () => import('./cluster.ts'),
  },
  diskless: {
    description: 'diskless (--durability object-store) against the local WAL: ack p50/p99 of single appends and IdempotentProducer at 1/16/64 on fs, Ceph RGW and fs +10/+50 ms; PUTs per GiB and per idle hour; p99 <= flush + PUT p99 + 5 ms',
    inSuite: false,
    load: () => import('./diskless.ts'),
  },
  'profile-top': {
    description: 'tool: top self-time functions of a .cpuprofile (e.g. from `append --cpu-prof`)',
    inSuite: false,
    load: () => import('./profile-top.ts'),
  },
};

function usage(): string {
  const lines = ['usage: npm run bench [-- <name> [flags]]', '', '  (no name)    the whole suite, then the targets table'];
  for (const [key, entry] of Object.entries(BENCHES)) lines.push(`  ${key.padEnd(12)} ${entry.description}`);
  lines.push('', 'Each benchmark takes --help for its flags.');
  return `${lines.join('\n')}\n`;
}

async function runOne(name: string, bench: Bench, args: string[]): Promise<BenchOutcome | void> {
  const module = await bench.load();
  return module.main(args);
}

interface SuiteEntry {
  bench: string;
  outcome?: BenchOutcome;
  failure?: string;
  elapsedS: number;
}

async function runSuite(): Promise<void> {
  const timestamp = new Date().toISOString().replace(/[:.]/g, '-');
  const entries: SuiteEntry[] = [];
  const suiteStartedMs = performance.now();
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (!bench.inSuite) continue;
    process.stdout.write(`\n======== ${name}: ${bench.description}\n\n`);
    const startedMs = performance.now();
    try {
      const outcome = await runOne(name, bench, [...(bench.suiteArgs ?? [])]);
      entries.push(outcome === undefined ? { bench: name, elapsedS: 0 } : { bench: name, outcome, elapsedS: 0 });
    } catch (error) {
      process.stdout.write(`bench ${name} FAILED: ${(error as Error).message}\n`);
      entries.push({ bench: name, failure: (error as Error).message, elapsedS: 0 });
    }
    const entry = entries[entries.length - 1];
    if (entry !== undefined) entry.elapsedS = (performance.now() - startedMs) / 1000;
  }
  const targets: TargetCheck[] = entries.flatMap((entry) => entry.outcome?.targets ?? []);
  process.stdout.write(`\n======== targets (Cairn, this machine, this run)\n\n${formatTable([...TARGET_HEADER], targetRows(targets), 2)}\n`);
  const missed = targets.filter((check) => !check.met).length;
  const suiteMinutes = (performance.now() - suiteStartedMs) / 60_000;
  process.stdout.write(`\n${targets.length - missed} of ${targets.length} targets met; ${entries.filter((entry) => entry.failure !== undefined).length} benchmarks failed; the suite took ${suiteMinutes.toFixed(1)} minutes.\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `suite-${timestamp}.json`);
  writeFileSync(resultsPath, `${JSON.stringify({ suiteMinutes, entries, targets }, null, 2)}\n`);
  process.stdout.write(`suite results: ${resultsPath} (each benchmark's raw results are named in its entry)\n`);
  if (entries.some((entry) => entry.failure !== undefined)) process.exitCode = 1;
}

const [name, ...args] = process.argv.slice(2);
if (name === undefined) {
  await runSuite();
} else if (name === '--list' || name === '--help' || name === '-h') {
  process.stdout.write(usage());
} else {
  const bench = BENCHES[name];
  if (bench === undefined) {
    process.stderr.write(`unknown benchmark "${name}"\n\n${usage()}`);
    process.exitCode = 2;
  } else {
    try {
      const outcome = await runOne(name, bench, args);
      if (outcome !== undefined && outcome.targets.length > 0) {
        process.stdout.write(`\ntargets:\n${formatTable([...TARGET_HEADER], targetRows(outcome.targets), 2)}\n`);
      }
    } catch (error) {
      process.stderr.write(`bench ${name}: ${(error as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
