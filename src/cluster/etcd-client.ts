/**
 * Connecting to etcd (docs/cluster.md "Why etcd3"): the npm `etcd3` client speaks etcd's gRPC
 * API (leases with streamed keep-alives, watches, transactions, elections) and fails over
 * between the endpoints given. Every unary request gets a deadline so a member without quorum
 * cannot hold a caller for ever.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { Clock } from '../clock.ts';
import { CLUSTER_ETCD_CALL_TIMEOUT_MS } from '../config/limits.ts';

/** How to reach etcd (the `--cluster-etcd-*` settings). */
export interface EtcdConnectionOptions {
  /** Client URLs of the etcd members, e.g. `['http://10.0.0.1:2379', …]` (https:// with TLS). */
  endpoints: readonly string[];
  /** PEM file of the CA that signed the etcd members' certificates (TLS). */
  caFile?: string | undefined;
  /** PEM client certificate (mutual TLS; with `keyFile`). */
  certFile?: string | undefined;
  /** PEM private key of `certFile`. */
  keyFile?: string | undefined;
  /** etcd user (password authentication; with `password`). */
  username?: string | undefined;
  password?: string | undefined;
}

/**
 * A client for `options`; it connects lazily (the first request).
 * @throws Error when a TLS file cannot be read, or only one of a pair (cert/key, user/password) is given.
 */
export function connectEtcd(options: EtcdConnectionOptions, clock: Clock): Etcd3 {
  if (options.endpoints.length === 0) throw new Error('no etcd endpoints given');
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) throw new Error('etcd client TLS needs both a certificate and a key file');
  if ((options.username === undefined) !== (options.password === undefined)) throw new Error('etcd authentication needs both a username and a password');
  const config: IOptions = {
    hosts: [...options.endpoints],
    dialTimeout: CLUSTER_ETCD_CALL_TIMEOUT_MS,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: clock.nowMs() + CLUSTER_ETCD_CALL_TIMEOUT_MS }),
  };
  if (options.caFile !== undefined || options.certFile !== undefined) {
    const read = (file: string, what: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (error) {
        throw new Error(`cannot read the etcd ${what} ${file}: ${(error as Error).message}`, { cause: error });
      }
    };
    // Without a CA file gRPC trusts the system roots: it takes a missing root certificate for
    // that, though etcd3's type asks for one.
    config.credentials = {
      rootCertificate: (options.caFile !== undefined ? read(options.caFile, 'CA file') : undefined) as Buffer,
      ...(options.certFile !== undefined && options.keyFile !== undefined ? { certChain: read(options.certFile, 'certificate file'), privateKey: read(options.keyFile, 'key file') } : {}),
    };
  }
  if (options.username !== undefined && options.password !== undefined) config.auth = { username: options.username, password: options.password };
  return new Etcd3(config);
}
