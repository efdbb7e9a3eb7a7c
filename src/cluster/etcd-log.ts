/** The logging a coordinator needs: a subset of pino's logger, so the server passes its own. */
export interface ClusterLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Logs nothing (the default). */
export const silentClusterLog: ClusterLog = {
  info: () => undefined,
  warn: () => undefined,
};
