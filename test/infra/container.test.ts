/**
 * The container files (no Docker engine here, so nothing is built or run): docker-compose.yml's
 * structure, the Dockerfile's essentials, and that both use flags, paths and files that exist.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';
import { COMPOSE_CONFIG_PATH, COMPOSE_OPTIONS, renderLocalCdnConfig } from '../../infra/local-cdn/render.ts';

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(REPOSITORY_ROOT, file), 'utf8');
const DATA_DIR = '/var/lib/cairn';

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerfileInstructions(text: string): Instruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return logical.map((line) => {
    const [keyword, ...rest] = line.split(/\s+/);
    return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
  });
}

const all = (instructions: Instruction[], keyword: string) => instructions.filter((instruction) => instruction.keyword === keyword);
const only = (instructions: Instruction[], keyword: string) => {
  const found = all(instructions, keyword);
  expect(found, keyword).toHaveLength(1);
  return found[0]!;
};

/** Every `--flag` of `cairn serve`, from its real --help. */
async function serveFlags(): Promise<Set<string>> {
  const node = path.join(REPOSITORY_ROOT, 'node_modules/.bin/node');
  const { stdout } = await promisify(execFile)(node, ['src/cli/main.ts', 'serve', '--help'], { cwd: REPOSITORY_ROOT, timeout: 30_000 });
  return new Set(stdout.match(/--[a-z0-9-]+/g) ?? []);
}

describe('Dockerfile', () => {
  const instructions = dockerfileInstructions(read('Dockerfile'));

  test('Node 24 slim base, production dependencies only, sources copied', () => {
    const runtime = all(instructions, 'FROM').at(-1)!;
    expect(runtime.args).toMatch(/^node:24(-[a-z]+)?-slim$/);
    expect(all(instructions, 'RUN').some((run) => run.args.includes('npm ci --omit=dev'))).toBe(true);
    const copied = all(instructions, 'COPY').map((copy) => copy.args);
    expect(copied).toEqual(expect.arrayContaining(['package.json package-lock.json ./', 'src ./src']));
  });

  test('the inspector is built in a build stage and copied into the image where the server serves it from', () => {
    const stages = all(instructions, 'FROM').map((from) => from.args);
    expect(stages[0]).toMatch(/ AS inspector$/);
    expect(all(instructions, 'RUN').some((run) => run.args.includes('scripts/build-inspector.ts'))).toBe(true);
    expect(all(instructions, 'COPY').map((copy) => copy.args)).toContain('--from=inspector /build/build/inspector ./build/inspector');
    expect(existsSync(path.join(REPOSITORY_ROOT, 'scripts/build-inspector.ts'))).toBe(true);
  });

  test('runs as a non-root user, with a healthcheck on /healthz and a volume for the data dir', () => {
    const user = only(instructions, 'USER').args;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const keywords = instructions.map((instruction) => instruction.keyword);
    expect(keywords.indexOf('USER')).toBeLessThan(keywords.indexOf('CMD'));
    const healthcheck = only(instructions, 'HEALTHCHECK').args;
    expect(healthcheck).toMatch(/CMD \[/);
    expect(healthcheck).toContain('/healthz');
    expect(JSON.parse(only(instructions, 'VOLUME').args)).toEqual([DATA_DIR]);
    expect(only(instructions, 'EXPOSE').args).toBe('4437');
    // The data dir belongs to that user before the volume is declared (Docker copies the ownership).
    expect(all(instructions, 'RUN').some((run) => run.args.includes(`chown ${user}:${user} ${DATA_DIR}`))).toBe(true);
  });

  test('CMD serves on all interfaces with the volume as data dir, using only real flags', async () => {
    const command = JSON.parse(only(instructions, 'CMD').args) as string[];
    expect(command.slice(0, 3)).toEqual(['node', 'src/cli/main.ts', 'serve']);
    expect(command[command.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(command[command.indexOf('--data-dir') + 1]).toBe(DATA_DIR);
    expect(existsSync(path.join(REPOSITORY_ROOT, command[1]!))).toBe(true);
    const flags = await serveFlags();
    for (const flag of command.filter((arg) => arg.startsWith('--'))) expect(flags, flag).toContain(flag);
  });

  test('.dockerignore keeps node_modules, .git and local data out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.git', 'data']));
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as { services: Record<string, any>; volumes: Record<string, unknown> };
  const { services } = compose;

  test('services: MinIO, the bucket creation, Cairn and the CDN', () => {
    expect(Object.keys(services).sort()).toEqual(['cairn', 'cdn', 'minio', 'minio-init']);
    for (const name of ['minio', 'cairn', 'cdn']) expect(services[name].healthcheck?.test, `${name} healthcheck`).toBeDefined();
    expect(services['minio-init'].depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    expect(services['cairn'].depends_on).toEqual({ 'minio-init': { condition: 'service_completed_successfully' } });
    expect(services['cdn'].depends_on).toEqual({ cairn: { condition: 'service_healthy' } });
    expect(services['cairn'].healthcheck.test.join(' ')).toContain('/healthz');
  });

  test('Cairn stores segments in MinIO over S3, in the bucket minio-init creates, with MinIO credentials', async () => {
    const cairn = services['cairn'];
    expect(cairn.build).toBe('.');
    const command = cairn.command as string[];
    const flag = (name: string) => command[command.indexOf(name) + 1];
    expect(command.slice(0, 3)).toEqual(['node', 'src/cli/main.ts', 'serve']);
    expect(flag('--object-store')).toBe('s3');
    expect(flag('--s3-endpoint')).toBe('http://minio:9000');
    expect(command).toContain('--s3-force-path-style');
    expect(flag('--host')).toBe('0.0.0.0');
    const bucket = flag('--s3-bucket');
    expect(services['minio-init'].command.join(' ')).toContain(`mc mb --ignore-existing local/${bucket}`);
    expect(cairn.environment.AWS_ACCESS_KEY_ID).toBe(services['minio'].environment.MINIO_ROOT_USER);
    expect(cairn.environment.AWS_SECRET_ACCESS_KEY).toBe(services['minio'].environment.MINIO_ROOT_PASSWORD);
    const flags = await serveFlags();
    for (const name of command.filter((arg) => arg.startsWith('--'))) expect(flags, name).toContain(name);
  });

  test('volumes: the WAL on a named volume at the data dir, MinIO and the CDN cache on their own', () => {
    expect(Object.keys(compose.volumes).sort()).toEqual(['cairn-wal', 'cdn-cache', 'minio-data']);
    expect(services['cairn'].volumes).toEqual([`cairn-wal:${DATA_DIR}`]);
    const command = services['cairn'].command as string[];
    expect(command[command.indexOf('--data-dir') + 1]).toBe(DATA_DIR);
    expect(services['minio'].volumes).toEqual(['minio-data:/data']);
    expect(services['cdn'].volumes).toContain(`cdn-cache:${COMPOSE_OPTIONS.cacheDir}`);
  });

  test('the CDN mounts the rendered local-CDN configuration, which is up to date and points at Cairn', () => {
    const mounts = (services['cdn'].volumes as string[]).filter((volume) => volume.startsWith('./'));
    expect(mounts).toHaveLength(1);
    const [source, target, mode] = mounts[0]!.split(':');
    expect(mode).toBe('ro');
    expect(path.join(REPOSITORY_ROOT, source!)).toBe(COMPOSE_CONFIG_PATH);
    expect(existsSync(COMPOSE_CONFIG_PATH)).toBe(true);
    expect(readFileSync(COMPOSE_CONFIG_PATH, 'utf8'), 'run: node infra/local-cdn/render.ts --compose > infra/local-cdn/compose.nginx.conf').toBe(
      renderLocalCdnConfig(COMPOSE_OPTIONS),
    );
    // nginx in the CDN image reads exactly the mounted file, and reaches Cairn by its service name and port.
    const cdnImage = dockerfileInstructions(read(path.join(services['cdn'].build, 'Dockerfile')));
    expect(only(cdnImage, 'FROM').args).toMatch(/^debian:[a-z]+-slim$/);
    expect(all(cdnImage, 'RUN').some((run) => run.args.includes('nginx-light'))).toBe(true);
    expect(JSON.parse(only(cdnImage, 'CMD').args)).toEqual(['nginx', '-c', target, '-g', 'daemon off;']);
    const cairnPort = (services['cairn'].command as string[])[(services['cairn'].command as string[]).indexOf('--port') + 1];
    expect(COMPOSE_OPTIONS.upstream).toBe(`cairn:${cairnPort}`);
    expect(services['cdn'].ports).toEqual([`127.0.0.1:${COMPOSE_OPTIONS.listen}:${COMPOSE_OPTIONS.listen}`]);
  });
});
