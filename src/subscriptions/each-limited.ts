/**
 * A bounded pool for the object-store trips of loading subscriptions (one GET per subscription,
 * one lookup per stream): S3 answers each in tens of ms, so 10,000 in sequence would take minutes.
 */

/** Runs `task` over `items`, at most `limit` at a time; rejects with the first failure after all settled. */
export async function eachLimited<T>(items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const failures: unknown[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      while (next < queue.length) await task(queue[next++] as T).catch((error: unknown) => failures.push(error));
    }),
  );
  if (failures.length > 0) throw failures[0];
}
