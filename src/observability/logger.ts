/**
 * The server's logger (README "Logs and request ids"): pino, as readable coloured lines when a
 * person is watching (stdout is a terminal) and as JSON lines otherwise, so log collectors and
 * `jq` get JSON and `npm start` gets something a person can read. `--log-format` forces either.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'auto' | 'pretty' | 'json';

/** The format actually used: `auto` is pretty on a terminal, JSON otherwise. */
export function effectiveLogFormat(format: LogFormat, stdoutIsTerminal: boolean): 'pretty' | 'json' {
  if (format === 'auto') return stdoutIsTerminal ? 'pretty' : 'json';
  return format;
}

/**
 * A logger at `level` writing to stdout in `format`. Pretty lines are formatted in this thread
 * (pino-pretty as a synchronous stream, no worker thread), so a crash never loses the last lines;
 * they show the time, level, message and the fields, without pid and hostname.
 */
export function createLogger(level: LevelWithSilent, format: LogFormat, stdoutIsTerminal: boolean): Logger {
  if (effectiveLogFormat(format, stdoutIsTerminal) === 'json') return pino({ level });
  const stream = pretty({ colorize: stdoutIsTerminal, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: 1 });
  return pino({ level }, stream);
}
