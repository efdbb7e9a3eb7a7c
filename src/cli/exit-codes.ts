/**
 * Exit codes of `cairn`, one per kind of failure a script wants to tell apart, and the
 * error that carries one. The table is in README.md ("Command line").
 */

export const EXIT_OK = 0;
/** Anything not below: a 400 (bad request: invalid JSON, bad header), 413, a 5xx, a local I/O error. */
export const EXIT_ERROR = 1;
/** Usage: unknown flag, missing or invalid argument, invalid `cairn serve` configuration. */
export const EXIT_USAGE = 2;
/** 404 Not Found, or 410 Gone (soft-deleted stream, offset before the retained data). */
export const EXIT_NOT_FOUND = 3;
/** 409 Conflict: the stream is closed, exists with another configuration, content type or sequence mismatch. */
export const EXIT_CONFLICT = 4;
/** 401 Unauthorized or 403 Forbidden (including a producer's stale epoch). */
export const EXIT_UNAUTHORISED = 5;
/** The server could not be reached, or answered 429/502/503/504: try again later. */
export const EXIT_UNAVAILABLE = 6;

/** The exit code for an HTTP error status. */
export function exitCodeForStatus(status: number): number {
  if (status === 404 || status === 410) return EXIT_NOT_FOUND;
  if (status === 409) return EXIT_CONFLICT;
  if (status === 401 || status === 403) return EXIT_UNAUTHORISED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return EXIT_UNAVAILABLE;
  return EXIT_ERROR;
}

/** A client command failed; `message` is the one line printed after `cairn: `. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
