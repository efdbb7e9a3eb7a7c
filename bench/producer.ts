/**
 * Workload 2, batched appends: `IdempotentProducer` from `@durable-streams/client` pushing JSON
 * messages of 100 bytes to one `application/json` stream; messages/s acknowledged. Cairn
 * (`--durability wal`) against the reference server file-backed and in memory, in the same run.
 *
 *   npm run bench -- producer [--duration-ms 5000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
 *                             [--producers 4] [--message-bytes 100] [--linger-ms 5]
 *                             [--max-batch-bytes 1048576] [--max-in-flight 5] [--data-root DIR] [--cpu-prof]
 *
 * Per server: a fresh process and data directory, the stream created with `PUT` (application/json),
 * then the load generator bench/lib/producer-load.ts as its own Node process pinned to core 1
 * (the client library is the point, so the generator is Node, not wrk): `--producers` producers
 * (separate producer ids, one process; see PRODUCERS_DEFAULT) with the client's batching options, paced by their
 * in-flight limit, warm up and then a measured window; then flush. messages/s = messages in
 * batches answered 200 inside the window / window. Afterwards the stream is read back from `-1`
 * (following `Stream-Next-Offset`) and must hold exactly the messages sent, each producer's in
 * order, else the row is flagged `NOT VERIFIED`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  benchHeader,
  cellFlags,
  describePinning,
  fileTimestamp,
  GENERATOR_CORE,
  installInterruptCleanup,
  OTHER_CPU_BUSY_PERCENT,
  parseServers,
  pinTo,
  SERVER_LABELS,
  SERVER_NAMES,
  STREAM_PATH_ROOT,
  withServer,
  type FlaggableCell,
  type ServerName,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { runForResultLine } from './lib/child-result.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import type { ProducerLoadResult } from './lib/producer-load.ts';
import { formatCount, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const LOAD_SCRIPT = fileURLToPath(new URL('./lib/producer-load.ts', import.meta.url));
const STREAM_PATH = `${STREAM_PATH_ROOT}bench/producer`;
const TARGET_WORKLOAD = '2. batched JSON messages, durable';
const TARGET_MESSAGES_PER_S = 400_000;
/**
 * Producers (separate producer ids) in the one generator process. One producer is limited by its
 * own pipeline rather than by the server: its up-to-5 batches in flight on separate HTTP/1.1
 * connections overtake each other, and about half come back 409 and are sent again after their
 * predecessor. A stream taking hundreds of thousands of messages a second has several writers
 * (services, workers, partitions), so the default runs four; they share one process because only
 * one core is left for the generator (more processes on it would only add overhead).
 */
const PRODUCERS_DEFAULT = 4;
/** The generator's own bound after its window: flush (30 s) plus start-up; killed beyond this. */
const LOAD_OVERRUN_KILL_MS = 60_000;
/** Reading the whole stream back (hundreds of MB of JSON at most) must finish within this. */
const VERIFY_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 30_000;

interface Options {
  durationMs: number;
  warmupMs: number;
  servers: ServerName[];
  producerCount: number;
  messageBytes: number;
  lingerMs: number;
  maxBatchBytes: number;
  maxInFlight: number;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

interface Verification {
  /** Messages read back. */
  messageCount: number;
  responseCount: number;
  readMs: number;
  /** Undefined when the stream held exactly the messages sent, in each producer's order. */
  problem?: string;
}

interface ProducerCell extends FlaggableCell {
  server: ServerName;
  load?: ProducerLoadResult;
  /** Messages acknowledged (batch answered 200) per second inside the measured window. */
  messagesPerS?: number;
  serverCpuPercent?: number;
  verification?: Verification;
  serverExit?: string;
}

async function createJsonStream(url: string): Promise<void> {
  const response = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  await response.arrayBuffer();
  if (response.status !== 201) throw new Error(`PUT ${url} answered ${response.status}`);
}

/**
 * Reads the stream from `-1`, following `Stream-Next-Offset` until `Stream-Up-To-Date`, and checks
 * that it holds exactly `sentCounts[p]` messages of producer p with i = 0, 1, … in order (producers
 * interleave) and nothing else. Messages are parsed response by response, not kept.
 */
async function verifyStream(url: string, sentCounts: readonly number[]): Promise<Verification> {
  const startedMs = performance.now();
  const deadlineMs = startedMs + VERIFY_TIMEOUT_MS;
  const nextIndex = sentCounts.map(() => 0);
  let messageCount = 0;
  let responseCount = 0;
  let offset = '-1';
  const result = (problem?: string): Verification => ({
    messageCount,
    responseCount,
    readMs: performance.now() - startedMs,
    ...(problem === undefined ? {} : { problem }),
  });
  for (;;) {
    if (performance.now() > deadlineMs) return result(`read-back not finished within ${VERIFY_TIMEOUT_MS} ms`);
    const response = await fetch(`${url}?offset=${encodeURIComponent(offset)}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await response.text();
    responseCount++;
    if (response.status !== 200) return result(`GET offset ${offset} answered ${response.status}`);
    const messages = JSON.parse(text) as unknown;
    if (!Array.isArray(messages)) return result(`GET offset ${offset} did not answer a JSON array`);
    for (const message of messages as { p?: unknown; i?: unknown }[]) {
      const producer = message.p;
      if (typeof producer !== 'number' || nextIndex[producer] === undefined) return result(`message ${messageCount} has unknown producer ${String(producer)}`);
      if (message.i !== nextIndex[producer]) return result(`message ${messageCount}: producer ${producer} i=${String(message.i)}, expected ${nextIndex[producer]}`);
      nextIndex[producer] = (nextIndex[producer] ?? 0) + 1;
      messageCount++;
    }
    const next = response.headers.get('stream-next-offset');
    if (next === null) return result(`GET offset ${offset} has no Stream-Next-Offset`);
    if (response.headers.get('stream-up-to-date') === 'true') break;
    if (next === offset) return result(`Stream-Next-Offset did not advance from ${offset}`);
    offset = next;
  }
  const short = sentCounts.findIndex((sent, producer) => nextIndex[producer] !== sent);
  if (short !== -1) return result(`producer ${short}: ${nextIndex[short]} messages in the stream, ${sentCounts[short]} sent`);
  return result();
}

function loadArgs(options: Options, url: string, serverPid: number): string[] {
  return [
    process.execPath,
    LOAD_SCRIPT,
    '--url',
    url,
    '--server-pid',
    String(serverPid),
    '--producers',
    String(options.producerCount),
    '--message-bytes',
    String(options.messageBytes),
    '--warmup-ms',
    String(options.warmupMs),
    '--duration-ms',
    String(options.durationMs),
    '--linger-ms',
    String(options.lingerMs),
    '--max-batch-bytes',
    String(options.maxBatchBytes),
    '--max-in-flight',
    String(options.maxInFlight),
  ];
}

async function runCell(server: ServerName, options: Options, machine: Machine): Promise<ProducerCell> {
  const cell: ProducerCell = { server };
  const settings = {
    dataRoot: options.dataRoot,
    ...(options.cpuProfileDir === undefined ? {} : { cpuProfile: { dir: options.cpuProfileDir, name: 'cairn-producer.cpuprofile' } }),
  };
  const outcome = await withServer(server, machine, settings, async ({ baseUrl, running }) => {
    const url = `${baseUrl}${STREAM_PATH}`;
    await createJsonStream(url);
    const killAfterMs = options.warmupMs + options.durationMs + LOAD_OVERRUN_KILL_MS;
    const child = await runForResultLine([...pinTo(machine, GENERATOR_CORE), ...loadArgs(options, url, running.pid)], 'PRODUCER_RESULT_JSON ', killAfterMs);
    if (child.code !== 0 || child.result === undefined) throw new Error(`producer load exited with ${child.code}:\n${child.output}`);
    const load = child.result as ProducerLoadResult;
    return { load, verification: await verifyStream(url, load.sentCounts) };
  });
  if (outcome.value !== undefined) {
    const { load, verification } = outcome.value;
    cell.load = load;
    cell.verification = verification;
    cell.messagesPerS = load.ackedInWindowCount / load.windowS;
    cell.serverCpuPercent = load.serverCpuPercent;
    cell.generatorCpuPercent = load.generatorCpuPercent;
    cell.otherCpuPercent = load.otherCpuPercent;
  }
  if (outcome.failure !== undefined) cell.failure = outcome.failure;
  if (outcome.serverExit !== undefined) cell.serverExit = outcome.serverExit;
  return cell;
}

function flagsOf(cell: ProducerCell): string {
  const extra: string[] = [];
  const load = cell.load;
  if (load !== undefined) {
    const sent = load.sentCounts.reduce((sum, count) => sum + count, 0);
    if (load.errorCount > 0) extra.push(`${load.errorCount} batch errors`);
    if (load.flushTimedOut) extra.push('flush timed out');
    if (load.ackedCount !== sent) extra.push(`${sent - load.ackedCount} not acknowledged`);
    if (load.duplicateBatchCount > 0) extra.push(`${load.duplicateBatchCount} duplicate batches`);
  }
  if (cell.verification?.problem !== undefined) extra.push('NOT VERIFIED');
  return cellFlags(cell, extra);
}

function ratio(cells: readonly ProducerCell[], cell: ProducerCell, against: ServerName): number {
  const other = cells.find((candidate) => candidate.server === against && candidate.failure === undefined);
  return other?.messagesPerS === undefined || cell.messagesPerS === undefined ? Number.NaN : cell.messagesPerS / other.messagesPerS;
}

function report(cells: readonly ProducerCell[]): string {
  const rows = cells.map((cell) => {
    const load = cell.load;
    const isCairn = cell.server === 'cairn';
    const okBatches = load?.statusCounts['200'] ?? 0;
    const sent = load?.sentCounts.reduce((sum, count) => sum + count, 0);
    return [
      SERVER_LABELS[cell.server],
      formatCount(cell.messagesPerS ?? Number.NaN),
      load === undefined || cell.messagesPerS === undefined ? '-' : ((cell.messagesPerS * load.messageBytes) / 1e6).toFixed(1),
      load === undefined || okBatches === 0 ? '-' : formatCount(load.ackedCount / okBatches),
      load === undefined ? '-' : String(load.statusCounts['409'] ?? 0),
      load === undefined ? '-' : formatCount(load.flushMs),
      formatPercent(cell.serverCpuPercent ?? Number.NaN),
      formatPercent(cell.generatorCpuPercent ?? Number.NaN),
      formatPercent(cell.otherCpuPercent ?? Number.NaN),
      cell.verification === undefined ? '-' : cell.verification.problem === undefined ? `${formatCount(cell.verification.messageCount)} ok` : 'NO',
      sent === undefined ? '-' : formatCount(sent),
      isCairn ? formatRatio(ratio(cells, cell, 'ref-file')) : '',
      isCairn ? formatRatio(ratio(cells, cell, 'ref-memory')) : '',
      flagsOf(cell),
    ];
  });
  return formatTable(
    ['server', 'messages/s', 'MB/s', 'msgs/batch', '409s', 'flush ms', 'srv CPU', 'gen CPU', 'other CPU', 'read back', 'sent', 'cairn/ref-file', 'cairn/ref-mem', 'flags'],
    rows,
    1,
  );
}

function targetChecks(cells: readonly ProducerCell[], options: Options): TargetCheck[] {
  const cairn = cells.find((cell) => cell.server === 'cairn' && cell.failure === undefined);
  const flags = cairn === undefined ? 'ok' : flagsOf(cairn);
  const note =
    cairn === undefined
      ? undefined
      : [
          `${options.producerCount} producer${options.producerCount === 1 ? '' : 's'}`,
          `${formatRatio(ratio(cells, cairn, 'ref-file'))} ref-file`,
          `${formatRatio(ratio(cells, cairn, 'ref-memory'))} ref-memory`,
          ...(flags === 'ok' ? [] : [flags.replace(/^! /, '')]),
        ].join('; ');
  return [checkTarget(TARGET_WORKLOAD, 'messages/s', cairn?.messagesPerS ?? Number.NaN, 'at-least', TARGET_MESSAGES_PER_S, note)];
}

const USAGE = `npm run bench -- producer [--duration-ms 5000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
    [--producers ${PRODUCERS_DEFAULT}] [--message-bytes 100] [--linger-ms 5] [--max-batch-bytes 1048576] [--max-in-flight 5]
    [--data-root DIR] [--cpu-prof]
Batched JSON appends (workload 2): IdempotentProducer (@durable-streams/client, its default batching unless
overridden) in a Node process pinned to core 1; messages/s acknowledged, the stream read back and checked.
A fresh server per row; about 40 s with the defaults. See bench/README.md (producer).
`;

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      producers: { type: 'string', default: String(PRODUCERS_DEFAULT) },
      'message-bytes': { type: 'string', default: '100' },
      'linger-ms': { type: 'string', default: '5' },
      'max-batch-bytes': { type: 'string', default: '1048576' },
      'max-in-flight': { type: 'string', default: '5' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const integer = (flag: string, min: number, max: number): number => wholeNumberFlag(flag, String(values[flag as keyof typeof values]), min, max);
  return {
    durationMs: integer('duration-ms', 1, 600_000),
    warmupMs: integer('warmup-ms', 0, 600_000),
    servers: parseServers(values.servers),
    producerCount: integer('producers', 1, 1000),
    messageBytes: integer('message-bytes', 40, 1_000_000),
    lingerMs: integer('linger-ms', 0, 10_000),
    maxBatchBytes: integer('max-batch-bytes', 1, 64 * 1024 * 1024),
    maxInFlight: integer('max-in-flight', 1, 1000),
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
}

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) {
    process.stdout.write(USAGE);
    return undefined;
  }
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  process.stdout.write(
    [
      ...benchHeader('producer benchmark', machine),
      `load: ${options.producerCount} IdempotentProducer${options.producerCount === 1 ? '' : 's'} (@durable-streams/client) in one Node process, ` +
        `${options.messageBytes}-byte JSON messages; lingerMs ${options.lingerMs}, maxBatchBytes ${options.maxBatchBytes}, maxInFlight ${options.maxInFlight}; ` +
        `warm-up ${options.warmupMs} ms, measure ${options.durationMs} ms per server`,
      `pinning: ${describePinning(machine, 'the producer process')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: ProducerCell[] = [];
  for (const server of options.servers) {
    const cell = await runCell(server, options, machine);
    cells.push(cell);
    const summary =
      cell.failure === undefined
        ? `${formatCount(cell.messagesPerS ?? Number.NaN)} messages/s, ${flagsOf(cell)}`
        : `FAILED: ${cell.failure.split('\n')[0]}`;
    process.stdout.write(`[${cells.length}/${options.servers.length}] ${SERVER_LABELS[server]}: ${summary}\n`);
  }
  process.stdout.write(`\n${report(cells)}\n`);
  const failures = cells.filter((cell) => cell.failure !== undefined);
  for (const cell of failures) process.stdout.write(`\nFAILED ${cell.server}:\n${cell.failure}\n`);
  for (const cell of cells) {
    if (cell.verification?.problem !== undefined) process.stdout.write(`\nNOT VERIFIED ${cell.server}: ${cell.verification.problem}\n`);
    for (const error of cell.load?.errors ?? []) process.stdout.write(`\nbatch error (${cell.server}): ${error}\n`);
  }
  process.stdout.write(
    '\nmessages/s = messages in batches answered 200 during the measured window / window; MB/s = their JSON bytes (10^6 B/s).\n' +
      'msgs/batch = acknowledged messages per 200 answer; 409s = batches the server refused as out of order (pipelined\n' +
      'requests overtaking each other); the client waits for the earlier batch and sends them again. flush ms = time to\n' +
      'drain the producers after the window. read back = messages found reading the stream from -1 (must equal sent).\n' +
      'srv CPU / gen CPU / other CPU: share of one core used by the server / the producer process / everything else during\n' +
      `the window; gen CPU >= 90% means the client is the limit (flagged); other CPU >= ${OTHER_CPU_BUSY_PERCENT}% means a neighbour competed.\n`,
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `producer-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, config, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  if (failures.length > 0 || cells.some((cell) => cell.verification?.problem !== undefined)) process.exitCode = 1;
  return { resultsPath, targets: targetChecks(cells, options) };
}
