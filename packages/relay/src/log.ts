/** Structured logs: one JSON object per line. Secrets never reach this module: callers pass redacted values. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface RelayLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** JSON lines to a writable (stdout by default). */
export function jsonLogger(options: { level?: LogLevel; write?: (line: string) => void } = {}): RelayLogger {
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const log = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export const silentLogger: RelayLogger = { debug() {}, info() {}, warn() {}, error() {} };
