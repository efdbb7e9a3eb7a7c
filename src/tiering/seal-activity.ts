/**
 * Which stream incarnations have a seal or retention trim running. The sealer records its work
 * here and the object collector waits on it before deleting an incarnation's prefix, so no upload
 * lands after the delete. Both depend on this small object; neither on the other's internals.
 */
export class SealActivity {
  /** The running seal or trim of each incarnation (the sealer runs at most one per stream). */
  readonly #running = new Map<number, Promise<void>>();

  /** Records `work` as the running seal or trim of `incarnation` until it settles. */
  track(incarnation: number, work: Promise<void>): void {
    this.#running.set(incarnation, work);
    const forget = (): void => {
      if (this.#running.get(incarnation) === work) this.#running.delete(incarnation);
    };
    work.then(forget, forget);
  }

  /** True while a seal, trim or metadata write of `incarnation` runs (it may store objects). */
  running(incarnation: number): boolean {
    return this.#running.has(incarnation);
  }

  /** Resolves when no seal or trim of `incarnation` is running (never rejects). */
  async idle(incarnation: number): Promise<void> {
    await this.#running.get(incarnation)?.catch(() => {});
  }
}
