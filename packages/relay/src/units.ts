/** Durations ("5d", "90s", "250ms", plain numbers are seconds) and sizes ("25M", "10240000"). */
import { RelayConfigError } from './config.js';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/i;
const FACTOR: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds. A bare number means seconds (like Postfix's time units default). */
export function parseDuration(value: string | number, name = 'duration'): number {
  if (typeof value === 'number') {
    if (!(Number.isFinite(value) && value >= 0)) throw new RelayConfigError(`${name} must be a non-negative number of milliseconds`);
    return value;
  }
  const m = DURATION.exec(value.trim());
  if (!m) throw new RelayConfigError(`${name}: cannot read ${JSON.stringify(value)} as a duration (e.g. 5d, 12h, 30m, 90s, 500ms)`);
  return Math.round(Number(m[1]) * FACTOR[(m[2] ?? 's').toLowerCase()]);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib|g|gb|gib)?$/i;

/** Bytes. K/M/G are binary multiples (KiB, MiB, GiB). */
export function parseSize(value: string | number, name = 'size'): number {
  if (typeof value === 'number') {
    if (!(Number.isInteger(value) && value > 0)) throw new RelayConfigError(`${name} must be a positive integer (bytes)`);
    return value;
  }
  const m = SIZE.exec(value.trim());
  if (!m) throw new RelayConfigError(`${name}: cannot read ${JSON.stringify(value)} as a size (e.g. 25M, 512K, 10240000)`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
