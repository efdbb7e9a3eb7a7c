/**
 * The listing's page selection (src/stream/stream-listing.ts) against the obvious definition —
 * filter, sort, slice — for random path sets, prefixes, cursors, page sizes and visibility; and a
 * walk by cursor visits every visible path once.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { selectStreamPage } from '../../src/stream/stream-listing.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';

const streamsOf = (paths: string[]) => paths.map((path) => ({ path }) as StreamState);
const pathArb = fc.stringMatching(/^[ab\/é]{1,5}$/);

describe('selectStreamPage', () => {
  test('is filter, sort, slice', () => {
    fc.assert(
      fc.property(fc.uniqueArray(pathArb, { maxLength: 40 }), fc.stringMatching(/^[ab\/]{0,2}$/), fc.option(pathArb, { nil: undefined }), fc.integer({ min: 1, max: 8 }), fc.boolean(), (paths, prefix, afterPath, limit, hideB) => {
        const visible = (path: string) => !(hideB && path.endsWith('b'));
        const expected = paths.filter((p) => p.startsWith(prefix) && (afterPath === undefined || p > afterPath) && visible(p)).sort();
        const page = selectStreamPage(streamsOf(paths), { prefix, afterPath, limit, visible });
        expect(page.streams.map((s) => s.path)).toEqual(expected.slice(0, limit));
        expect(page.more).toBe(expected.length > limit);
      }),
    );
  });

  test('a walk by cursor visits every path once, in order', () => {
    const paths = Array.from({ length: 57 }, (_, i) => `s/${(i * 37) % 57}`);
    const seen: string[] = [];
    let afterPath: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = selectStreamPage(streamsOf(paths), { prefix: 's/', afterPath, limit: 5, visible: () => true });
      seen.push(...page.streams.map((s) => s.path));
      if (!page.more) break;
      afterPath = page.streams.at(-1)!.path;
    }
    expect(seen).toEqual([...paths].sort());
  });
});
