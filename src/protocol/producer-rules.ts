/**
 * The idempotent-producer rules as a pure decision (PROTOCOL.md §5.2.1 "Idempotent Producers",
 * "Validation Logic"): given what the server holds for `(stream, Producer-Id)` and the request's
 * `Producer-Epoch` / `Producer-Seq`, say whether the append is accepted, an idempotent duplicate,
 * fenced as a stale epoch, or out of sequence. No I/O, no waiting and no errors: the caller (the
 * stream registry) waits on a gap and turns the other outcomes into the protocol's errors.
 */

/** What the server holds for one producer of one stream. */
export interface StoredProducer {
  /** Highest epoch accepted (≥ 0). */
  epoch: number;
  /** Highest Producer-Seq accepted in `epoch` (≥ 0). */
  lastSeq: number;
}

/** The producer headers of a request (the Producer-Id is the key of the stored state). */
export interface ProducerRequest {
  epoch: number;
  seq: number;
}

export type ProducerDecision =
  /** New data: apply it and store `(epoch, seq)`. */
  | { kind: 'accept' }
  /** A retry of an accepted request: 204 with the highest seq accepted (`lastSeq`), nothing written. */
  | { kind: 'duplicate'; lastSeq: number }
  /** The epoch is older than the stored one (zombie fencing): 403 with the current epoch. */
  | { kind: 'stale-epoch'; currentEpoch: number }
  /** Ahead of the next expected seq: 409 with expected and received seq (after a short wait, §5.2.1 concurrency). */
  | { kind: 'sequence-gap'; expectedSeq: number; receivedSeq: number }
  /** A higher epoch than the stored one must start at seq 0: 400. */
  | { kind: 'new-epoch-not-at-zero' };

/**
 * Decides an idempotent producer's request against its stored state (undefined: the producer never
 * appended to this stream). A producer with no state is treated as below every epoch, so its first
 * request must have seq 0; a request with a higher seq is a gap (expected 0) rather than a 400, so a
 * pipelined first batch overtaken by its successor can still wait for it.
 */
export function decideProducer(stored: StoredProducer | undefined, request: ProducerRequest): ProducerDecision {
  const { epoch, seq } = request;
  if (stored === undefined) {
    return seq === 0 ? { kind: 'accept' } : { kind: 'sequence-gap', expectedSeq: 0, receivedSeq: seq };
  }
  if (epoch < stored.epoch) return { kind: 'stale-epoch', currentEpoch: stored.epoch };
  if (epoch > stored.epoch) return seq === 0 ? { kind: 'accept' } : { kind: 'new-epoch-not-at-zero' };
  if (seq <= stored.lastSeq) return { kind: 'duplicate', lastSeq: stored.lastSeq };
  if (seq !== stored.lastSeq + 1) return { kind: 'sequence-gap', expectedSeq: stored.lastSeq + 1, receivedSeq: seq };
  return { kind: 'accept' };
}

/**
 * True when a request to a closed stream repeats the producer request that closed it
 * (`closedBy` = `[producerId, epoch, seq]`): an idempotent retry of the final append.
 */
export function isSameCloser(
  closedBy: readonly [string, number, number] | undefined,
  request: { producerId: string; epoch: number; seq: number } | undefined,
): boolean {
  return request !== undefined && closedBy !== undefined && closedBy[0] === request.producerId && closedBy[1] === request.epoch && closedBy[2] === request.seq;
}
