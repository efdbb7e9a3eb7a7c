/**
 * Tiering end to end over HTTP, on the memory object store behind the server's metrics decorator:
 * collapsing (GET counts), deterministic boundaries and immutable caching, byte-exactness across
 * the hot/cold boundary (fast-check, both content modes), object lifecycle (delete, forks,
 * cascade) and retention (410 below the retained start).
 */
import { systemClock } from '../../src/clock.ts';
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { MemoryObjectStore } from '../../src/object-store/index.ts';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import type { StartOptions } from '../../src/server.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function start(overrides: Partial<ServeConfig>, options: StartOptions = {}): Promise<{ server: TestServer; store: MemoryObjectStore }> {
  const store = new MemoryObjectStore();
  const server = await startTestServer({ durability: 'memory', ...overrides }, { objectStore: store, ...options });
  servers.push(server);
  return { server, store };
}

async function create(server: TestServer, path: string, contentType: string, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(`${server.url}/v1/stream/${path}`, { method: 'PUT', headers: { 'content-type': contentType, ...headers } });
  expect(response.status).toBe(201);
  return response;
}

async function append(server: TestServer, path: string, contentType: string, body: string | Uint8Array): Promise<string> {
  const response = await fetch(`${server.url}/v1/stream/${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  expect(response.status).toBe(204);
  return response.headers.get('stream-next-offset') ?? '';
}

/**
 * Waits until at most `hotBytesMax` durable bytes of the stream are unsealed: up to 20 s (a busy
 * machine seals slowly; below the 30 s test timeout, so a failure names the stream).
 */
async function waitSealed(server: TestServer, path: string, hotBytesMax = 0): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const stream = server.registry.get(path, { touch: false });
    if (stream.durableOffset - stream.sealedOffset <= hotBytesMax) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`stream ${path} was not sealed in time`);
}

interface Page {
  status: number;
  body: Buffer;
  next: string;
  upToDate: boolean;
  cacheControl: string;
  etag: string;
}

async function get(server: TestServer, path: string, offset: string): Promise<Page> {
  const response = await fetch(`${server.url}/v1/stream/${path}?offset=${offset}`);
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    next: response.headers.get('stream-next-offset') ?? '',
    upToDate: response.headers.get('stream-up-to-date') === 'true',
    cacheControl: response.headers.get('cache-control') ?? '',
    etag: response.headers.get('etag') ?? '',
  };
}

/** Follows Stream-Next-Offset from `offset` to the tail; returns every page. */
async function walk(server: TestServer, path: string, offset = '-1'): Promise<Page[]> {
  const pages: Page[] = [];
  for (let at = offset; pages.length < 10_000; ) {
    const page = await get(server, path, at);
    expect(page.status).toBe(200);
    pages.push(page);
    if (page.upToDate) return pages;
    at = page.next;
  }
  throw new Error('walk did not reach the tail');
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
const SHARED = 'public, max-age=60, stale-while-revalidate=300';
const bytes = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed * 7) % 251));

describe('collapsing', () => {
  test('100 concurrent cold reads of one offset cost exactly one object-store GET', async () => {
    const { server } = await start({ sealIdleMs: 0, segmentSizeBytes: 1 << 20 });
    await create(server, 'one', 'application/octet-stream');
    const data = bytes(5000, 1);
    await append(server, 'one', 'application/octet-stream', data);
    await waitSealed(server, 'one');
    const before = server.tiering.stats().objectStore.get.requestCount;
    const pages = await Promise.all(Array.from({ length: 100 }, () => get(server, 'one', '-1')));
    for (const page of pages) expect(page.body.equals(data)).toBe(true);
    expect(server.tiering.stats().objectStore.get.requestCount - before).toBe(1);
  });

  test('concurrent cold reads of different offsets within one segment cost one GET', async () => {
    const { server } = await start({ sealIdleMs: 0, segmentSizeBytes: 1 << 20 });
    await create(server, 'many', 'application/octet-stream');
    const data = bytes(5000, 2);
    await append(server, 'many', 'application/octet-stream', data);
    await waitSealed(server, 'many');
    const inc = (await get(server, 'many', 'now')).next.split('_')[0];
    const before = server.tiering.stats().objectStore.get.requestCount;
    const offsets = Array.from({ length: 100 }, (_, i) => i * 50);
    const pages = await Promise.all(offsets.map((position) => get(server, 'many', `${inc}_${position.toString().padStart(16, '0')}`)));
    pages.forEach((page, i) => expect(page.body.equals(data.subarray(offsets[i]))).toBe(true));
    expect(server.tiering.stats().objectStore.get.requestCount - before).toBe(1);
  });
});

describe('deterministic boundaries and caching', () => {
  test('sealed responses end on unit boundaries, are immutable, and every reader walks the same URLs', async () => {
    // 3000-byte segments, 1024-byte read units: units of 1024, 1024, 952 per segment.
    const { server } = await start({ sealIdleMs: 3_600_000, segmentSizeBytes: 3000, chunkBytesMax: 1024 });
    await create(server, 'walk', 'application/octet-stream');
    const data = bytes(10_000, 3);
    for (let i = 0; i < data.length; i += 700) await append(server, 'walk', 'application/octet-stream', data.subarray(i, i + 700));
    await waitSealed(server, 'walk', 2999);

    const first = await walk(server, 'walk');
    expect(Buffer.concat(first.map((page) => page.body)).equals(data)).toBe(true);
    const sealedEnd = server.registry.get('walk', { touch: false }).sealedOffset;
    expect(sealedEnd).toBe(9000);
    let position = 0;
    for (const [index, page] of first.entries()) {
      position += page.body.length;
      if (index === 0) {
        // `-1` names "the start", not a position: after a delete and re-create or a retention trim
        // the same URL means other bytes, so it is cacheable only briefly.
        expect(page.cacheControl).toBe(SHARED);
      } else if (position <= sealedEnd && !page.upToDate) {
        expect(page.cacheControl).toBe(IMMUTABLE);
        expect(position % 3000 === 0 || position % 3000 === 1024 || position % 3000 === 2048).toBe(true);
      } else {
        expect(page.cacheControl).not.toContain('immutable');
      }
    }

    // More data and more seals later: the sealed prefix of the walk is the same URLs with the same ETags.
    for (let i = 0; i < 4000; i += 500) await append(server, 'walk', 'application/octet-stream', bytes(500, i));
    await waitSealed(server, 'walk', 2999);
    const second = await walk(server, 'walk');
    const immutableCount = first.filter((page) => page.cacheControl === IMMUTABLE).length;
    expect(immutableCount).toBeGreaterThan(3);
    expect(second.slice(0, immutableCount + 1).map((page) => [page.next, page.etag])).toEqual(
      first.slice(0, immutableCount + 1).map((page) => [page.next, page.etag]),
    );
  });

  test('a response that stops in sealed data fetches the next unit ahead; a whole walk still costs one GET per unit', async () => {
    // 3000-byte segments, 1024-byte read units: 9 sealed units in 9000 bytes, then the hot tail.
    const { server } = await start({ sealIdleMs: 3_600_000, segmentSizeBytes: 3000, chunkBytesMax: 1024 });
    await create(server, 'ahead', 'application/octet-stream');
    const data = bytes(10_000, 5);
    for (let i = 0; i < data.length; i += 700) await append(server, 'ahead', 'application/octet-stream', data.subarray(i, i + 700));
    await waitSealed(server, 'ahead', 2999);
    const gets = () => server.tiering.stats().objectStore.get.requestCount;
    const before = gets();
    const first = await get(server, 'ahead', '-1');
    expect(first.body.length).toBe(1024);
    // The second unit is fetched before the reader asks for it.
    await waitFor(() => gets() - before === 2);
    const rest = await walk(server, 'ahead', first.next);
    expect(Buffer.concat([first.body, ...rest.map((page) => page.body)]).equals(data)).toBe(true);
    expect(gets() - before).toBe(9);
  });

  test('a small stream comes back whole in one response across many tiny segments and the hot tail', async () => {
    const { server } = await start({ sealIdleMs: 0, segmentSizeBytes: 16 });
    await create(server, 'small', 'text/plain');
    let text = '';
    for (let i = 0; i < 20; i++) {
      const chunk = `line ${i} of the small stream\n`;
      text += chunk;
      await append(server, 'small', 'text/plain', chunk);
    }
    await waitSealed(server, 'small', 40);
    const page = await get(server, 'small', '-1');
    expect(page.upToDate).toBe(true);
    expect(page.body.toString()).toBe(text);
  });
});

describe('live readers starting in sealed history', () => {
  test('SSE from -1 streams through segments and continues live without gap or duplicate', async () => {
    const { server } = await start({ sealIdleMs: 0, segmentSizeBytes: 300, chunkBytesMax: 1024 });
    await create(server, 'sse', 'text/plain');
    let expected = '';
    for (let i = 0; i < 30; i++) {
      const line = `history line ${i}\n`;
      expected += line;
      await append(server, 'sse', 'text/plain', line);
    }
    await waitSealed(server, 'sse');
    const abort = new AbortController();
    const response = await fetch(`${server.url}/v1/stream/sse?offset=-1&live=sse`, { signal: abort.signal });
    const reader = response.body!.getReader();
    let received = '';
    let buffer = '';
    const decoder = new TextDecoder();
    const readUntil = async (length: number) => {
      while (received.replaceAll('\n', '').length < length) {
        const { value, done } = await reader.read();
        if (done) throw new Error('SSE ended early');
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          if (event[0] !== 'event: data') continue;
          received += event.slice(1).map((line) => line.replace(/^data: ?/, '')).join('\n');
        }
      }
    };
    // History arrives as several events (chunks of at most 1024 bytes across segments); lines
    // end in '\n', which SSE splits into data lines, so compare without the newlines.
    await readUntil(expected.replaceAll('\n', '').length);
    for (let i = 0; i < 5; i++) {
      const line = `live line ${i}\n`;
      expected += line;
      await append(server, 'sse', 'text/plain', line);
    }
    await readUntil(expected.replaceAll('\n', '').length);
    abort.abort();
    expect(received.replaceAll('\n', '')).toBe(expected.replaceAll('\n', ''));
    expect(server.tiering.stats().cache.misses).toBeGreaterThan(0);
  });

  test('long-poll from a sealed offset returns history at once, then waits for live data', async () => {
    // A long-poll timeout far beyond the append below, however slow the machine (500 ms gave 204s).
    const { server } = await start({ sealIdleMs: 0, segmentSizeBytes: 100, longPollTimeoutMs: 20_000 });
    await create(server, 'lp', 'application/octet-stream');
    const data = bytes(500, 8);
    await append(server, 'lp', 'application/octet-stream', data);
    await waitSealed(server, 'lp');
    const history = await fetch(`${server.url}/v1/stream/lp?offset=-1&live=long-poll`);
    expect(Buffer.from(await history.arrayBuffer()).equals(data)).toBe(true);
    const next = history.headers.get('stream-next-offset') ?? '';
    const waiting = fetch(`${server.url}/v1/stream/lp?offset=${next}&live=long-poll`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await append(server, 'lp', 'application/octet-stream', 'live');
    const live = await waiting;
    expect(live.status).toBe(200);
    expect(await live.text()).toBe('live');
  });
});

describe('byte-exactness across the hot/cold boundary', () => {
  test('byte streams: random append sizes read back from random offsets', async () => {
    const { server } = await start({ sealIdleMs: 3_600_000, segmentSizeBytes: 2048, chunkBytesMax: 1024 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 25 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 5 }),
        async (sizes, starts) => {
          const path = `bytes-${n++}`;
          await create(server, path, 'application/octet-stream');
          const chunks = sizes.map((size, i) => bytes(size, i + n));
          let next = '';
          for (const chunk of chunks) next = await append(server, path, 'application/octet-stream', chunk);
          const all = Buffer.concat(chunks);
          await waitSealed(server, path, 2047);
          const inc = next.split('_')[0];
          for (const fraction of [0, ...starts]) {
            const from = Math.floor(fraction * all.length);
            const pages = await walk(server, path, `${inc}_${from.toString().padStart(16, '0')}`);
            expect(Buffer.concat(pages.map((page) => page.body)).equals(all.subarray(from))).toBe(true);
          }
        },
      ),
      { numRuns: 15, seed: 3 },
    );
    expect(server.tiering.stats().segmentsWritten).toBeGreaterThan(10);
  }, 60_000);

  test('large appends: responses made of several unjoined views (and joined small ones) are byte-exact', async () => {
    // Appends of 64 KiB and more are sent as separate views, smaller neighbours joined: mix both.
    const { server } = await start({ sealIdleMs: 3_600_000, segmentSizeBytes: 1024 * 1024, chunkBytesMax: 768 * 1024 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(1, 900, 65_535, 65_536, 200_000, 500_000), { minLength: 2, maxLength: 12 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (sizes, fraction) => {
          const path = `large-${n++}`;
          await create(server, path, 'application/octet-stream');
          const chunks = sizes.map((size, i) => bytes(size, i + n));
          let next = '';
          for (const chunk of chunks) next = await append(server, path, 'application/octet-stream', chunk);
          const all = Buffer.concat(chunks);
          const inc = next.split('_')[0];
          for (const from of [0, Math.floor(fraction * all.length)]) {
            const pages = await walk(server, path, `${inc}_${from.toString().padStart(16, '0')}`);
            for (const page of pages) expect(page.body.length).toBeLessThanOrEqual(768 * 1024);
            expect(Buffer.concat(pages.map((page) => page.body)).equals(all.subarray(from))).toBe(true);
          }
        },
      ),
      { numRuns: 12, seed: 5 },
    );
  }, 60_000);

  test('JSON streams: random messages read back from every append boundary', async () => {
    const { server } = await start({ sealIdleMs: 3_600_000, segmentSizeBytes: 1500, chunkBytesMax: 1024, logLevel: 'warn' });
    let n = 0;
    const message = fc.record({ id: fc.integer(), text: fc.string({ maxLength: 300 }), tags: fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(message, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 20 }), async (batches) => {
        const path = `json-${n++}`;
        await create(server, path, 'application/json');
        const boundaries = ['-1'];
        for (const batch of batches) boundaries.push(await append(server, path, 'application/json', JSON.stringify(batch)));
        await waitSealed(server, path, 1499);
        const all = batches.flat();
        let index = 0;
        for (let b = 0; b < batches.length; b++) {
          const pages = await walk(server, path, boundaries[b]);
          const got = pages.flatMap((page) => JSON.parse(page.body.toString()) as unknown[]);
          expect(got).toEqual(all.slice(index));
          index += batches[b].length;
        }
      }),
      { numRuns: 12, seed: 4 },
    );
    expect(server.tiering.stats().segmentsWritten).toBeGreaterThan(5);
  }, 60_000);
});

describe('object lifecycle', () => {
  const countObjects = async (store: MemoryObjectStore) =>
    (await store.list({ prefix: '' })).objects.filter((object) => !object.key.startsWith('_cairn/')).length;

  test('deleting a stream removes its objects in the background', async () => {
    const { server, store } = await start({ sealIdleMs: 0, segmentSizeBytes: 100 });
    await create(server, 'doomed', 'application/octet-stream');
    for (let i = 0; i < 5; i++) await append(server, 'doomed', 'application/octet-stream', bytes(300, i));
    await waitSealed(server, 'doomed');
    expect(await countObjects(store)).toBeGreaterThan(5);
    expect((await fetch(`${server.url}/v1/stream/doomed`, { method: 'DELETE' })).status).toBe(204);
    await server.tiering.deletesDrained();
    expect(await countObjects(store)).toBe(0);
  });

  test('an expired stream loses its objects too', async () => {
    const { server, store } = await start({ sealIdleMs: 0, segmentSizeBytes: 100 });
    await create(server, 'brief-life', 'application/octet-stream', { 'stream-ttl': '1' });
    await append(server, 'brief-life', 'application/octet-stream', bytes(500, 3));
    await waitSealed(server, 'brief-life');
    expect(await countObjects(store)).toBeGreaterThan(1);
    await waitFor(async () => (await countObjects(store)) === 0, 15_000);
    expect((await get(server, 'brief-life', '-1')).status).toBe(404);
  });

  test('a fork reads its source segments; a soft-deleted source keeps them; the last fork cascades', async () => {
    const { server, store } = await start({ sealIdleMs: 0, segmentSizeBytes: 100 });
    await create(server, 'source', 'application/octet-stream');
    const data = bytes(1000, 9);
    let middle = '';
    for (let i = 0; i < 10; i++) {
      const next = await append(server, 'source', 'application/octet-stream', data.subarray(i * 100, i * 100 + 100));
      if (i === 5) middle = next;
    }
    await waitSealed(server, 'source');
    await create(server, 'fork', 'application/octet-stream', { 'stream-forked-from': '/v1/stream/source', 'stream-fork-offset': middle });
    await append(server, 'fork', 'application/octet-stream', 'own bytes');
    const objectsBefore = await countObjects(store);

    expect((await fetch(`${server.url}/v1/stream/source`, { method: 'DELETE' })).status).toBe(204);
    expect((await get(server, 'source', '-1')).status).toBe(410);
    await server.tiering.deletesDrained();
    expect(await countObjects(store)).toBeGreaterThanOrEqual(objectsBefore);
    const pages = await walk(server, 'fork');
    expect(Buffer.concat(pages.map((page) => page.body)).equals(Buffer.concat([data.subarray(0, 600), Buffer.from('own bytes')]))).toBe(true);

    expect((await fetch(`${server.url}/v1/stream/fork`, { method: 'DELETE' })).status).toBe(204);
    await waitFor(async () => (await countObjects(store)) === 0);
  });
});

describe('retention', () => {
  test('retention by bytes drops head segments; reads below answer 410, -1 starts at the retained start', async () => {
    const { server, store } = await start({ sealIdleMs: 0, segmentSizeBytes: 1000, retentionBytes: 2500 });
    await create(server, 'kept', 'application/octet-stream');
    const data = bytes(6000, 5);
    let first = '';
    for (let i = 0; i < 6; i++) {
      const next = await append(server, 'kept', 'application/octet-stream', data.subarray(i * 1000, i * 1000 + 1000));
      if (i === 0) first = next;
    }
    await waitSealed(server, 'kept');
    await waitFor(() => server.registry.get('kept', { touch: false }).retainedStart === 3000);
    const head = await fetch(`${server.url}/v1/stream/kept`, { method: 'HEAD' });
    expect(head.headers.get('cairn-earliest-offset')).toMatch(/_00000000000030000$/);
    expect((await get(server, 'kept', first)).status).toBe(410);
    const pages = await walk(server, 'kept');
    expect(Buffer.concat(pages.map((page) => page.body)).equals(data.subarray(3000))).toBe(true);
    await server.tiering.deletesDrained();
    const segmentKeys = (await store.list({ prefix: '' })).objects.filter((object) => object.key.endsWith('.seg'));
    expect(segmentKeys.length).toBe(3);
  });

  test('the Cairn-Retention-Ms create header keeps a stream only as long as asked', async () => {
    let skewMs = 0;
    const clock = { ...systemClock, nowMs: () => Date.now() + skewMs };
    const { server } = await start({ sealIdleMs: 0, segmentSizeBytes: 500 }, { clock });
    const created = await create(server, 'brief', 'application/octet-stream', { 'cairn-retention-ms': '60000' });
    expect(created.headers.get('cairn-retention-ms')).toBe('60000');
    await create(server, 'forever', 'application/octet-stream');
    for (const path of ['brief', 'forever']) {
      await append(server, path, 'application/octet-stream', bytes(1000, 1));
      await waitSealed(server, path);
    }
    skewMs = 61_000;
    await waitFor(() => server.registry.get('brief', { touch: false }).retainedStart === 1000);
    expect(server.registry.get('forever', { touch: false }).retainedStart).toBe(0);
    const page = await get(server, 'brief', '-1');
    expect(page.body.length).toBe(0);
    expect(page.upToDate).toBe(true);
  });

  test('a malformed retention header is refused with 400', async () => {
    const { server } = await start({});
    const response = await fetch(`${server.url}/v1/stream/bad`, { method: 'PUT', headers: { 'cairn-retention-bytes': '-5' } });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('Cairn-Retention-Bytes');
  });
});


describe('startup overwrite check', () => {
  test('a store that accepts overwrites stops the start with the store and the remedy named, unless overridden', async () => {
    const unsafe = () => new MemoryObjectStore({ enforceCreateIfAbsent: false });
    await expect(startTestServer({}, { objectStore: unsafe() })).rejects.toThrow(/memory.*--unsafe-allow-overwrites|--unsafe-allow-overwrites/s);
    const server = await startTestServer({ unsafeAllowOverwrites: true, logLevel: 'error' }, { objectStore: unsafe() });
    servers.push(server);
    expect((await fetch(`${server.url}/v1/stream/ok`, { method: 'PUT' })).status).toBe(201);
  });
});
