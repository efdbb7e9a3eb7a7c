/** The structured logger the WAL writes to: the subset of pino it uses. */
export interface WalLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Discards everything; the default when no logger is given. */
export const silentWalLogger: WalLogger = { info() {}, warn() {} };
