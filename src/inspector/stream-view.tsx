/**
 * One stream: what HEAD and /v1/streams/meta say about it, its live tail, an append form, and
 * close / fork / delete behind a confirmation.
 */
import { useEffect, useState } from 'preact/hooks';
import { appendToStream, closeStream, deleteStream, describeStream, forkStream, type StreamMeta } from './api.ts';
import type { BrowserClock } from './browser-clock.ts';
import { ErrorLine } from './error-line.tsx';
import { LiveTail } from './live-tail.tsx';
import { formatBytes } from './server-view.tsx';

interface Described {
  head: Record<string, string>;
  meta: StreamMeta;
}

export function StreamView({ path, clock, onGone }: { path: string; clock: BrowserClock; onGone: () => void }) {
  const [described, setDescribed] = useState<Described | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [version, setVersion] = useState(0);
  const refresh = () => setVersion((v) => v + 1);
  useEffect(() => {
    let current = true;
    describeStream(path).then(
      (result) => current && (setDescribed(result), setError(undefined)),
      (failure) => current && (setDescribed(undefined), setError(failure)),
    );
    return () => {
      current = false;
    };
  }, [path, version]);
  return (
    <section>
      <h2>
        <code data-testid="stream-path">{path}</code> <button onClick={refresh}>refresh</button>
      </h2>
      <ErrorLine error={error} />
      {described !== undefined && (
        <>
          <Details {...described} />
          <div class="columns">
            <LiveTail path={path} contentType={described.meta.contentType} clock={clock} />
            <div>
              <AppendForm path={path} contentType={described.meta.contentType} closed={described.meta.closed} onDone={refresh} />
              <Actions path={path} closed={described.meta.closed} onDone={refresh} onGone={onGone} />
            </div>
          </div>
        </>
      )}
    </section>
  );
}

function Details({ head, meta }: Described) {
  const rows: [string, string][] = [
    ['content type', meta.contentType],
    ['incarnation', String(meta.incarnation)],
    ['closed', meta.closed ? 'yes' : 'no'],
    ['tail offset (assigned)', meta.offsets.tail],
    ['durable offset (Stream-Next-Offset)', head['stream-next-offset'] ?? meta.offsets.durable],
    ['sealed offset (Cairn-Sealed-Offset)', head['cairn-sealed-offset'] ?? meta.offsets.sealed],
    ['earliest offset (Cairn-Earliest-Offset)', head['cairn-earliest-offset'] ?? meta.offsets.earliest],
    ['unsealed bytes', formatBytes(meta.hotTailBytes)],
    ['TTL', meta.ttlSeconds === null ? '–' : `${meta.ttlSeconds} s (sliding)`],
    ['expires at', meta.expiresAt ?? '–'],
    ['retention', [meta.retentionMs === null ? '' : `${meta.retentionMs} ms`, meta.retentionBytes === null ? '' : formatBytes(meta.retentionBytes)].filter(Boolean).join(', ') || 'server default'],
    ['forked from', meta.fork === null ? '–' : `${meta.fork.sourcePath ?? '(a stream this token may not read)'} at ${meta.fork.offset}`],
    ['forks of this stream', String(meta.forkCount)],
    ['manifest version', meta.manifestVersion === 0 ? 'none stored yet' : String(meta.manifestVersion)],
  ];
  return (
    <div class="columns">
      <dl class="details" data-testid="details">
        {rows.map(([name, value]) => (
          <>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </>
        ))}
      </dl>
      <div>
        <h3>Producers ({meta.producerCount})</h3>
        {meta.producers.length === 0 ? (
          <p class="muted">none</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>producer id</th>
                <th>epoch</th>
                <th>last seq</th>
              </tr>
            </thead>
            <tbody>
              {meta.producers.map((producer) => (
                <tr key={producer.producerId}>
                  <td>{producer.producerId}</td>
                  <td>{producer.epoch}</td>
                  <td>{producer.lastSeq}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Segments ({meta.segmentCount})</h3>
        {meta.segments.length === 0 ? (
          <p class="muted">none sealed yet</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>start</th>
                <th>end</th>
                <th>size</th>
                <th>sealed at</th>
              </tr>
            </thead>
            <tbody>
              {meta.segments.slice(-20).map((segment) => (
                <tr key={segment.startOffset}>
                  <td>
                    <code>{segment.startOffset}</code>
                  </td>
                  <td>
                    <code>{segment.endOffset}</code>
                  </td>
                  <td>{formatBytes(segment.bytes)}</td>
                  <td>{segment.sealedAt}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}

function AppendForm({ path, contentType, closed, onDone }: { path: string; contentType: string; closed: boolean; onDone: () => void }) {
  const [body, setBody] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="append"
      data-testid="append-form"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        try {
          await appendToStream(path, contentType, body);
          setBody('');
          setError(undefined);
          onDone();
        } catch (failure) {
          setError(failure);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h3>Append</h3>
      <textarea name="body" rows={4} placeholder={`a body of type ${contentType}`} value={body} onInput={(event) => setBody(event.currentTarget.value)} disabled={closed} />
      <button type="submit" disabled={closed || busy || body === ''}>
        Append
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

type Pending = { kind: 'close' } | { kind: 'delete' } | { kind: 'fork'; forkPath: string };

function Actions({ path, closed, onDone, onGone }: { path: string; closed: boolean; onDone: () => void; onGone: () => void }) {
  const [forkPath, setForkPath] = useState(`${path}-fork`);
  const [pending, setPending] = useState<Pending | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const run = async (action: Pending) => {
    try {
      if (action.kind === 'close') await closeStream(path);
      if (action.kind === 'fork') await forkStream(path, action.forkPath);
      if (action.kind === 'delete') await deleteStream(path);
      setError(undefined);
      setPending(undefined);
      if (action.kind === 'delete') onGone();
      else if (action.kind === 'fork') location.hash = `#/stream/${encodeURIComponent(action.forkPath)}`;
      else onDone();
    } catch (failure) {
      setError(failure);
      setPending(undefined);
    }
  };
  const question =
    pending === undefined
      ? ''
      : pending.kind === 'close'
        ? `Close ${path}? No append will be accepted after this.`
        : pending.kind === 'delete'
          ? `Delete ${path}? Its data is gone for readers at once.`
          : `Fork ${path} at its tail into ${pending.forkPath}?`;
  return (
    <div class="actions">
      <h3>Actions</h3>
      <div class="row">
        <button type="button" disabled={closed} onClick={() => setPending({ kind: 'close' })}>
          Close…
        </button>
        <button type="button" class="danger" onClick={() => setPending({ kind: 'delete' })}>
          Delete…
        </button>
      </div>
      <div class="row">
        <input name="fork-path" value={forkPath} onInput={(event) => setForkPath(event.currentTarget.value)} />
        <button type="button" disabled={forkPath === ''} onClick={() => setPending({ kind: 'fork', forkPath })}>
          Fork…
        </button>
      </div>
      {pending !== undefined && (
        <div class="confirm" role="alertdialog" data-testid="confirm">
          <p>{question}</p>
          <button type="button" class="danger" onClick={() => void run(pending)}>
            Confirm
          </button>
          <button type="button" onClick={() => setPending(undefined)}>
            Cancel
          </button>
        </div>
      )}
      <ErrorLine error={error} />
    </div>
  );
}
