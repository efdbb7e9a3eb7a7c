/**
 * Power loss (issue "Power loss: nothing served or acknowledged before it is on disk"): the real
 * WAL writer, recovery, checkpoints, sealer and filesystem store run on a simulated page cache
 * (support/simulated-disk.ts) under a seeded random workload: three streams appended to at once
 * (one through an idempotent producer), checkpoints, and 2 KiB segments sealed as
 * they fill. The run is a chain of process lives, each ended by a `kill -9` (cache kept) or a
 * power loss (only durable state kept). At every file operation of every life, until
 * `POWER_LOSS_CUTS` of them, the test also takes a power-loss image of the machine (optionally
 * keeping a random prefix of each file's unsynced writes), boots the stack on it and checks:
 *   - the stack starts;
 *   - every acknowledged append, every append a reader was served, and every append a producer
 *     retry was answered "duplicate" for, is there, byte-exact and in order (a stream is always
 *     a prefix of what was submitted to it, at least as long as what was acknowledged or served).
 * After every life's recovery it reads each stream (what a reader is served from now on) and a
 * producer resends its last append (which must be a duplicate).
 *
 * Replay a run: POWER_LOSS_SEED=<seed printed> (and POWER_LOSS_CUTS=<n> for more cut points); the
 * seed fixes the workload and every cut, and only a sealer timer tick (100 ms) can reorder it.
 */
import { expect, test } from 'vitest';
import { seededRandom, systemClock, type RandomSource } from '../../src/clock.ts';
import { SimulatedMachine, type SimulatedProcess } from './support/simulated-disk.ts';
import { bootStack, DATA_DIR, type StorageStack } from './support/storage-stack.ts';

const BINARY = 'application/octet-stream';
const SEED = Number(process.env.POWER_LOSS_SEED ?? Math.floor(Math.random() * 2 ** 32));
const CUTS = Number(process.env.POWER_LOSS_CUTS ?? 2_500);
const SEGMENT_BYTES = 2_048;

interface StreamModel {
  path: string;
  producer: boolean;
  /** The create was acknowledged: the stream must exist. */
  created: boolean;
  /** Bodies submitted, in order (an append in flight at a crash is last). */
  submitted: Buffer[];
  /** Leading appends acknowledged, served or answered duplicate: they must survive. */
  mustHave: number;
}

interface Expectation {
  path: string;
  created: boolean;
  submitted: Buffer[];
  mustHave: number;
}

const snapshot = (models: StreamModel[]): Expectation[] =>
  models.map((m) => ({ path: m.path, created: m.created, submitted: [...m.submitted], mustHave: m.mustHave }));

/** How many leading submitted appends `stack` serves for `e`; throws a description if that breaks the rules. */
async function servedCount(stack: StorageStack, e: Expectation): Promise<number> {
  const content = await stack.readAll(e.path);
  if (content === undefined) {
    if (e.created) throw new Error(`${e.path}: acknowledged create lost`);
    return 0;
  }
  let positionBytes = 0;
  let n = 0;
  while (n < e.submitted.length) {
    const body = e.submitted[n]!;
    if (positionBytes + body.length > content.length || !content.subarray(positionBytes, positionBytes + body.length).equals(body)) break;
    positionBytes += body.length;
    n++;
  }
  if (positionBytes !== content.length) {
    throw new Error(`${e.path}: served ${content.length} B that are not a prefix of the submitted appends (matched ${n} appends, ${positionBytes} B)`);
  }
  if (n < e.mustHave) {
    throw new Error(`${e.path}: ${e.mustHave} appends were acknowledged or served, only ${n} survived (${content.length} B)`);
  }
  return n;
}

test(`power loss at every step: nothing acknowledged or served is lost, the stack always starts (seed ${SEED})`, { timeout: 120_000 }, async () => {
  console.log(`power-loss: seed ${SEED} (replay with POWER_LOSS_SEED=${SEED}), ${CUTS} cut points`);
  const random: RandomSource = seededRandom(SEED);
  const clockMs = { now: 1_700_000_000_000 };
  const clock = { ...systemClock, nowMs: () => clockMs.now };
  const models: StreamModel[] = ['a', 'b', 'p'].map((name) => ({
    path: `/v1/stream/power/${name}`,
    producer: name === 'p',
    created: false,
    submitted: [],
    mustHave: 0,
  }));
  const failures: string[] = [];
  let machine = new SimulatedMachine();
  // The data directory exists (the server's loadNodeId creates it durably before the WAL opens).
  machine.mkdirs(DATA_DIR);
  machine.sync(machine.root, '/');
  let cuts = 0;
  let checking: Promise<void> = Promise.resolve();
  const stats = { lives: 0, kills: 0, powerLosses: 0, acked: 0, servedChecks: 0, duplicates: 0, bootRefusals: 0 };

  /** Boots a copy of `image` (a power-loss image) and checks it against `expected`. */
  async function checkImage(image: SimulatedMachine, expected: Expectation[], where: string): Promise<void> {
    const process = image.startProcess();
    let stack: StorageStack | undefined;
    try {
      stack = await bootStack(process, clock, SEED, SEGMENT_BYTES);
      for (const e of expected) await servedCount(stack, e);
    } catch (error) {
      failures.push(`${where}: ${stack === undefined ? 'did not start: ' : ''}${(error as Error).stack ?? String(error)}`);
    } finally {
      image.killProcess();
      stack?.abandon();
    }
  }

  while (cuts < CUTS && failures.length === 0) {
    stats.lives++;
    const crashAtOperation = machine.operationCount + 20 + Math.floor(random.next() * 400);
    const crashed = Promise.withResolvers<'crashed'>();
    let dead = false;
    const m = machine;
    const hook = async (operation: string, target: string): Promise<void> => {
      if (dead) return;
      if (m.operationCount >= crashAtOperation || failures.length > 0) {
        dead = true;
        m.killProcess();
        crashed.resolve('crashed');
        return;
      }
      if (cuts >= CUTS) return;
      cuts++;
      const where = `seed ${SEED}, life ${stats.lives}, operation ${m.operationCount} (${operation} ${target}), power loss`;
      const image = m.powerLoss(random, random.next() < 0.5);
      const expected = snapshot(models);
      const run = checking.then(() => checkImage(image, expected, where));
      checking = run;
      await run;
    };
    const process: SimulatedProcess = m.startProcess(hook);
    const until = <T>(work: Promise<T>): Promise<T | 'crashed'> => Promise.race([work, crashed.promise]);

    const booted = await until(bootStack(process, clock, SEED, SEGMENT_BYTES).catch((error: unknown) => error as Error));
    if (booted instanceof Error) {
      failures.push(`seed ${SEED}, life ${stats.lives}: did not start: ${booted.stack}`);
      break;
    }
    if (booted !== 'crashed') {
      const stack = booted;
      await runLife(stack, until).catch((error: unknown) => {
        failures.push(`seed ${SEED}, life ${stats.lives}: ${(error as Error).stack ?? String(error)}`);
      });
      if (!dead) {
        dead = true;
        m.killProcess();
      }
      stack.abandon();
    }
    await checking;
    if (random.next() < 0.3) {
      stats.powerLosses++;
      machine = m.powerLoss(random, random.next() < 0.5);
    } else {
      stats.kills++;
    }
  }

  /** One life after recovery: check what is served, then append until the process is killed. */
  async function runLife(stack: StorageStack, until: <T>(work: Promise<T>) => Promise<T | 'crashed'>): Promise<void> {
    for (const model of models) {
      if (!model.created) continue;
      const e = snapshot([model])[0]!;
      const n = await until(servedCount(stack, e));
      if (n === 'crashed') return;
      stats.servedChecks++;
      // What a reader is served now must survive: it is as good as acknowledged.
      model.submitted.length = n;
      model.mustHave = n;
      if (model.producer && n > 0) {
        const outcome = await until(
          stack.registry.append({ path: model.path, contentType: BINARY, body: model.submitted[n - 1]!, close: false, producer: { producerId: 'p', epoch: 0, seq: n - 1 }, streamSeq: undefined }),
        );
        if (outcome === 'crashed') return;
        if (outcome.kind !== 'duplicate') throw new Error(`${model.path}: resending producer seq ${n - 1} answered ${outcome.kind}, expected duplicate`);
        stats.duplicates++;
      }
    }
    for (const model of models) {
      if (model.created) continue;
      const created = await until(stack.registry.create({ path: model.path, contentType: BINARY, ttlSeconds: undefined, expiresAtMs: undefined, closed: false, body: Buffer.alloc(0) }));
      if (created === 'crashed') return;
      model.created = true;
    }
    const writer = async (model: StreamModel): Promise<void> => {
      for (;;) {
        const seq = model.submitted.length;
        const body = Buffer.alloc(1 + Math.floor(random.next() * 700), `${model.path.at(-1)}${seq}.`);
        model.submitted.push(body);
        clockMs.now++;
        const producer = model.producer ? { producerId: 'p', epoch: 0, seq } : undefined;
        const outcome = await until(stack.registry.append({ path: model.path, contentType: BINARY, body, close: false, producer, streamSeq: undefined }));
        if (outcome === 'crashed') return;
        model.mustHave = Math.max(model.mustHave, seq + 1);
        stats.acked++;
        if (random.next() < 0.05) {
          const done = await until(stack.checkpoint().catch(() => {}));
          if (done === 'crashed') return;
        }
      }
    };
    await Promise.all(models.map(writer));
  }

  await checking;
  console.log(`power-loss: ${cuts} power-loss images checked; ${JSON.stringify(stats)}; ${failures.length} failures`);
  expect(failures.slice(0, 3)).toEqual([]);
});
