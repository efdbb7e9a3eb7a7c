/**
 * The TLS certificate and key of `--tls-cert-file` / `--tls-key-file` (README "TLS and HTTP/2"):
 * read and checked at start, then re-read every `TLS_RELOAD_CHECK_INTERVAL_MS` and, when either
 * file changed, installed for new connections with `server.setSecureContext` without a restart
 * (connections already open keep the certificate they were made with). Polling the contents
 * rather than watching the files catches every way of replacing them (in place, by rename, by a
 * Kubernetes secret's symlink swap) at the cost of reading two small files every few seconds.
 * A pair that does not load (unreadable, not PEM, key not matching the certificate) is logged
 * once and the certificate in use is kept.
 */
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.ts';
import { TLS_RELOAD_CHECK_INTERVAL_MS } from '../config/limits.ts';
import type { ServerTransport } from './node-server.ts';

/** A certificate chain and its private key, PEM bytes as read from the files. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * Reads both files and checks that they load together (the key matches the certificate).
 * @throws Error with a message naming the files and OpenSSL's reason.
 */
export async function loadTlsPair(files: TlsFiles): Promise<TlsPair> {
  const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    throw new Error(`${files.certFile} and ${files.keyFile} do not load as a certificate and its key: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { cert, key };
}

/**
 * The transport of the settings (README "TLS and HTTP/2"): TLS when both files are given (read
 * and checked now), else h2c with `http2Cleartext`, else cleartext HTTP/1.1. `tls` holds what the
 * reloader needs. @throws Error as `loadTlsPair`.
 */
export async function openTransport(settings: {
  tlsCertFile?: string;
  tlsKeyFile?: string;
  http2Cleartext?: boolean;
}): Promise<{ transport: ServerTransport; tls?: { files: TlsFiles; pair: TlsPair } }> {
  const { tlsCertFile: certFile, tlsKeyFile: keyFile } = settings;
  if (certFile === undefined || keyFile === undefined) return { transport: { kind: settings.http2Cleartext === true ? 'h2c' : 'http1' } };
  const files = { certFile, keyFile };
  const pair = await loadTlsPair(files);
  return { transport: { kind: 'tls', ...pair }, tls: { files, pair } };
}

/** The part of a TLS server the reloader uses. */
export interface SecureContextTarget {
  setSecureContext(options: tls.SecureContextOptions): void;
}

export interface TlsReloaderOptions {
  files: TlsFiles;
  /** The pair the server started with. */
  current: TlsPair;
  server: SecureContextTarget;
  clock: Clock;
  logger: Logger;
  /** How often the files are re-read, in ms; default TLS_RELOAD_CHECK_INTERVAL_MS. */
  checkIntervalMs?: number;
}

export class TlsReloader {
  readonly #options: TlsReloaderOptions;
  #current: TlsPair;
  /** What was last refused (contents or read error), so it is logged once, not every check. */
  #lastRefusal: string | undefined;
  #checking = false;
  #timer: Timer | undefined;

  constructor(options: TlsReloaderOptions) {
    this.#options = options;
    this.#current = options.current;
  }

  /** Starts the periodic check; it does not keep the process alive. */
  start(): void {
    this.#timer ??= this.#options.clock
      .setInterval(() => void this.check(), this.#options.checkIntervalMs ?? TLS_RELOAD_CHECK_INTERVAL_MS)
      .unref();
  }

  /**
   * Re-reads the files once; installs them if they changed and load. Never throws. Resolves to
   * true when a new pair was installed.
   */
  async check(): Promise<boolean> {
    if (this.#checking) return false;
    this.#checking = true;
    const { files, logger, server } = this.#options;
    try {
      let cert: Buffer;
      let key: Buffer;
      try {
        [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
      } catch (error) {
        this.#refuse(`read:${(error as Error).message}`, error, 'TLS certificate or key file unreadable; keeping the certificate in use');
        return false;
      }
      if (cert.equals(this.#current.cert) && key.equals(this.#current.key)) return false;
      try {
        server.setSecureContext({ cert, key });
      } catch (error) {
        const contents = `pair:${cert.toString('base64')}:${key.length}`;
        this.#refuse(contents, error, 'TLS certificate and key do not load; keeping the certificate in use');
        return false;
      }
      this.#current = { cert, key };
      this.#lastRefusal = undefined;
      logger.info({ certFile: files.certFile }, 'TLS certificate reloaded');
      return true;
    } finally {
      this.#checking = false;
    }
  }

  /** Stops the periodic check. */
  close(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #refuse(what: string, error: unknown, message: string): void {
    if (this.#lastRefusal === what) return;
    this.#lastRefusal = what;
    const { certFile, keyFile } = this.#options.files;
    this.#options.logger.warn({ err: error, certFile, keyFile }, message);
  }
}
