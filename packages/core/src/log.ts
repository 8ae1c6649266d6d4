/**
 * Where sluice logs, and in which argument order. pino and bunyan take `(fields, message)`; console,
 * winston, Nest's Logger and sluice's own earlier loggers take `(message, meta)`. sluice detects pino and
 * bunyan by their shape (a `child()` method and pino's `levels.values` or bunyan's `levels()`) and calls
 * them fields first, so that the connection id is a field of the line and not dropped as a format
 * argument; every other logger is called `(message, meta)`, as before.
 */
import type { Logger } from './options.js';

export type LogLevel = keyof Logger;

const fieldsFirst = new WeakMap<object, boolean>();

/** Whether `logger` is pino or bunyan (`(fields, message)`), by shape; the answer is kept per logger. */
export function takesFieldsFirst(logger: object): boolean {
  let known = fieldsFirst.get(logger);
  if (known === undefined) {
    const l = logger as { child?: unknown; levels?: unknown; streams?: unknown };
    const levels = l.levels as { values?: unknown } | undefined;
    const pino = typeof levels === 'object' && levels !== null && typeof levels.values === 'object';
    const bunyan = typeof l.levels === 'function' && Array.isArray(l.streams);
    known = typeof l.child === 'function' && (pino || bunyan);
    fieldsFirst.set(logger, known);
  }
  return known;
}

/** Whether `logger` logs at `level` at all (so that a line is not built for nobody). */
export function logs(logger: Logger | undefined, level: LogLevel): logger is Logger {
  return typeof logger?.[level] === 'function';
}

/** Writes one line in the order `logger` takes. `fields` is never a secret: callers redact before. */
export function log(logger: Logger | undefined, level: LogLevel, fields: Record<string, unknown>, message: string): void {
  const fn = logger?.[level] as ((a: unknown, b?: unknown) => void) | undefined;
  if (typeof fn !== 'function') return;
  if (takesFieldsFirst(logger!)) fn.call(logger, fields, message);
  else fn.call(logger, message, fields);
}
