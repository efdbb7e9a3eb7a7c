/**
 * A throwaway one-node Ceph cluster with an RGW S3 gateway, for integration tests on machines
 * without a container runtime (facts: shared/notes/s3-test-server.md). One monitor, one OSD,
 * one radosgw, all on 127.0.0.1 with free ports, auth off, pool size 1, everything (config,
 * keyring, data, logs, sockets) in one temporary directory. Processes are stopped by the PIDs
 * started here, never by name.
 *
 * Every wait is bounded; a failure throws an error that carries the tail of the Ceph logs,
 * after stopping whatever had started and removing the directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { accessSync, constants, closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The Debian packages that provide the binaries below. */
export const CEPH_PACKAGES = ['radosgw', 'ceph-mon', 'ceph-osd'] as const;
const CEPH_BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'] as const;
type CephBinary = (typeof CEPH_BINARIES)[number];

export interface CephRgwOptions {
  /**
   * OSD backend. `memstore` (default) keeps objects in RAM: fastest to start, lost on restart.
   * `bluestore` uses a sparse 20 GiB file in the temp dir and survives restarts.
   */
  objectStore?: 'memstore' | 'bluestore';
  /** Bound on the whole start, in ms. Default 90,000 (a cold start takes about 10–20 s). */
  startTimeoutMs?: number;
}

export interface CephRgw {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Wall time from the call to S3 answering with the user created, in ms. */
  startMs: number;
  /** When each start phase ended, in ms since the call (mon, osd, rgw, user). */
  phaseEndMs: Record<string, number>;
  /** Admin commands that failed once and succeeded when tried again, with their errors. */
  retriedCommands: string[];
  dir: string;
  /** The PIDs of the daemons started here (mon, osd, rgw). */
  pids: number[];
  /** Stops the daemons (SIGTERM, then SIGKILL after 10 s) and removes the directory. */
  stop(): Promise<void>;
}

/** Absolute paths of the Ceph binaries, or the names of the missing ones. */
export function findCephBinaries(): { found: Record<CephBinary, string> } | { missing: string[] } {
  const found: Partial<Record<CephBinary, string>> = {};
  const missing: string[] = [];
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin', '/bin', '/sbin']);
  for (const name of CEPH_BINARIES) {
    const hit = dirs.map((d) => path.join(d, name)).find((candidate) => isExecutable(candidate));
    if (hit) found[name] = hit;
    else missing.push(name);
  }
  return missing.length > 0 ? { missing } : { found: found as Record<CephBinary, string> };
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const STOP_GRACE_MS = 10_000;
const COMMAND_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 250;
const LOG_TAIL_LINES = 25;
const CLI_ATTEMPTS_MAX = 3;

export async function startCephRgw(options: CephRgwOptions = {}): Promise<CephRgw> {
  const binaries = findCephBinaries();
  if ('missing' in binaries) {
    throw new Error(`Ceph binaries missing: ${binaries.missing.join(', ')} (apt-get install -y ${CEPH_PACKAGES.join(' ')})`);
  }
  const bin = binaries.found;
  const startedAtMs = Date.now();
  const deadlineMs = startedAtMs + (options.startTimeoutMs ?? 90_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-ceph-'));
  const children: { name: string; child: ChildProcess }[] = [];
  const phaseEndMs: Record<string, number> = {};
  const retriedCommands: string[] = [];
  const phaseDone = (phase: string): void => void (phaseEndMs[phase] = Date.now() - startedAtMs);

  const stop = async (): Promise<void> => {
    // Reverse start order: the gateway, then the OSD, then the monitor.
    for (const { child } of children.reverse()) await stopChild(child);
    children.length = 0;
    process.off('exit', killAllNow);
    await rm(dir, { recursive: true, force: true });
  };
  // If the test process dies without calling stop, do not leave daemons behind.
  const killAllNow = (): void => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killAllNow);

  try {
    const [monPort, rgwPort] = await freePorts(2);
    const conf = path.join(dir, 'ceph.conf');
    const fsid = randomUUID();
    for (const sub of ['run', 'log', 'mon', 'osd', 'rgw']) await mkdir(path.join(dir, sub));
    await writeFile(conf, cephConf(dir, fsid, monPort, rgwPort, options.objectStore ?? 'memstore'));

    const run = (name: CephBinary, args: string[]): Promise<string> => runCommand(bin[name], args, dir, deadlineMs);
    const daemon = (name: CephBinary, args: string[]): void => {
      const out = openSync(path.join(dir, 'log', `${name}.stdout`), 'a');
      const child = spawn(bin[name], ['-c', conf, '-f', ...args], { stdio: ['ignore', out, out] });
      closeSync(out);
      children.push({ name, child });
    };
    const ceph = (...args: string[]): Promise<string> => run('ceph', ['-c', conf, '--connect-timeout', '5', ...args]);
    /** For idempotent admin commands: the CLI now and then fails on a fresh cluster; try again. */
    const cephRetried = async (...args: string[]): Promise<string> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await ceph(...args);
        } catch (error) {
          if (attempt >= CLI_ATTEMPTS_MAX || Date.now() > deadlineMs) throw error;
          retriedCommands.push(`ceph ${args.join(' ')}: ${error instanceof Error ? error.message : String(error)}`);
          await sleep(POLL_INTERVAL_MS);
        }
      }
    };
    const waitFor = async (what: string, probe: () => Promise<boolean>): Promise<void> => {
      for (;;) {
        const exited = children.find(({ child }) => child.exitCode !== null || child.signalCode !== null);
        if (exited) {
          throw new Error(`${exited.name} exited (${exited.child.exitCode ?? exited.child.signalCode}) while waiting for ${what}`);
        }
        if (await probe().catch(() => false)) return;
        if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
        await sleep(POLL_INTERVAL_MS);
      }
    };

    const keyring = path.join(dir, 'keyring');
    await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await run('ceph-authtool', [keyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *']);
    const monmap = path.join(dir, 'monmap');
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, monmap]);
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring]);
    daemon('ceph-mon', ['-i', 'a']);
    await waitFor('the monitor', async () => (await ceph('mon', 'stat')).includes('quorum'));
    phaseDone('mon');

    const osdUuid = randomUUID();
    const osdId = (await cephRetried('osd', 'new', osdUuid)).trim();
    if (osdId !== '0') throw new Error(`expected OSD id 0, got "${osdId}"`);
    await cephRetried('osd', 'crush', 'add', 'osd.0', '1.0', 'root=default');
    await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    daemon('ceph-osd', ['-i', '0']);
    await waitFor('the OSD to be up', async () => {
      const dump = JSON.parse(await ceph('osd', 'dump', '--format', 'json')) as { osds?: { osd: number; up: number }[] };
      return dump.osds?.some((o) => o.osd === 0 && o.up === 1) ?? false;
    });
    phaseDone('osd');

    daemon('radosgw', ['-n', 'client.rgw']);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor('radosgw to answer HTTP', async () => {
      const response = await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return true;
    });
    phaseDone('rgw');

    const accessKeyId = `cairn${randomBytes(6).toString('hex')}`;
    const secretAccessKey = randomBytes(20).toString('hex');
    await run('radosgw-admin', [
      '-c', conf, '-n', 'client.admin', 'user', 'create', '--uid', 'cairn-test', '--display-name', 'cairn test',
      '--access-key', accessKeyId, '--secret-key', secretAccessKey,
    ]);
    phaseDone('user');

    return {
      endpoint,
      region: 'us-east-1',
      accessKeyId,
      secretAccessKey,
      startMs: Date.now() - startedAtMs,
      phaseEndMs,
      retriedCommands,
      dir,
      pids: children.map(({ child }) => child.pid!),
      stop,
    };
  } catch (error) {
    const logs = logTails(dir);
    await stop().catch(() => {});
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Ceph RGW failed to start after ${Date.now() - startedAtMs} ms: ${reason}\n${logs}`, { cause: error });
  }
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number, objectStore: 'memstore' | 'bluestore'): string {
  const store =
    objectStore === 'memstore'
      ? ['osd objectstore = memstore', 'memstore device bytes = 2147483648']
      : [
          'osd objectstore = bluestore',
          'bluestore block create = true',
          'bluestore block size = 21474836480',
          'osd memory target = 1073741824',
        ];
  return [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = [v1:127.0.0.1:${monPort}]`,
    'mon initial members = a',
    'ms bind msgr2 = false',
    'ms bind ipv6 = false',
    'public addr = 127.0.0.1',
    'cluster addr = 127.0.0.1',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'osd pool default pg num = 8',
    'osd pool default pgp num = 8',
    'osd pool default pg autoscale mode = off',
    'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    'osd crush chooseleaf type = 0',
    // The monitor batches map changes for 1 s by default; RGW's start makes about ten in a row.
    'paxos propose interval = 0.01',
    // The test machine's disk may be nearly full by Ceph's standards; do not refuse writes for that.
    'mon data avail warn = 1',
    'mon data avail crit = 0',
    `run dir = ${dir}/run`,
    `admin socket = ${dir}/run/$name.asok`,
    `log file = ${dir}/log/$name.log`,
    `pid file = ${dir}/run/$name.pid`,
    `keyring = ${dir}/keyring`,
    'log to stderr = false',
    // An OSD that updates its own CRUSH entry at start may send that command before it knows the
    // cluster's fsid and exit ("wrong fsid"; about 1 start in 8 here). The harness places it instead.
    'osd crush update on start = false',
    'osd class update on start = false',
    ...store,
    '',
    '[mon.a]',
    `mon data = ${dir}/mon`,
    '',
    '[osd.0]',
    `osd data = ${dir}/osd`,
    '',
    '[client.rgw]',
    `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
    `rgw data = ${dir}/rgw`,
    '',
  ].join('\n');
}

function runCommand(file: string, args: string[], cwd: string, deadlineMs: number): Promise<string> {
  const timeoutMs = Math.max(1_000, Math.min(COMMAND_TIMEOUT_MS, deadlineMs - Date.now()));
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`.trim()));
      } else {
        resolve(stdout);
      }
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS)));
  if ((await Promise.race([exited, graceOver])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

/** `count` distinct ports that were free a moment ago on 127.0.0.1. */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

function logTails(dir: string): string {
  const logDir = path.join(dir, 'log');
  let names: string[];
  try {
    names = readdirSync(logDir).sort();
  } catch {
    return '(no Ceph logs)';
  }
  return names
    .map((name) => {
      const lines = readFileSync(path.join(logDir, name), 'utf8').trimEnd().split('\n');
      return `--- ${name} (last ${Math.min(LOG_TAIL_LINES, lines.length)} lines) ---\n${lines.slice(-LOG_TAIL_LINES).join('\n')}`;
    })
    .join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
