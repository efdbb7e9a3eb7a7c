/**
 * Issue 20, finding 1, at the process level: a record written to a WAL file but not yet
 * fdatasynced when the process was killed is still in the page cache after a restart. Recovery
 * must fdatasync every WAL file it replays (and fsync wal/) before it serves or acknowledges
 * anything from them; otherwise a power loss after the restart loses bytes that were served.
 * The child stalls inside fdatasync (so the record is written and unacknowledged), is killed with
 * SIGKILL, and the restarted child reports every WAL fsync it makes before it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';

const CHILD = path.join(import.meta.dirname, 'support', 'wal-hooked-server.ts');
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Starts the child; `lines` collects its stdout lines; resolves with its URL once it listens. */
function startChild(args: string[], lines: string[]): { child: ChildProcess; url: Promise<string>; line: (prefix: string) => Promise<string> } {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) {
      lines.push(text);
      for (const waiter of waiters.filter((w) => text.startsWith(w.prefix))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(text);
      }
    }
  });
  const line = (prefix: string) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((text) => text.startsWith(prefix));
      if (seen !== undefined) return resolve(seen);
      waiters.push({ prefix, resolve });
      child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before printing ${prefix}`)));
    });
  return { child, line, url: line('LISTENING ').then((text) => text.slice('LISTENING '.length)) };
}

test('records written before a kill inside fdatasync are fdatasynced by recovery before they are served', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-recovery-fsync-'));
  dirs.push(dataDir);
  const marker = path.join(dataDir, 'stall-now');

  const first = startChild([dataDir, 'stall', marker], []);
  const url = `${await first.url}/v1/stream/a`;
  expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
  expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'acked;' })).status).toBe(204);
  await writeFile(marker, '');
  const unacknowledged = fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'written-not-synced;' }).then(
    (response) => response.status,
    () => 'no answer',
  );
  await first.line('STALLED ');
  first.child.kill('SIGKILL');
  expect(await unacknowledged).toBe('no answer');

  const walDir = path.join(dataDir, 'wal');
  const walFiles = (await readdir(walDir)).filter((name) => name.endsWith('.log')).map((name) => path.join(walDir, name));
  expect(walFiles.length).toBeGreaterThan(0);

  const lines: string[] = [];
  const second = startChild([dataDir, 'record'], lines);
  const url2 = `${await second.url}/v1/stream/a`;
  const syncedBeforeListening = new Set(lines.filter((text) => text.startsWith('SYNC ')).map((text) => text.slice('SYNC '.length)));
  const body = await (await fetch(`${url2}?offset=-1`)).text();

  // The page cache still holds the unacknowledged record, so recovery replays it; it may serve it
  // only because every replayed WAL file (and wal/ itself) was made durable first.
  expect(body.startsWith('acked;')).toBe(true);
  for (const file of walFiles) expect(syncedBeforeListening, `fdatasync of ${file} before serving`).toContain(file);
  expect(syncedBeforeListening).toContain(walDir);
});
