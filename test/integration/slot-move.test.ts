/**
 * A graceful slot move between two in-process nodes over one object store (docs/cluster.md
 * "Moves"), driven by a coordinator double that changes the slot map the way the etcd
 * coordinator's leader does: mark the slot moving (the owner refuses writes, seals its streams
 * and forgets them), then give it to the new owner with the next epoch. Checks that no
 * acknowledged byte is lost or duplicated, a retried producer batch is still a duplicate, and a
 * long-poll waiting through the move continues on the new owner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { CLUSTER_SLOT_COUNT_DEFAULT } from '../../src/config/limits.ts';
import type { Coordinator, CoordinatorStatus, ListeningAddress, ReleaseHandler } from '../../src/cluster/coordinator.ts';
import { SlotTable, type SlotOwner } from '../../src/cluster/slot-table.ts';
import { MemoryObjectStore } from '../../src/object-store/index.ts';
import { lookUpPath } from '../../src/manifest/stream-lookup.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** The slot map both nodes watch, changed by the test. */
class TestCluster {
  owners: SlotOwner[] = [];
  revision = 0;
  readonly members: TestCoordinator[] = [];

  publish(): void {
    this.revision++;
    const nodes = this.members.filter((member) => member.url !== undefined).map((member) => ({ nodeId: member.table.nodeId, advertiseUrl: member.url as string }));
    for (const member of this.members) {
      member.table.setNodes(nodes);
      member.table.setMap({ slotCount: CLUSTER_SLOT_COUNT_DEFAULT, owners: this.owners.map((owner) => ({ ...owner })), revision: this.revision });
    }
  }

  /** The two steps of a graceful move. */
  async move(slot: number, to: string): Promise<void> {
    const owner = this.owners[slot] as SlotOwner;
    const from = this.members.find((member) => member.table.nodeId === owner.nodeId);
    this.owners[slot] = { ...owner, movingTo: to };
    this.publish();
    await from?.release?.([slot]);
    this.owners[slot] = { nodeId: to, epoch: owner.epoch + 1 };
    this.publish();
  }
}

class TestCoordinator implements Coordinator {
  readonly table: SlotTable;
  url: string | undefined;
  release: ReleaseHandler | undefined;
  readonly #cluster: TestCluster;
  /** As etcd allocates them: one index per node. */
  readonly incarnationResidue: number;

  constructor(cluster: TestCluster, nodeId: string) {
    this.#cluster = cluster;
    this.table = new SlotTable({ nodeId, slotCount: CLUSTER_SLOT_COUNT_DEFAULT, clock: systemClock, leaseSafeUntilMs: () => Infinity });
    this.incarnationResidue = cluster.members.length;
    cluster.members.push(this);
  }

  async start(listening: ListeningAddress): Promise<void> {
    this.url = listening.advertiseUrl;
    if (this.#cluster.owners.length === 0) this.#cluster.owners = Array.from({ length: CLUSTER_SLOT_COUNT_DEFAULT }, () => ({ nodeId: this.table.nodeId, epoch: 1 }));
    this.#cluster.publish();
  }

  setReleaseHandler(handler: ReleaseHandler): void {
    this.release = handler;
  }

  async leave(): Promise<void> {}

  status(): CoordinatorStatus {
    return { kind: 'test', connected: true, ownedSlots: this.table.ownedSlots().length, mapRevision: this.table.map.revision };
  }

  async clearRecoverFrom(): Promise<void> {}
  async close(): Promise<void> {}
}

const cluster = new TestCluster();
const store = new MemoryObjectStore();
let a: TestServer;
let b: TestServer;
const coordinators: TestCoordinator[] = [];
const withCoordinator = () => ({
  objectStore: store,
  cluster: {
    coordinator: (nodeId: string) => {
      const coordinator = new TestCoordinator(cluster, nodeId);
      coordinators.push(coordinator);
      return coordinator;
    },
  },
});

beforeAll(async () => {
  // Small segments sealed at once: reads of sealed history can be answered by either node.
  const settings = { longPollTimeoutMs: 30_000, segmentSizeBytes: 64, sealIdleMs: 0, chunkBytesMax: 128, catchUpBytesMax: 128 };
  a = await startTestServer(settings, withCoordinator());
  b = await startTestServer(settings, withCoordinator());
});
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

const text = { 'content-type': 'text/plain' };
const producer = (seq: number) => ({ ...text, 'producer-id': 'p1', 'producer-epoch': '0', 'producer-seq': String(seq) });

describe('a graceful slot move', () => {
  it('hands a stream over with every byte, its producer state, and a waiting long-poll', async () => {
    const [coordinatorA, coordinatorB] = coordinators as [TestCoordinator, TestCoordinator];
    const path = 'moving/stream';
    const slot = coordinatorA.table.slotOf(path);
    const atA = `${a.url}/v1/stream/${path}`;
    const atB = `${b.url}/v1/stream/${path}`;

    // B owns nothing yet: not ready for traffic of its own (it still forwards).
    const notReady = await fetch(`${b.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toMatch(/owns no slots/);

    // Created and written through B: forwarded to A, the owner of every slot.
    expect((await fetch(atB, { method: 'PUT', headers: text })).status).toBe(201);
    for (let seq = 0; seq < 3; seq++) {
      const response = await fetch(atB, { method: 'POST', headers: producer(seq), body: `m${seq};` });
      expect(response.status).toBe(200);
      expect(response.headers.get('cairn-node')).toBe(coordinatorA.table.nodeId);
    }
    const head = await fetch(atB, { method: 'HEAD' });
    const tail = head.headers.get('stream-next-offset') ?? '';

    // A long-poll at the tail, through B, waits on A while the slot moves.
    const waiting = fetch(`${atB}?offset=${tail}&live=long-poll`);
    for (;;) {
      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      if (/^cairn_live_connections\{mode="long-poll"\} 1$/m.test(metrics)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await cluster.move(slot, coordinatorB.table.nodeId);
    expect(a.registry.holdsPath(path)).toBe(false);

    // The retried last batch is a duplicate on the new owner; the next one appends there.
    const retried = await fetch(atA, { method: 'POST', headers: producer(2), body: 'm2;' });
    expect(retried.status).toBe(204);
    const next = await fetch(atA, { method: 'POST', headers: producer(3), body: 'm3;' });
    expect(next.status).toBe(200);
    expect(next.headers.get('cairn-node')).toBe(coordinatorB.table.nodeId);

    const woke = await waiting;
    expect(woke.status).toBe(200);
    expect(await woke.text()).toBe('m3;');
    const all = await fetch(`${atA}?offset=-1`);
    expect(await all.text()).toBe('m0;m1;m2;m3;');

    // Manifest versions carry the epoch of the node that stored them: 2 after the hand-over.
    const holder = b.registry.get(path, { touch: false });
    for (let i = 0; i < 600 && holder.sealedOffset < holder.durableOffset; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const stored = await lookUpPath(store, path);
    expect(stored.found?.manifest.stream?.ownerEpoch).toBe(2);

    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/^cairn_cluster_owned_slots 1$/m);
    expect(metrics).toMatch(/^cairn_cluster_connected 1$/m);
    expect(metrics).toMatch(/^cairn_forwarded_requests_total\{outcome="answered"\} [1-9]/m);
    expect(metrics).toMatch(/^cairn_forwarded_requests_total\{outcome="retried"\} 1$/m);
  }, 60_000);

  it('refuses writes on the old owner while the slot is marked moving', async () => {
    const [coordinatorA, coordinatorB] = coordinators as [TestCoordinator, TestCoordinator];
    const path = 'moving/refused';
    const slot = coordinatorA.table.slotOf(path);
    const owner = cluster.owners[slot] as SlotOwner;
    expect(owner.nodeId).toBe(coordinatorA.table.nodeId);
    expect((await fetch(`${a.url}/v1/stream/${path}`, { method: 'PUT', headers: text })).status).toBe(201);
    cluster.owners[slot] = { ...owner, movingTo: coordinatorB.table.nodeId };
    cluster.publish();
    const refused = await fetch(`${a.url}/v1/stream/${path}`, { method: 'POST', headers: text, body: 'x' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.text()).toMatch(/moving to/);
  });

  it('answers reads of sealed history on the node that got them, and the rest on the owner', async () => {
    const [coordinatorA, coordinatorB] = coordinators as [TestCoordinator, TestCoordinator];
    const path = 'history/one';
    expect(cluster.owners[coordinatorA.table.slotOf(path)]?.nodeId).toBe(coordinatorA.table.nodeId);
    const atA = `${a.url}/v1/stream/${path}`;
    const atB = `${b.url}/v1/stream/${path}`;
    expect((await fetch(atA, { method: 'PUT', headers: text })).status).toBe(201);
    const chunks = Array.from({ length: 6 }, (_, i) => `${String(i).repeat(63)};`);
    for (const chunk of chunks) expect((await fetch(atA, { method: 'POST', headers: text, body: chunk })).status).toBe(204);
    const holder = a.registry.get(path, { touch: false });
    for (let i = 0; i < 600 && holder.sealedOffset < holder.durableOffset; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(holder.sealedOffset).toBe(holder.durableOffset);

    // Walk the stream through B: every response is B's own (the history is sealed), byte-identical
    // to the owner's, and only the owner may say up to date.
    let offset = '-1';
    let text384 = '';
    for (let step = 0; step < 10; step++) {
      const [fromB, fromA] = await Promise.all([fetch(`${atB}?offset=${offset}`), fetch(`${atA}?offset=${offset}`)]);
      const [bodyB, bodyA] = await Promise.all([fromB.text(), fromA.text()]);
      expect(fromA.headers.get('cairn-node')).toBe(coordinatorA.table.nodeId);
      if (fromB.headers.get('stream-up-to-date') === 'true') {
        expect(fromB.headers.get('cairn-node'), 'up to date comes from the owner').toBe(coordinatorA.table.nodeId);
      } else {
        expect(fromB.headers.get('cairn-node')).toBe(coordinatorB.table.nodeId);
      }
      if (fromA.headers.get('stream-up-to-date') !== 'true') {
        expect(bodyB).toBe(bodyA);
        expect(fromB.headers.get('etag')).toBe(fromA.headers.get('etag'));
        expect(fromB.headers.get('cache-control')).toBe(fromA.headers.get('cache-control'));
      }
      text384 += bodyB;
      offset = fromB.headers.get('stream-next-offset') ?? '';
      if (fromB.headers.get('stream-up-to-date') === 'true') break;
    }
    expect(text384).toBe(chunks.join(''));
  }, 60_000);
});
