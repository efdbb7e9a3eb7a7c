/**
 * TlsReloader (src/http/tls-reload.ts) against a real TLS context target: a changed pair is
 * installed, an unchanged one is not, a key that does not match its certificate and an
 * unreadable file are refused once (logged once, not on every check) and the pair in use is
 * kept; the periodic check runs on the injected clock.
 */
import { copyFile, rm, writeFile } from 'node:fs/promises';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.ts';
import { loadTlsPair, TlsReloader, type TlsPair } from '../../src/http/tls-reload.ts';
import { selfSignedCertificate } from '../support/tls.ts';

type Certificate = Awaited<ReturnType<typeof selfSignedCertificate>>;

/** Builds a secure context the way `server.setSecureContext` does, and keeps the last pair installed. */
class ContextTarget {
  installed: TlsPair | undefined;
  setSecureContext(options: tls.SecureContextOptions): void {
    tls.createSecureContext(options);
    this.installed = { cert: options.cert as Buffer, key: options.key as Buffer };
  }
}

function capturedLogger() {
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  return { logger, lines };
}

describe('TlsReloader', () => {
  let served: Certificate;
  let other: Certificate;
  beforeAll(async () => {
    served = await selfSignedCertificate();
    other = await selfSignedCertificate();
  });
  afterAll(async () => {
    await served.remove();
    await other.remove();
  });

  it('loadTlsPair refuses a key that does not match the certificate', async () => {
    await expect(loadTlsPair({ certFile: served.certFile, keyFile: other.keyFile })).rejects.toThrow(/do not load/);
    await expect(loadTlsPair({ certFile: served.certFile, keyFile: served.keyFile })).resolves.toMatchObject({ cert: served.cert });
  });

  it('installs a changed pair, keeps the old one on a bad pair or unreadable file, and logs each refusal once', async () => {
    const files = { certFile: served.certFile, keyFile: served.keyFile };
    const target = new ContextTarget();
    const clock = manualClock();
    const { logger, lines } = capturedLogger();
    const reloader = new TlsReloader({ files, current: { cert: served.cert, key: served.key }, server: target, clock, logger, checkIntervalMs: 1000 });

    expect(await reloader.check()).toBe(false);
    expect(target.installed).toBeUndefined();

    // The other certificate with the served key: does not load; logged once over two checks.
    await copyFile(other.certFile, served.certFile);
    expect(await reloader.check()).toBe(false);
    expect(await reloader.check()).toBe(false);
    expect(target.installed).toBeUndefined();
    expect(lines.filter((line) => line.includes('do not load'))).toHaveLength(1);

    // A missing file: refused, logged once.
    await rm(served.keyFile);
    expect(await reloader.check()).toBe(false);
    expect(await reloader.check()).toBe(false);
    expect(lines.filter((line) => line.includes('unreadable'))).toHaveLength(1);

    // The matching key arrives: the new pair is installed, from the periodic check on the clock.
    await writeFile(served.keyFile, other.key);
    reloader.start();
    clock.advance(1000);
    await expect.poll(() => target.installed?.cert.equals(other.cert)).toBe(true);
    expect(lines.filter((line) => line.includes('TLS certificate reloaded'))).toHaveLength(1);
    reloader.close();
  });
});
