/**
 * The merge of nodes' listing pages (src/http/cluster-listing.ts `mergeStreamListPages`): by path,
 * duplicates once, the first `limit`, `more` from any node or from the union; and, against the
 * obvious definition, a merged page of every node's own page is the page of the union, so a walk
 * by cursor over random node contents (overlapping ones included) visits every path once, in order.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { mergeStreamListPages, type StreamListEntriesPage } from '../../src/http/cluster-listing.ts';
import type { StreamListEntry } from '../../src/http/routes/list.ts';

const entry = (path: string, nextOffset = '0'): StreamListEntry => ({ path, contentType: 'text/plain', nextOffset, closed: false });
const pageOf = (paths: string[], more = false): StreamListEntriesPage => ({ streams: paths.map((path) => entry(path)), more });
const paths = (page: StreamListEntriesPage) => page.streams.map((s) => s.path);

/** A node's own page: its `limit` smallest paths after `afterPath`, as selectStreamPage gives. */
function nodePage(held: readonly string[], afterPath: string | undefined, limit: number): StreamListEntriesPage {
  const after = [...held].filter((path) => afterPath === undefined || path > afterPath).sort();
  return pageOf(after.slice(0, limit), after.length > limit);
}

describe('mergeStreamListPages', () => {
  test('merges by path and keeps the first limit', () => {
    const merged = mergeStreamListPages([pageOf(['b', 'd']), pageOf(['a', 'c', 'e'])], 4);
    expect(paths(merged)).toEqual(['a', 'b', 'c', 'd']);
    expect(merged.more).toBe(true); // 'e' is past the limit
  });

  test('a path on two nodes is listed once, with the first page\'s entry', () => {
    const merged = mergeStreamListPages([{ streams: [entry('a', 'one'), entry('b')], more: false }, { streams: [entry('a', 'two'), entry('c')], more: false }], 3);
    expect(merged.streams).toEqual([entry('a', 'one'), entry('b'), entry('c')]);
    expect(merged.more).toBe(false);
  });

  test('more when any node had more, even if the union fits the limit', () => {
    expect(mergeStreamListPages([pageOf(['a', 'b'], true), pageOf([])], 2)).toEqual({ streams: pageOf(['a', 'b']).streams, more: true });
    // Duplicates do not make more: two nodes with the same two paths fill a page of 2 exactly.
    expect(mergeStreamListPages([pageOf(['a', 'b']), pageOf(['a', 'b'])], 2).more).toBe(false);
    expect(mergeStreamListPages([pageOf(['a']), pageOf(['b'])], 2).more).toBe(false);
    expect(mergeStreamListPages([pageOf([]), pageOf([])], 5)).toEqual({ streams: [], more: false });
  });

  test('orders by UTF-16 code units, as the registry pages do', () => {
    expect(paths(mergeStreamListPages([pageOf(['é', 'Z']), pageOf(['a', '\u{1F600}', '\uFFFD'])], 10))).toEqual(['Z', 'a', 'é', '\u{1F600}', '\uFFFD']);
  });

  test('a merged page is the union\'s page, so a walk by cursor visits every path once, in order', () => {
    const node = fc.uniqueArray(fc.stringMatching(/^[abé\/]{1,4}$/), { maxLength: 25 });
    fc.assert(
      fc.property(fc.array(node, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 6 }), (nodes, limit) => {
        const union = [...new Set(nodes.flat())].sort();
        const seen: string[] = [];
        let afterPath: string | undefined;
        for (let pages = 0; ; pages++) {
          expect(pages).toBeLessThanOrEqual(union.length);
          const merged = mergeStreamListPages(nodes.map((held) => nodePage(held, afterPath, limit)), limit);
          expect(paths(merged)).toEqual(union.filter((path) => afterPath === undefined || path > afterPath).slice(0, limit));
          seen.push(...paths(merged));
          if (!merged.more) break;
          afterPath = seen.at(-1);
        }
        expect(seen).toEqual(union);
      }),
    );
  });
});
