/**
 * Request URLs as logs show them: a capability URL's `signature` is a bearer secret (the Proxy
 * Protocol v0.1 §12.2: avoid logging pre-signed URLs), so its value is replaced.
 */
export function loggableUrl(url: string): string {
  return url.includes('signature=') ? url.replace(/([?&]signature=)[^&#]*/g, '$1<redacted>') : url;
}
