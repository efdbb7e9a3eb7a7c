/**
 * The web inspector (README "Inspector"): a token field, the stream list, one stream, the server
 * page. Routes live in the URL fragment (#/, #/stream/<path>, #/server), so the server serves one
 * static page and every view can be linked.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { storedToken, storeToken } from './api.ts';
import { browserClock, type BrowserClock } from './browser-clock.ts';
import { ServerView } from './server-view.tsx';
import { StreamList } from './stream-list.tsx';
import { StreamView } from './stream-view.tsx';

type Route = { view: 'list'; prefix: string } | { view: 'stream'; path: string } | { view: 'server' };

function routeOf(hash: string): Route {
  if (hash.startsWith('#/stream/')) return { view: 'stream', path: decodeURIComponent(hash.slice('#/stream/'.length)) };
  if (hash === '#/server') return { view: 'server' };
  const prefix = hash.startsWith('#/?prefix=') ? decodeURIComponent(hash.slice('#/?prefix='.length)) : '';
  return { view: 'list', prefix };
}

function TokenField({ onChange }: { onChange: () => void }) {
  const [token, setToken] = useState(storedToken());
  const [saved, setSaved] = useState(storedToken() !== '');
  return (
    <form
      class="token"
      onSubmit={(event) => {
        event.preventDefault();
        storeToken(token.trim());
        setSaved(token.trim() !== '');
        onChange();
      }}
    >
      <input
        name="token"
        type="password"
        autocomplete="off"
        placeholder="bearer token (kept for this tab only)"
        value={token}
        onInput={(event) => setToken(event.currentTarget.value)}
      />
      <button type="submit">Use token</button>
      <button
        type="button"
        onClick={() => {
          storeToken('');
          setToken('');
          setSaved(false);
          onChange();
        }}
      >
        Forget
      </button>
      <span class="muted" data-testid="token-state">
        {saved ? 'token set' : 'no token'}
      </span>
    </form>
  );
}

function App({ clock }: { clock: BrowserClock }) {
  const [route, setRoute] = useState(routeOf(location.hash));
  // Bumped when the token changes: every view remounts and fetches with the new token.
  const [session, setSession] = useState(0);
  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return (
    <>
      <header>
        <h1>Cairn inspector</h1>
        <nav>
          <a href="#/">Streams</a>
          <a href="#/server">Server</a>
        </nav>
        <TokenField onChange={() => setSession((s) => s + 1)} />
      </header>
      <main key={session}>
        {route.view === 'list' && <StreamList prefix={route.prefix} onPrefix={(prefix) => (location.hash = `#/?prefix=${encodeURIComponent(prefix)}`)} />}
        {route.view === 'stream' && <StreamView key={route.path} path={route.path} clock={clock} onGone={() => (location.hash = '#/')} />}
        {route.view === 'server' && <ServerView clock={clock} />}
      </main>
    </>
  );
}

render(<App clock={browserClock} />, document.getElementById('app')!);
