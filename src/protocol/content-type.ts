/**
 * Content types (PROTOCOL.md §9): comparison by media type, JSON mode, SSE text vs base64.
 */

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The media type without parameters, lower-cased: `Application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** True when two content types name the same media type. */
export function sameMediaType(a: string, b: string): boolean {
  return mediaType(a) === mediaType(b);
}

/** True for streams in JSON mode (§9.1). */
export function isJsonContentType(contentType: string): boolean {
  return mediaType(contentType) === 'application/json';
}

/** True when SSE data events carry UTF-8 text; otherwise they are base64 (§5.8). */
export function isSseTextContentType(contentType: string): boolean {
  const type = mediaType(contentType);
  return type.startsWith('text/') || type === 'application/json';
}

/** True when the header looks like `type/subtype[; params]`. */
export function isValidContentType(contentType: string): boolean {
  return /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+$/.test(mediaType(contentType));
}
