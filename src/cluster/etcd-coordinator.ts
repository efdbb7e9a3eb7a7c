/**
 * The etcd coordinator (DESIGN.md "Scale-out", docs/cluster.md): membership by lease, the slot
 * map in one etcd key changed only by transactions, watched by every node and applied to its
 * SlotTable; assignments by an elected leader (etcd-leader.ts); graceful moves completed by the
 * owner after its ReleaseHandler sealed the slots (etcd-release.ts); the write fence armed from
 * the lease's keep-alives (etcd-lease.ts).
 *
 * On lease loss (etcd answered TTL 0: the lease expired, e.g. after a pause or a partition longer
 * than the TTL) the fence is already shut (it shuts TTL − margin after the last answered
 * keep-alive was sent, before etcd could expire the lease). The node then registers again with a
 * new lease, re-reads the slot map under it, and only then opens the fence: its slots stay its
 * own in the map unless an operator (or, with takeover 'automatic', the leader) moved them while
 * it was not registered, which the re-read shows. Until then every write answers 503.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Clock, Timer } from '../clock.ts';
import { CLUSTER_KEEPALIVES_PER_TTL, CLUSTER_LEASE_MARGIN_SHARE, CLUSTER_LEAVE_TIMEOUT_MS, CLUSTER_RETRY_DELAY_MS, CLUSTER_START_TIMEOUT_MS } from '../config/limits.ts';
import type { Coordinator, CoordinatorStatus, ListeningAddress, ReleaseHandler } from './coordinator.ts';
import type { TakeoverMode } from './etcd-assignment.ts';
import { connectEtcd, type EtcdConnectionOptions } from './etcd-client.ts';
import { ClusterKeys, decodeNode, decodeSlotMap, encodeNode, type NodeRecord } from './etcd-keys.ts';
import { SlotLeader } from './etcd-leader.ts';
import { LeaseKeeper } from './etcd-lease.ts';
import { silentClusterLog, type ClusterLog } from './etcd-log.ts';
import { ClusterStore } from './etcd-map-store.ts';
import { SlotReleaser } from './etcd-release.ts';
import { SlotTable, type SlotMap, type SlotOwner } from './slot-table.ts';

/** How often a leaving node looks whether it still owns slots (the map comes by watch). */
const LEAVE_POLL_MS = 100;

export interface EtcdCoordinatorOptions {
  etcd: EtcdConnectionOptions;
  /** Names the cluster's keys (`/<clusterName>/…`); several clusters can share one etcd. */
  clusterName: string;
  /** Stable across restarts (the data directory's node id by default). */
  nodeId: string;
  /** Base URL peers forward requests to, e.g. `http://10.0.0.5:4437`; default the one `start` is given. */
  advertiseUrl?: string;
  /** Slots of the cluster; must equal the stored identity's. */
  slotCount: number;
  /** Lease TTL in ms (etcd rounds up to whole seconds). */
  leaseTtlMs: number;
  /** Dead owners' slots: 'manual' (default; local-WAL mode) or 'automatic' (diskless mode). */
  takeover?: TakeoverMode;
  clock: Clock;
  log?: ClusterLog;
}

export class EtcdCoordinator implements Coordinator {
  readonly table: SlotTable;
  readonly #options: EtcdCoordinatorOptions;
  readonly #keys: ClusterKeys;
  readonly #log: ClusterLog;
  #keeper: LeaseKeeper | undefined;
  #client: Etcd3 | undefined;
  #store: ClusterStore | undefined;
  #leader: SlotLeader | undefined;
  #releaser: SlotReleaser | undefined;
  #handler: ReleaseHandler | undefined;
  #watchers: Watcher[] = [];
  #nodes = new Map<string, NodeRecord>();
  #nodesRevision = 0;
  #draining = false;
  #closed = false;
  #resyncTimer: Timer | undefined;
  #retryTimer: Timer | undefined;
  #keepAliveFailing = false;
  #advertiseUrl = '';
  #nodeIndex: number | undefined;

  constructor(options: EtcdCoordinatorOptions) {
    this.#options = options;
    this.#keys = new ClusterKeys(options.clusterName);
    this.#log = options.log ?? silentClusterLog;
    this.table = new SlotTable({
      nodeId: options.nodeId,
      slotCount: options.slotCount,
      clock: options.clock,
      leaseSafeUntilMs: () => this.#keeper?.safeUntilMs() ?? -Infinity,
    });
    // A hand-over by an owner lets the leader mark the next batch; a mark makes the owner release.
    this.table.onChange(() => {
      this.#leader?.poke();
      this.#releaser?.poke();
    });
  }

  setReleaseHandler(handler: ReleaseHandler): void {
    this.#handler = handler;
  }

  get incarnationResidue(): number | undefined {
    return this.#nodeIndex;
  }

  /** Whether this node is the elected leader now. */
  get leading(): boolean {
    return this.#leader?.leading ?? false;
  }

  /** Registered nodes as this node last saw them (draining ones included). */
  get nodes(): ReadonlyMap<string, NodeRecord> {
    return this.#nodes;
  }

  /**
   * Connects, creates or checks the cluster's identity, registers this node under a new lease,
   * applies the slot map and the nodes, then watches them and campaigns for leadership.
   * @throws ClusterIdentityError when the cluster has another slot count; Error when etcd does
   *   not answer within CLUSTER_START_TIMEOUT_MS.
   */
  async start(listening?: ListeningAddress): Promise<void> {
    const options = this.#options;
    this.#advertiseUrl = options.advertiseUrl ?? listening?.advertiseUrl ?? '';
    if (this.#advertiseUrl === '') throw new Error('cluster node needs an advertise URL (how peers reach it)');
    const client = connectEtcd(options.etcd, options.clock);
    this.#client = client;
    this.#keeper = new LeaseKeeper({
      client,
      clock: options.clock,
      ttlMs: options.leaseTtlMs,
      marginMs: options.leaseTtlMs * CLUSTER_LEASE_MARGIN_SHARE,
      intervalMs: options.leaseTtlMs / CLUSTER_KEEPALIVES_PER_TTL,
      onLost: (error) => this.#leaseLost(error),
      onKeepAliveError: (error) => this.#keepAliveFailed(error),
      onKeepAliveOk: () => this.#keepAliveAnswered(),
    });
    const store = new ClusterStore(client, this.#keys);
    this.#store = store;
    const started = (async () => {
      await store.ensureIdentity(options.slotCount);
      this.#nodeIndex = await store.nodeIndex(options.nodeId);
      await this.#register();
      await this.#watch();
    })();
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = options.clock.setTimeout(() => reject(new Error(`cluster: etcd (${options.etcd.endpoints.join(', ')}) did not answer within ${CLUSTER_START_TIMEOUT_MS} ms`)), CLUSTER_START_TIMEOUT_MS);
    });
    try {
      await Promise.race([started, timeout]);
    } catch (error) {
      started.catch(() => undefined);
      await this.close();
      throw error;
    } finally {
      timer?.cancel();
    }
    const apply = (map: SlotMap): void => this.table.setMap(map);
    this.#releaser = new SlotReleaser({ table: this.table, store, clock: options.clock, log: this.#log, handler: () => this.#handler, nodes: () => this.#nodes, onMapWritten: apply });
    this.#leader = new SlotLeader({
      store,
      election: client.namespace(this.#keys.prefix).election(this.#keys.electionName, this.#keeper.ttlSeconds),
      nodeId: options.nodeId,
      clock: options.clock,
      takeover: options.takeover ?? 'manual',
      tickMs: options.leaseTtlMs,
      log: this.#log,
      onMapWritten: apply,
    });
    this.#leader.start();
    this.#releaser.poke();
    // Level-triggered: a periodic re-read makes a missed watch event (compaction, reconnect) harmless.
    this.#resyncTimer = options.clock.setInterval(() => void this.#resync().catch(() => undefined), options.leaseTtlMs).unref();
  }

  /**
   * Graceful leave: marks this node draining (the leader assigns it nothing and moves its slots
   * away, each sealed first), waits until it owns no slot (at most CLUSTER_LEAVE_TIMEOUT_MS; not
   * at all when no other node could take them), then resigns and revokes the lease. The fence is
   * shut from then on; `close()` still has to be called.
   */
  async leave(): Promise<void> {
    if (this.#closed || this.#client === undefined) return;
    const { clock, nodeId } = this.#options;
    this.#draining = true;
    const lease = this.#keeper?.lease;
    if (lease !== undefined) await lease.put(this.#keys.node(nodeId)).value(encodeNode(this.#record())).catch(() => undefined);
    const deadline = clock.monotonicMs() + CLUSTER_LEAVE_TIMEOUT_MS;
    const othersAssignable = (): boolean => [...this.#nodes.values()].some((node) => node.nodeId !== nodeId && !node.draining);
    while (this.table.ownedSlots().length > 0 && othersAssignable() && clock.monotonicMs() < deadline && !this.#closed) {
      this.#leader?.poke();
      await clock.sleep(LEAVE_POLL_MS);
    }
    const left = this.table.ownedSlots().length;
    if (left > 0) this.#log.warn({ nodeId, ownedSlots: left }, 'cluster: leaving with slots still owned (they wait for this node as after a crash)');
    await this.#leader?.close();
    await this.#keeper?.revoke().catch(() => undefined);
  }

  status(): CoordinatorStatus {
    return {
      kind: 'etcd',
      connected: this.#options.clock.monotonicMs() < (this.#keeper?.safeUntilMs() ?? -Infinity),
      ownedSlots: this.table.ownedSlots().length,
      mapRevision: this.table.map.revision,
    };
  }

  async clearRecoverFrom(slots: readonly number[]): Promise<void> {
    const store = this.#store;
    if (store === undefined) throw new Error('cluster: not started');
    const self = this.#options.nodeId;
    for (;;) {
      if (this.#closed) throw new Error('cluster: closed');
      const map = await store.readMap();
      this.table.setMap(map);
      const owners = [...map.owners];
      let cleared = 0;
      for (const slot of slots) {
        const owner = owners[slot] as SlotOwner;
        if (owner.nodeId !== self || owner.recoverFrom === undefined) continue;
        owners[slot] = owner.movingTo === undefined ? { nodeId: owner.nodeId, epoch: owner.epoch } : { nodeId: owner.nodeId, epoch: owner.epoch, movingTo: owner.movingTo };
        cleared++;
      }
      if (cleared === 0) return;
      const written = await store.writeMap(owners, map.revision);
      if (written !== undefined) {
        this.table.setMap(written);
        this.#log.info({ revision: written.revision, slots: cleared }, 'cluster: recovered slots cleared in the map');
        return;
      }
    }
  }

  /** Stops watching, keep-alives and campaigning without moving slots, and revokes the lease. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#resyncTimer?.cancel();
    this.#retryTimer?.cancel();
    this.#releaser?.close();
    await this.#leader?.close();
    await Promise.all(this.#watchers.map((watcher) => watcher.cancel().catch(() => undefined)));
    await this.#keeper?.close().catch(() => undefined);
    this.#client?.close();
  }

  #record(): NodeRecord {
    return { nodeId: this.#options.nodeId, advertiseUrl: this.#advertiseUrl, draining: this.#draining };
  }

  /**
   * A new lease, this node's key under it (only if no registration of this node id is live: a
   * previous process of this node may still be acknowledging until its lease expires), a fresh
   * read of the map and nodes, then the fence opens.
   */
  async #register(): Promise<void> {
    const { clock, nodeId } = this.#options;
    const client = this.#client as Etcd3;
    const keeper = this.#keeper as LeaseKeeper;
    const key = this.#keys.node(nodeId);
    for (let waitedLogged = false; ; ) {
      const lease = await keeper.grant();
      const result = await client
        .if(key, 'Version', '==', 0)
        .then(client.put(key).value(encodeNode(this.#record())).lease(await lease.grant()))
        .commit();
      if (result.succeeded) break;
      await keeper.revoke().catch(() => undefined);
      if (!waitedLogged) this.#log.warn({ nodeId }, 'cluster: this node id is still registered (a previous process, or another node with the same id); waiting for that lease to expire');
      waitedLogged = true;
      if (this.#closed) throw new Error('closed');
      await clock.sleep(CLUSTER_RETRY_DELAY_MS);
    }
    await this.#resync();
    keeper.arm();
  }

  /**
   * Reads the nodes, then the map, and applies them (a newer map only; the nodes if no newer
   * event came meanwhile).
   * @returns the store revision of the nodes' read: the map read reflects at least it, so watches
   *   from the next revision miss nothing (and never start at a compacted revision).
   */
  async #resync(): Promise<number> {
    const store = this.#store as ClusterStore;
    const { nodes, revision } = await store.readNodes();
    if (revision >= this.#nodesRevision) this.#applyNodes(nodes, revision);
    this.table.setMap(await store.readMap());
    return revision;
  }

  #applyNodes(nodes: Map<string, NodeRecord>, revision: number): void {
    this.#nodes = nodes;
    this.#nodesRevision = revision;
    this.table.setNodes(nodes.values());
    this.#leader?.poke();
    this.#releaser?.poke();
  }

  async #watch(): Promise<void> {
    const client = this.#client as Etcd3;
    const keys = this.#keys;
    const from = String((await this.#resync()) + 1);
    const mapWatcher = await client.watch().key(keys.slots).startRevision(from).create();
    mapWatcher.on('put', (kv) => {
      try {
        this.table.setMap({ ...decodeSlotMap(kv.value.toString('utf8')), revision: Number(kv.mod_revision) });
      } catch (error) {
        this.#log.warn({ err: error }, 'cluster: ignoring a malformed slot map');
      }
    });
    const nodesWatcher = await client.watch().prefix(keys.nodesPrefix).startRevision(from).create();
    nodesWatcher.on('put', (kv) => {
      const record = decodeNode(kv.value.toString('utf8'));
      if (record === undefined) return;
      const nodes = new Map(this.#nodes);
      nodes.set(record.nodeId, record);
      this.#applyNodes(nodes, Number(kv.mod_revision));
    });
    nodesWatcher.on('delete', (kv) => {
      const nodes = new Map(this.#nodes);
      nodes.delete(keys.nodeIdOf(kv.key.toString('utf8')));
      this.#applyNodes(nodes, Number(kv.mod_revision));
    });
    for (const watcher of [mapWatcher, nodesWatcher]) watcher.on('error', (error) => this.#log.warn({ err: error }, 'cluster: watch error'));
    this.#watchers = [mapWatcher, nodesWatcher];
  }

  #leaseLost(error: Error): void {
    if (this.#closed) return;
    this.#log.warn({ nodeId: this.#options.nodeId, err: error }, 'cluster: lease lost (expired on etcd); writes refused until registered again');
    const attempt = (): void => {
      if (this.#closed) return;
      this.#register().then(
        () => this.#log.info({ nodeId: this.#options.nodeId }, 'cluster: registered again under a new lease'),
        (cause: unknown) => {
          if (this.#closed) return;
          this.#log.warn({ err: cause }, 'cluster: registering again failed; retrying');
          this.#retryTimer = this.#options.clock.setTimeout(attempt, CLUSTER_RETRY_DELAY_MS).unref();
        },
      );
    };
    attempt();
  }

  #keepAliveAnswered(): void {
    if (!this.#keepAliveFailing) return;
    this.#keepAliveFailing = false;
    this.#log.info({ nodeId: this.#options.nodeId }, 'cluster: lease keep-alive answered again');
  }

  #keepAliveFailed(error: Error): void {
    if (this.#keepAliveFailing) return;
    this.#keepAliveFailing = true;
    this.#log.warn({ err: error }, 'cluster: lease keep-alive failed (etcd unreachable or without quorum); writes stop when the lease margin runs out');
  }
}
