/**
 * FixedHistogram (the request hot path's histogram) exports exactly what prom-client's own
 * Histogram exports for the same observations.
 */
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { FixedHistogram } from '../../src/observability/fixed-histogram.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

test('same text exposition as prom-client Histogram for any observations', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ op: fc.constantFrom('append', 'read'), status: fc.constantFrom('200', '204'), value: fc.double({ min: 0, max: 20, noNaN: true }) }), {
        maxLength: 50,
      }),
      async (observations) => {
        const ours = new Registry();
        const theirs = new Registry();
        const fixed = new FixedHistogram({ name: 'h_seconds', help: 'h', labelNames: ['op', 'status'], buckets: BUCKETS, registry: ours });
        const reference = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['op', 'status'], buckets: BUCKETS, registers: [theirs] });
        for (const { op, status, value } of observations) {
          fixed.child({ op, status }).observe(value);
          reference.labels(op, status).observe(value);
        }
        const sorted = (text: string) => text.split('\n').sort().join('\n');
        expect(sorted(await ours.metrics())).toBe(sorted(await theirs.metrics()));
      },
    ),
    { numRuns: 100 },
  );
});

test('a child is resolved once per label set; values on a bound fall in that bound', async () => {
  const registry = new Registry();
  const fixed = new FixedHistogram({ name: 'x_seconds', help: 'x', labelNames: ['op'], buckets: BUCKETS, registry });
  const child = fixed.child({ op: 'a' });
  expect(fixed.child({ op: 'a' })).toBe(child);
  child.observe(0.01);
  child.observe(11);
  const text = await registry.metrics();
  expect(text).toContain('x_seconds_bucket{le="0.001",op="a"} 0');
  expect(text).toContain('x_seconds_bucket{le="0.01",op="a"} 1');
  expect(text).toContain('x_seconds_bucket{le="10",op="a"} 1');
  expect(text).toContain('x_seconds_bucket{le="+Inf",op="a"} 2');
  expect(text).toContain('x_seconds_count{op="a"} 2');
  expect(() => new FixedHistogram({ name: 'y', help: 'y', labelNames: [], buckets: [1, 1], registry })).toThrow('not ascending');
});
