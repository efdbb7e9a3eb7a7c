/**
 * Deletes objects nobody references any more (DESIGN.md lifecycle): every object of a removed
 * stream incarnation (deleted, expired, or the last fork of a soft-deleted source gone), segments
 * dropped by retention, superseded manifest versions. Deletes run in the background, one job at a
 * time, retried until they succeed, and never block a request. Pending jobs travel in WAL
 * checkpoints, and replaying a delete record queues its job again, so a restart does not forget
 * them (deleting an absent key succeeds, so a job may safely run twice). A job starts only once
 * the WAL record that let its objects go (a delete, a trim) is durable: a crash that loses the
 * record brings the stream or its segments back, and they must still be readable.
 */
import type { Clock, Timer } from '../clock.ts';
import type { Logger } from 'pino';
import { OBJECT_DELETE_RETRY_MS } from '../config/limits.ts';
import type { ManifestStore } from '../manifest/manifest-store.ts';
import type { ObjectStore } from '../object-store/index.ts';
import type { SealActivity } from './seal-activity.ts';

/** One delete job: every object under `prefix`, or the listed `keys`. */
export type DeleteJob = { prefix: string; incarnation: number } | { keys: string[] };

export interface ObjectCollectorOptions {
  store: ObjectStore;
  logger: Logger;
  /** Seals running, waited for before a prefix is deleted (so no upload lands after the delete). */
  seals: SealActivity;
  /** Times the pause before a failed delete is retried. */
  clock: Clock;
  /**
   * Resolves when every WAL record applied so far is durable, rejects when the WAL could not make
   * them durable (`StreamRegistry.recordsDurable`). Read when a job is queued; the job waits for it,
   * and is dropped if it rejects (a restart replays the record if it landed, queueing the job again).
   */
  recordsDurable: () => Promise<void>;
  /**
   * Stores a removed incarnation's tombstone before its objects go, and keeps it until last, so a
   * node without the local disk never serves it again (docs/storage-layout.md); absent: no tombstones.
   */
  manifests?: ManifestStore;
}

/** A queued job and whether the records it depends on became durable. */
interface QueuedJob {
  job: DeleteJob;
  durable: Promise<boolean>;
}

export class ObjectCollector {
  readonly #options: ObjectCollectorOptions;
  readonly #jobs: QueuedJob[] = [];
  #running: Promise<void> | undefined;
  #closed = false;
  /** Resolved by `close()`: a job waiting for its records stops waiting. */
  readonly #closing = Promise.withResolvers<void>();
  #retryTimer: Timer | undefined;
  /** Objects deleted so far (keys handed to the store). */
  deletedCount = 0;

  constructor(options: ObjectCollectorOptions) {
    this.#options = options;
  }

  /** Queues the deletion of every object under a removed incarnation's prefix. */
  deletePrefix(prefix: string, incarnation: number): void {
    this.#enqueue({ prefix, incarnation });
  }

  deleteKeys(keys: readonly string[]): void {
    if (keys.length > 0) this.#enqueue({ keys: [...keys] });
  }

  /** True while the objects of `incarnation` are queued for deletion (lazy lookups must not bring it back). */
  isDeleting(incarnation: number): boolean {
    return this.#jobs.some(({ job }) => 'prefix' in job && job.incarnation === incarnation);
  }

  /** Jobs not yet done, for a checkpoint. */
  pending(): DeleteJob[] {
    // A checkpoint is written only once the records before it are durable, so a job it carries
    // needs no wait after a restart.
    return this.#jobs.map(({ job }) => ('keys' in job ? { keys: [...job.keys] } : { ...job }));
  }

  /** Resolves when the queue is empty (tests, shutdown of short runs). */
  async drained(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Stops starting jobs; the pending ones stay for the next checkpoint or restart. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.resolve();
    this.#retryTimer?.cancel();
    await this.#running;
  }

  #enqueue(job: DeleteJob): void {
    const durable = this.#options.recordsDurable().then(
      () => true,
      () => false,
    );
    this.#jobs.push({ job, durable });
    this.#kick();
  }

  #kick(): void {
    if (this.#running !== undefined || this.#closed || this.#jobs.length === 0 || this.#retryTimer !== undefined) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (!this.#closed && this.#jobs.length > 0) {
      const { job, durable } = this.#jobs[0];
      const ready = await Promise.race([durable, this.#closing.promise.then(() => undefined)]);
      if (ready === undefined) return; // closed: the job stays for the next checkpoint
      if (!ready) {
        this.#jobs.shift();
        this.#options.logger.warn({ job }, 'object delete dropped: the WAL record that allowed it is not durable');
        continue;
      }
      try {
        await this.#run(job);
        this.#jobs.shift();
      } catch (error) {
        this.#options.logger.warn({ err: error, retryInMs: OBJECT_DELETE_RETRY_MS }, 'object delete failed; will retry');
        this.#retryTimer = this.#options.clock
          .setTimeout(() => {
            this.#retryTimer = undefined;
            this.#kick();
          }, OBJECT_DELETE_RETRY_MS)
          .unref();
        return;
      }
    }
  }

  async #run(job: DeleteJob): Promise<void> {
    const store = this.#options.store;
    if ('keys' in job) {
      await store.deleteMany(job.keys);
      this.deletedCount += job.keys.length;
      return;
    }
    await this.#options.seals.idle(job.incarnation);
    const tombstone = await this.#options.manifests?.storeTombstone(job.prefix);
    // Each page is deleted before the next is listed, so paging never skips a key. The tombstone
    // (the newest manifest, the last key) goes only once everything else is gone.
    for (;;) {
      const page = await store.list({ prefix: job.prefix });
      const keys = page.objects.map((object) => object.key).filter((key) => key !== tombstone);
      if (keys.length === 0) break;
      await store.deleteMany(keys);
      this.deletedCount += keys.length;
    }
    if (tombstone !== undefined) {
      await store.delete(tombstone);
      this.deletedCount++;
    }
  }
}
