/**
 * Manifest pages: how a manifest stays small however long a stream's history grows
 * (docs/storage-layout.md "Manifest pages"). A manifest version (the head) lists at most
 * `MANIFEST_PAGE_ENTRIES - 1` recent segments and, per level, at most `MANIFEST_PAGE_ENTRIES - 1`
 * references to immutable pages. A level-1 page lists `MANIFEST_PAGE_ENTRIES` segments; a level
 * L+1 page lists `MANIFEST_PAGE_ENTRIES` level-L references. Pages are written once,
 * create-if-absent, under keys named by level and byte range (object-keys.ts), before the head that
 * first references them; a seal writes its head and, once every `MANIFEST_PAGE_ENTRIES` seals, a
 * page per completed level, so the bytes written per seal are bounded, and finding the segment
 * of an offset reads the head and one page per level. Retention drops whole pages from the head.
 * A head without pages is a format-1 manifest, as every manifest was before pages.
 */
import { MANIFEST_PAGE_ENTRIES } from '../config/limits.ts';
import type { ObjectStore } from '../object-store/index.ts';
import { ManifestCorruptError, type Manifest, type PageRef, type SegmentRef } from './manifest.ts';
import { pageKey } from './object-keys.ts';

/** A stored page: `segments` (level 1) or `pages` (level ≥ 2), contiguous, covering `[start, end)`. */
export interface ManifestPage {
  format: 2;
  level: number;
  start: number;
  end: number;
  segments?: SegmentRef[];
  pages?: PageRef[];
}

/** What a head lists besides its metadata: page references (oldest first), then recent segments. */
export interface HeadLayout {
  pages: PageRef[];
  segments: SegmentRef[];
}

/**
 * The head after `added` segments are sealed and everything ending at or below `retainedStart`
 * is dropped, and the pages to store first (lowest level first: a page's children before it).
 * Pure; `entriesPerPage` is `MANIFEST_PAGE_ENTRIES` outside tests.
 */
export function nextLayout(
  previous: HeadLayout,
  added: readonly SegmentRef[],
  retainedStart: number,
  entriesPerPage = MANIFEST_PAGE_ENTRIES,
): { layout: HeadLayout; newPages: ManifestPage[] } {
  const pages = previous.pages.filter((page) => page.end > retainedStart);
  const segments = [...previous.segments, ...added].filter((segment) => segment.end > retainedStart);
  const newPages: ManifestPage[] = [];
  while (segments.length >= entriesPerPage) {
    const chunk = segments.splice(0, entriesPerPage);
    const page: ManifestPage = { format: 2, level: 1, start: chunk[0].start, end: chunk[chunk.length - 1].end, segments: chunk };
    newPages.push(page);
    pages.push(refOf(page, chunk.length));
    // Carry: a level holding a whole page's worth of references becomes one reference a level up.
    for (let level = 1; ; level++) {
      const first = pages.findIndex((ref) => ref.level === level);
      if (first === -1 || pages.length - first < entriesPerPage || pages[first + entriesPerPage - 1].level !== level) break;
      const children = pages.splice(first, entriesPerPage);
      const parent: ManifestPage = { format: 2, level: level + 1, start: children[0].start, end: children[children.length - 1].end, pages: children };
      newPages.push(parent);
      pages.splice(first, 0, refOf(parent, children.reduce((sum, child) => sum + child.segmentCount, 0)));
    }
  }
  return { layout: { pages, segments }, newPages };
}

function refOf(page: ManifestPage, segmentCount: number): PageRef {
  return { level: page.level, start: page.start, end: page.end, segmentCount };
}

export function encodePage(page: ManifestPage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(page));
}

/** @throws ManifestCorruptError when `bytes` is not the page `ref` names. */
export function decodePage(key: string, bytes: Uint8Array, ref: PageRef): ManifestPage {
  let page: ManifestPage;
  try {
    page = JSON.parse(new TextDecoder().decode(bytes)) as ManifestPage;
  } catch (error) {
    throw new ManifestCorruptError(key, (error as Error).message);
  }
  if (page === null || typeof page !== 'object' || page.format !== 2 || page.level !== ref.level || page.start !== ref.start || page.end !== ref.end) {
    throw new ManifestCorruptError(key, 'not the manifest page its reference names');
  }
  const entries: { start: number; end: number }[] | undefined = ref.level === 1 ? page.segments : page.pages;
  if (!Array.isArray(entries) || entries.length === 0 || entries[0].start !== page.start || entries[entries.length - 1].end !== page.end) {
    throw new ManifestCorruptError(key, 'entries do not cover the page range');
  }
  for (let i = 1; i < entries.length; i++) if (entries[i].start !== entries[i - 1].end) throw new ManifestCorruptError(key, 'entries are not contiguous');
  return page;
}

/**
 * Every segment of `manifest` (stored under `prefix`) that ends above `from`, in order: the head's
 * own segments, and those of the pages it references (only pages ending above `from` are read).
 * @throws ManifestCorruptError; ObjectNotFoundError (a referenced page is missing); store errors.
 */
export async function segmentsFrom(store: ObjectStore, prefix: string, manifest: Manifest, from = 0): Promise<SegmentRef[]> {
  const out: SegmentRef[] = [];
  const walk = async (refs: readonly PageRef[]): Promise<void> => {
    for (const ref of refs) {
      if (ref.end <= from) continue;
      const page = await readPage(store, prefix, ref);
      if (page.segments !== undefined) out.push(...page.segments.filter((segment) => segment.end > from));
      else await walk(page.pages ?? []);
    }
  };
  await walk(manifest.pages ?? []);
  out.push(...manifest.segments.filter((segment) => segment.end > from));
  return out;
}

/**
 * The segment of `manifest` holding `position`, reading one page per level at most; undefined when
 * no listed segment holds it. @throws as `segmentsFrom`.
 */
export async function locateSegment(store: ObjectStore, prefix: string, manifest: Manifest, position: number): Promise<SegmentRef | undefined> {
  const inSegments = (segments: readonly SegmentRef[]) => segments.find((segment) => segment.start <= position && position < segment.end);
  let refs: readonly PageRef[] = manifest.pages ?? [];
  for (;;) {
    const ref = refs.find((page) => page.start <= position && position < page.end);
    if (ref === undefined) return inSegments(manifest.segments);
    const page = await readPage(store, prefix, ref);
    if (page.segments !== undefined) return inSegments(page.segments);
    refs = page.pages ?? [];
  }
}

/**
 * Keys of the pages `refs` and of every page under them (a level-L page is read to find its
 * children): what retention lets go of when it drops `refs` from a head. @throws as `segmentsFrom`.
 */
export async function pageKeysUnder(store: ObjectStore, prefix: string, refs: readonly PageRef[]): Promise<string[]> {
  const keys: string[] = [];
  for (const ref of refs) {
    keys.push(pageKey(prefix, ref.level, ref.start, ref.end));
    if (ref.level > 1) keys.push(...(await pageKeysUnder(store, prefix, (await readPage(store, prefix, ref)).pages ?? [])));
  }
  return keys;
}

async function readPage(store: ObjectStore, prefix: string, ref: PageRef): Promise<ManifestPage> {
  const key = pageKey(prefix, ref.level, ref.start, ref.end);
  return decodePage(key, (await store.get(key)).body, ref);
}
