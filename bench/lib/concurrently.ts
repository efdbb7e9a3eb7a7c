/**
 * Runs `each(i)` for i in [0, count), at most `concurrency` at a time, in index order of start;
 * rejects with the first failure (the other lanes still run on through the remaining indices).
 */
export async function forEachConcurrently(count: number, concurrency: number, each: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await each(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}
