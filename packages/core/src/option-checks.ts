import { ErrorCodes, SluiceError } from './errors.js';

/** The small checks every option goes through: each failure is EOPTIONS naming the option and what it accepts. */

export function bad(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
}

export const show = (value: unknown) => (typeof value === 'function' ? 'a function' : (JSON.stringify(value) ?? String(value)));
export const list = (values: readonly string[]) => values.map((v) => JSON.stringify(v)).join(', ');

export function positiveInt(value: unknown, name: string): number {
  if (!(typeof value === 'number' && Number.isInteger(value) && value > 0)) throw bad(`${name} must be a positive integer (got ${show(value)})`);
  return value;
}

export function nonNegative(value: unknown, name: string, integer = false): number {
  const okNumber = typeof value === 'number' && Number.isFinite(value) && value >= 0 && (!integer || Number.isInteger(value));
  if (!okNumber) throw bad(`${name} must be a non-negative ${integer ? 'integer' : 'number'} (got ${show(value)})`);
  return value as number;
}

export function boolean(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw bad(`${name} must be true or false (got ${show(value)})`);
}

/** A plain object whose keys are all in `keys`. */
export function record(value: unknown, name: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`${name} must be an object with ${list(keys)} (got ${show(value)})`);
  for (const key of Object.keys(value)) if (!keys.includes(key)) throw bad(`Unknown option ${name}.${key}: ${name} takes ${list(keys)}`);
  return value as Record<string, unknown>;
}
