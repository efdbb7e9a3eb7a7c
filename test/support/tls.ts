/**
 * A throwaway self-signed certificate for 127.0.0.1 and localhost (TLS and HTTP/2 tests), made
 * with the machine's `openssl` (node:crypto cannot issue X.509 certificates), and HTTP clients
 * that trust it.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** base64 SHA-256 of the certificate's public key (SPKI), as Chromium's --ignore-certificate-errors-spki-list takes it. */
  spkiSha256: string;
  /** The certificate's serial number (hex), to tell two certificates apart in a test. */
  serialNumber: string;
}

/** Writes a new P-256 key and self-signed certificate into `dir` (a fresh temporary directory when absent). */
export async function selfSignedCertificate(dir?: string, commonName = 'cairn-test'): Promise<TestCertificate & { dir: string; remove(): Promise<void> }> {
  const target = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'cairn-tls-')));
  const certFile = path.join(target, 'cert.pem');
  const keyFile = path.join(target, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', keyFile, '-out', certFile,
    ],
    { stdio: 'pipe' },
  );
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  return { ...describeCertificate(cert), certFile, keyFile, key, dir: target, remove: () => rm(target, { recursive: true, force: true }) };
}

/** The SPKI hash and serial number of a PEM certificate. */
export function describeCertificate(cert: Buffer): { cert: Buffer; spkiSha256: string; serialNumber: string } {
  const x509 = new X509Certificate(cert);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return { cert, spkiSha256: createHash('sha256').update(spki).digest('base64'), serialNumber: x509.serialNumber };
}

/** An undici dispatcher for `fetch` that trusts `cert` and offers HTTP/2 by ALPN (HTTP/1.1 otherwise). */
export function trustingAgent(cert: Buffer, options: { allowH2?: boolean } = {}): Agent {
  return new Agent({ allowH2: options.allowH2 ?? true, connect: { ca: cert } });
}
