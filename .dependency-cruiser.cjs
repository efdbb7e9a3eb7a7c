/**
 * The import graph of src/, checked by `npm run lint:imports` and test/unit/import-graph.test.ts.
 * Dependencies point downward only (DESIGN.md "Layers"): a folder may import its own files and
 * folders of LOWER layers, never a higher one nor a peer of its own layer, so no two folders can
 * form a cycle. Paths match `…/src/<folder>/`, so the same rules run on the test fixture tree.
 */

/** Bottom first. Each row: the layer's folders (or root files), and why it sits there. */
const LAYERS = [
  // Injected time and randomness: imported by every layer that waits or draws, imports nothing.
  { name: 'clock', members: ['clock.ts'] },
  // The settings table and limits with their reasons: plain values every layer reads, so it imports no layer.
  { name: 'config', members: ['config'] },
  // Pure protocol rules (offsets, headers, stream paths, the error table): no I/O.
  { name: 'protocol', members: ['protocol'] },
  // The object-store interface, its implementations and decorators.
  { name: 'object-store', members: ['object-store'] },
  // Cluster coordination (DESIGN.md "Scale-out"): slots, the slot map, the write fence and the
  // coordinators (etcd, or the static map of --workers). It knows no stream or storage code, so
  // the registry and the sealer below the HTTP layer can ask it for the fence.
  { name: 'cluster', members: ['cluster'] },
  // Storage formats: the WAL (record codec, group commit, recovery) and the manifest; peers, not stacked.
  { name: 'storage', members: ['wal', 'segment', 'manifest'] },
  // Stream registry and per-stream state.
  { name: 'stream', members: ['stream'] },
  // Peers: tiering (seal policy, sealer, retention, object collection) writes segments, the read
  // path (offset → hot tail or segment, the segment cache) reads them. DESIGN.md draws read-path
  // above tiering; they are kept apart here because they meet only through stream state and the
  // manifest (object naming belongs in manifest/), so neither needs the other.
  { name: 'tiering-and-read-path', members: ['tiering', 'read-path'] },
  // Cross-cutting services the HTTP layer uses: metrics/readiness read every layer below;
  // auth checks tokens and grants; the durable proxy pipes upstream responses into streams
  // through the registry and reads its own meta streams through the read path. Peers, none
  // knows another.
  { name: 'services', members: ['auth', 'observability', 'proxy'] },
  // Subscriptions (PROTOCOL.md §6–7): durable cursors over streams with webhook and pull-wake
  // delivery; they follow stream state and append wake events through the registry, register
  // their metrics, and are served by the HTTP layer, so they sit between the services and http.
  { name: 'subscriptions', members: ['subscriptions'] },
  // Fastify routes, live reads, the one error mapping.
  { name: 'http', members: ['http'] },
  // Diskless takeover of a dead cluster node's slots: replays its log (wal) into the registry
  // (stream) under the slot table's recovery marks (cluster); composed by the server.
  { name: 'takeover', members: ['takeover.ts'] },
  // The composition root: builds and wires every layer.
  { name: 'server', members: ['server.ts'] },
  // The command line: parses settings and starts the server; nothing imports it.
  { name: 'cli', members: ['cli'] },
];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Matches a member below any `src/`: a folder's files, or a root file itself. */
const pathOf = (member) => `(^|/)src/${escape(member)}${member.endsWith('.ts') ? '$' : '/'}`;

const forbidden = LAYERS.flatMap((layer, rank) =>
  layer.members.flatMap((member) => {
    const notBelow = LAYERS.slice(rank)
      .flatMap((upper) => upper.members)
      .filter((other) => other !== member);
    if (notBelow.length === 0) return []; // the top layer may import anything
    return {
      name: `layer-${member.replace(/\.ts$/, '')}`,
      severity: 'error',
      comment: `${member} (layer ${layer.name}) may import only layers below it: not ${notBelow.join(', ')}`,
      from: { path: pathOf(member) },
      to: { path: notBelow.map(pathOf).join('|') },
    };
  }),
);

module.exports = {
  forbidden: [
    ...forbidden,
    // The web inspector (src/inspector) is browser code bundled by esbuild: it talks to the server
    // only over HTTP, so it imports nothing of the server's src/, and nothing there imports it.
    // Outside the layer stack on purpose: it is a client, not a layer.
    {
      name: 'inspector-is-a-client',
      severity: 'error',
      comment: 'src/inspector is browser code: it may import only its own files and browser packages (preact)',
      from: { path: '(^|/)src/inspector/' },
      to: { path: '(^|/)src/', pathNot: '(^|/)src/inspector/' },
    },
    {
      name: 'not-to-inspector',
      severity: 'error',
      comment: 'server code must not import the browser code of src/inspector (it serves its built files)',
      from: { path: '(^|/)src/', pathNot: '(^|/)src/inspector/' },
      to: { path: '(^|/)src/inspector/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve would hide an edge from the rules above.',
      from: { path: '(^|/)src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports are edges too: `import type` from a higher layer is still an upward dependency.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
  },
};
