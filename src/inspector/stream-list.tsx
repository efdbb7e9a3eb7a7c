/** The stream list: prefix search and keyset paging over GET /v1/streams. */
import { useEffect, useState } from 'preact/hooks';
import { listStreams, type StreamListPage } from './api.ts';
import { ErrorLine } from './error-line.tsx';

const PAGE_SIZE = 50;

export function StreamList({ prefix, onPrefix }: { prefix: string; onPrefix: (prefix: string) => void }) {
  const [typed, setTyped] = useState(prefix);
  // Cursors of the pages before the current one, for "previous".
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<StreamListPage | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const cursor = cursors.at(-1) ?? null;
  useEffect(() => setCursors([null]), [prefix]);
  useEffect(() => {
    let current = true;
    listStreams(prefix, cursor, PAGE_SIZE).then(
      (result) => current && (setPage(result), setError(undefined)),
      (failure) => current && (setPage(undefined), setError(failure)),
    );
    return () => {
      current = false;
    };
  }, [prefix, cursor]);
  return (
    <section>
      <h2>Streams</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          onPrefix(typed);
        }}
      >
        <input name="prefix" placeholder="path prefix, e.g. tenant-a/" value={typed} onInput={(event) => setTyped(event.currentTarget.value)} />
        <button type="submit">Search</button>
      </form>
      <ErrorLine error={error} />
      {page !== undefined && (
        <>
          <table class="streams" data-testid="stream-table">
            <thead>
              <tr>
                <th>path</th>
                <th>content type</th>
                <th>next offset</th>
                <th>closed</th>
              </tr>
            </thead>
            <tbody>
              {page.streams.map((stream) => (
                <tr key={stream.path}>
                  <td>
                    <a href={`#/stream/${encodeURIComponent(stream.path)}`}>{stream.path}</a>
                  </td>
                  <td>{stream.contentType}</td>
                  <td>
                    <code>{stream.nextOffset}</code>
                  </td>
                  <td>{stream.closed ? 'closed' : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.streams.length === 0 && <p class="muted">No streams{prefix === '' ? '' : ` under "${prefix}"`} that this token may read.</p>}
          <div class="row">
            <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
              ← previous
            </button>
            <button type="button" disabled={page.nextCursor === null} onClick={() => setCursors([...cursors, page.nextCursor])}>
              next →
            </button>
          </div>
        </>
      )}
    </section>
  );
}
