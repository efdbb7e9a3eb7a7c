/**
 * Throwaway etcd clusters for tests (Debian's `etcd-server` package: /usr/bin/etcd, v3.4): 1 or 3
 * members on free loopback ports, each in its own temporary directory, started with static
 * initial-cluster flags and waited for until healthy. Members are stopped by the PIDs started here
 * (SIGTERM, or SIGKILL for fault tests), never by name, and can be started again on their data.
 *
 * Without the binary the tests report the gap loudly: they fail under CI (scripts/install-test-deps.sh
 * --required installs it there) and are skipped locally.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ETCD_CANDIDATES = ['/usr/bin/etcd', '/usr/sbin/etcd', '/usr/local/bin/etcd'];
const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const POLL_INTERVAL_MS = 100;
const LOG_TAIL_LINES = 20;

/** The etcd binary's path, or undefined when it is not installed. */
export function findEtcdBinary(): string | undefined {
  return ETCD_CANDIDATES.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether etcd tests run here; prints why not once (and throws under CI, where they must run). */
export function etcdAvailable(): boolean {
  if (findEtcdBinary() !== undefined) return true;
  const message = 'etcd is not installed (Debian package etcd-server; scripts/install-test-deps.sh installs it)';
  if (process.env.CI) throw new Error(`${message}. CI is set: the etcd tests FAIL.`);
  process.stderr.write(`${message}. Not in CI: the etcd tests are SKIPPED.\n`);
  return false;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logFile: string;
  /** PID of the running process; undefined while stopped. */
  readonly pid: number | undefined;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Client URLs of every member (running or not), for a client's endpoint list. */
  endpoints: string[];
  /** Stops member `index`: SIGKILL when `signal` is 'SIGKILL' (a crash), else SIGTERM then SIGKILL after a grace. */
  stopMember(index: number, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts member `index` again on its data directory and waits until it answers /health (the cluster may still lack quorum). */
  startMember(index: number): Promise<void>;
  /** Sends SIGSTOP (pause) or SIGCONT (resume) to member `index`. */
  signalMember(index: number, signal: 'SIGSTOP' | 'SIGCONT'): void;
  /** Waits until member `index` reports itself healthy (it has a leader and quorum). */
  waitHealthy(index: number, timeoutMs?: number): Promise<void>;
  /** Stops every member and removes the directory. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts an etcd cluster of `size` members (1 or 3) and waits until every member is healthy. */
export async function startEtcd(size: 1 | 3 = 3): Promise<EtcdCluster> {
  const binary = findEtcdBinary();
  if (binary === undefined) throw new Error('etcd binary not found');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-etcd-'));
  const members: Array<EtcdMember & { process: ChildProcess | undefined }> = [];
  for (let i = 0; i < size; i++) {
    const name = `m${i}`;
    members.push({
      name,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: path.join(dir, name),
      logFile: path.join(dir, `${name}.log`),
      process: undefined,
      get pid() {
        return this.process?.pid;
      },
    });
  }
  const initialCluster = members.map((member) => `${member.name}=${member.peerUrl}`).join(',');
  const token = path.basename(dir);

  const launch = (index: number): void => {
    const member = members[index]!;
    const log = createWriteStream(member.logFile, { flags: 'a' });
    const child = spawn(
      binary,
      [
        `--name=${member.name}`,
        `--data-dir=${member.dataDir}`,
        `--listen-client-urls=${member.clientUrl}`,
        `--advertise-client-urls=${member.clientUrl}`,
        `--listen-peer-urls=${member.peerUrl}`,
        `--initial-advertise-peer-urls=${member.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new',
        `--initial-cluster-token=${token}`,
        '--log-outputs=stderr',
        '--logger=zap',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.once('exit', () => {
      if (member.process === child) member.process = undefined;
    });
    member.process = child;
  };

  const waitHealthy = async (index: number, timeoutMs = START_TIMEOUT_MS): Promise<void> => {
    const member = members[index]!;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const response = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        const body = (await response.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not listening yet, or no leader
      }
      if (member.process === undefined) throw new Error(`etcd member ${member.name} exited:\n${logTail(member.logFile)}`);
      if (performance.now() > deadline) throw new Error(`etcd member ${member.name} not healthy after ${timeoutMs} ms:\n${logTail(member.logFile)}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  };

  const waitListening = async (index: number): Promise<void> => {
    const member = members[index]!;
    const deadline = performance.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        await fetch(`${member.clientUrl}/version`, { signal: AbortSignal.timeout(2_000) });
        return;
      } catch {
        if (member.process === undefined) throw new Error(`etcd member ${member.name} exited:\n${logTail(member.logFile)}`);
        if (performance.now() > deadline) throw new Error(`etcd member ${member.name} not listening:\n${logTail(member.logFile)}`);
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      }
    }
  };

  const stopMember = async (index: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const child = members[index]!.process;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(grace);
  };

  const stop = async (): Promise<void> => {
    for (let i = 0; i < members.length; i++) {
      members[i]!.process?.kill('SIGCONT');
    }
    await Promise.all(members.map((_, i) => stopMember(i)));
    process.removeListener('exit', killOnExit);
    await rm(dir, { recursive: true, force: true });
  };

  // A test process that dies without stop() must not leave members running.
  const killOnExit = (): void => {
    for (const member of members) member.process?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  try {
    for (let i = 0; i < size; i++) launch(i);
    for (let i = 0; i < size; i++) await waitHealthy(i);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    members,
    endpoints: members.map((member) => member.clientUrl),
    stopMember,
    startMember: async (index) => {
      if (members[index]!.process !== undefined) return;
      launch(index);
      await waitListening(index);
    },
    signalMember: (index, signal) => {
      members[index]!.process?.kill(signal);
    },
    waitHealthy,
    stop,
  };
}

/** A TCP relay to one etcd member whose traffic a test can cut (one client's partition from etcd). */
export interface TcpRelay {
  /** `http://127.0.0.1:<port>`: give it to the client as its only endpoint. */
  url: string;
  /** Drops every relayed connection and refuses new ones. */
  cut(): void;
  /** Relays again. */
  restore(): void;
  close(): Promise<void>;
}

/** Starts a relay from a free loopback port to `targetUrl` (an etcd member's client URL). */
export async function startTcpRelay(targetUrl: string): Promise<TcpRelay> {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    restore: () => {
      open = true;
    },
    close: async () => {
      open = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Whether member `clientUrl` is the etcd leader now (its `etcd_server_is_leader` metric). */
export async function isEtcdLeader(clientUrl: string): Promise<boolean> {
  const response = await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return /^etcd_server_is_leader 1$/m.test(await response.text());
}
