/** The live tail of one stream: JSON messages pretty-printed, text as text, bytes as hex and text. */
import { useEffect, useState } from 'preact/hooks';
import type { BrowserClock } from './browser-clock.ts';
import { tailStream, type TailEvent } from './sse-tail.ts';

const ENTRIES_MAX = 200;

interface Entry {
  id: number;
  text: string;
}

export function LiveTail({ path, contentType, clock }: { path: string; contentType: string; clock: BrowserClock }) {
  const [from, setFrom] = useState<'now' | '-1'>('now');
  const [entries, setEntries] = useState<Entry[]>([]);
  const [state, setState] = useState('connecting');
  const [error, setError] = useState('');
  useEffect(() => {
    setEntries([]);
    setError('');
    let nextId = 0;
    const json = /^application\/json\b/i.test(contentType);
    return tailStream(path, from, clock, {
      onData: (event) => {
        const texts = render(event, json);
        setEntries((old) => [...old, ...texts.map((text) => ({ id: nextId++, text }))].slice(-ENTRIES_MAX));
      },
      onState: setState,
      onError: (failure) => setError(failure.message),
    });
  }, [path, contentType, from, clock]);
  return (
    <section class="tail">
      <h3>
        Live tail <span class="badge" data-testid="tail-state">{state}</span>
      </h3>
      <div class="row">
        <label>
          from{' '}
          <select value={from} onChange={(event) => setFrom(event.currentTarget.value as 'now' | '-1')}>
            <option value="now">now</option>
            <option value="-1">the beginning</option>
          </select>
        </label>
        <span class="muted">newest {ENTRIES_MAX} entries</span>
      </div>
      {error !== '' && <p class="error">{error}</p>}
      <ol class="entries" data-testid="tail">
        {entries.map((entry) => (
          <li key={entry.id}>
            <pre>{entry.text}</pre>
          </li>
        ))}
      </ol>
    </section>
  );
}

/** One data event as display entries: one per JSON message, else one. */
function render(event: TailEvent, json: boolean): string[] {
  if (typeof event.data !== 'string') return [hexDump(event.data)];
  if (json) {
    try {
      const messages: unknown = JSON.parse(event.data);
      if (Array.isArray(messages)) return messages.map((message) => JSON.stringify(message, null, 2));
    } catch {
      // Not a JSON array after all: shown as text.
    }
  }
  return [event.data];
}

/** 16 bytes a line: offset, hex, printable ASCII. */
export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = [...row].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
    const text = [...row].map((byte) => (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.')).join('');
    lines.push(`${at.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${text}`);
  }
  return lines.join('\n');
}
