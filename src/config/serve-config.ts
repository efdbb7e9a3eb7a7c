/**
 * Settings of `cairn serve`. Every field has a flag and a `CAIRN_*` environment variable twin
 * (src/cli/serve-command.ts).
 */
import type { WalDurability } from '../wal/index.ts';

export interface ServeConfig {
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Directory of the WAL and checkpoints (and, with tiering, the embedded object store). */
  dataDir: string;
  /** `wal`: acknowledge after fdatasync; `memory`: no fsync (development only). */
  durability: WalDurability;
  longPollTimeoutMs: number;
  maxAppendBytes: number;
  maxChunkBytes: number;
  sseReconnectMs: number;
  liveReadersMax: number;
  checkpointWalBytes: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}
