import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { decideProducer, isSameCloser, type ProducerDecision, type StoredProducer } from '../../src/protocol/producer-rules.ts';

/**
 * PROTOCOL.md §5.2.1 "Validation Logic", written out case by case as the oracle. A producer with no
 * stored state behaves as one below every epoch, except that a first request ahead of seq 0 is a
 * gap (expected 0), so a pipelined first batch can still be waited for.
 */
function oracle(stored: StoredProducer | undefined, epoch: number, seq: number): ProducerDecision['kind'] {
  if (stored === undefined) return seq === 0 ? 'accept' : 'sequence-gap';
  if (epoch < stored.epoch) return 'stale-epoch';
  if (epoch > stored.epoch) return seq === 0 ? 'accept' : 'new-epoch-not-at-zero';
  if (seq <= stored.lastSeq) return 'duplicate';
  if (seq === stored.lastSeq + 1) return 'accept';
  return 'sequence-gap';
}

const small = fc.integer({ min: 0, max: 6 });
const stored = fc.option(fc.record({ epoch: small, lastSeq: small }), { nil: undefined });

describe('producer rules', () => {
  test('every (stored, epoch, seq) over a small grid decides as the protocol says', () => {
    const states: (StoredProducer | undefined)[] = [undefined];
    for (let e = 0; e <= 4; e++) for (let s = 0; s <= 4; s++) states.push({ epoch: e, lastSeq: s });
    for (const state of states) {
      for (let epoch = 0; epoch <= 5; epoch++) {
        for (let seq = 0; seq <= 6; seq++) {
          expect(decideProducer(state, { epoch, seq }).kind, JSON.stringify({ state, epoch, seq })).toBe(oracle(state, epoch, seq));
        }
      }
    }
  });

  test('matches the oracle for any integers up to 2^53 − 1', () => {
    const big = fc.maxSafeNat();
    fc.assert(
      fc.property(fc.option(fc.record({ epoch: big, lastSeq: big }), { nil: undefined }), big, big, (state, epoch, seq) => {
        expect(decideProducer(state, { epoch, seq }).kind).toBe(oracle(state, epoch, seq));
      }),
    );
  });

  test('each outcome carries the numbers its response needs', () => {
    expect(decideProducer({ epoch: 3, lastSeq: 7 }, { epoch: 2, seq: 8 })).toEqual({ kind: 'stale-epoch', currentEpoch: 3 });
    expect(decideProducer({ epoch: 3, lastSeq: 7 }, { epoch: 3, seq: 5 })).toEqual({ kind: 'duplicate', lastSeq: 7 });
    expect(decideProducer({ epoch: 3, lastSeq: 7 }, { epoch: 3, seq: 10 })).toEqual({ kind: 'sequence-gap', expectedSeq: 8, receivedSeq: 10 });
    expect(decideProducer(undefined, { epoch: 0, seq: 2 })).toEqual({ kind: 'sequence-gap', expectedSeq: 0, receivedSeq: 2 });
    expect(decideProducer({ epoch: 3, lastSeq: 7 }, { epoch: 4, seq: 1 })).toEqual({ kind: 'new-epoch-not-at-zero' });
    expect(decideProducer({ epoch: 3, lastSeq: 7 }, { epoch: 4, seq: 0 })).toEqual({ kind: 'accept' });
    expect(decideProducer(undefined, { epoch: 9, seq: 0 })).toEqual({ kind: 'accept' });
  });

  test('a producer that applies what it is told accepts each seq once, in order, whatever order retries come in', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ epoch: small, seq: small }), { maxLength: 60 }), (requests) => {
        let state: StoredProducer | undefined;
        const accepted = new Set<string>();
        for (const request of requests) {
          const decision = decideProducer(state, request);
          if (decision.kind !== 'accept') continue;
          const key = `${request.epoch}/${request.seq}`;
          expect(accepted.has(key)).toBe(false); // exactly once per (epoch, seq)
          if (state !== undefined) {
            // Epochs never go down; within an epoch seqs go up by one.
            expect(request.epoch).toBeGreaterThanOrEqual(state.epoch);
            if (request.epoch === state.epoch) expect(request.seq).toBe(state.lastSeq + 1);
            else expect(request.seq).toBe(0);
          } else {
            expect(request.seq).toBe(0);
          }
          accepted.add(key);
          state = { epoch: request.epoch, lastSeq: request.seq };
        }
      }),
    );
  });

  test('a repeated request after acceptance is a duplicate, never a second accept', () => {
    fc.assert(
      fc.property(stored, small, small, (state, epoch, seq) => {
        if (decideProducer(state, { epoch, seq }).kind !== 'accept') return;
        expect(decideProducer({ epoch, lastSeq: seq }, { epoch, seq })).toEqual({ kind: 'duplicate', lastSeq: seq });
      }),
    );
  });
});

describe('isSameCloser', () => {
  test('only the exact producer request that closed the stream', () => {
    const closedBy: [string, number, number] = ['p', 2, 5];
    expect(isSameCloser(closedBy, { producerId: 'p', epoch: 2, seq: 5 })).toBe(true);
    expect(isSameCloser(closedBy, { producerId: 'q', epoch: 2, seq: 5 })).toBe(false);
    expect(isSameCloser(closedBy, { producerId: 'p', epoch: 3, seq: 5 })).toBe(false);
    expect(isSameCloser(closedBy, { producerId: 'p', epoch: 2, seq: 4 })).toBe(false);
    expect(isSameCloser(undefined, { producerId: 'p', epoch: 2, seq: 5 })).toBe(false);
    expect(isSameCloser(closedBy, undefined)).toBe(false);
  });
});
