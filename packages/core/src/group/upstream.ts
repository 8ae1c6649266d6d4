import { ErrorCodes, SluiceError } from '../errors.js';
import { Pool } from '../pool/pool.js';
import { DEFAULT_PROBE_TIMEOUT, Health } from './health.js';
import type { HealthOptions, PoolGroupOptions, SharedOptions, UpstreamOptions } from './types.js';

/** One upstream as the group keeps it: its pool, its health, the group's messages on it, its counts. */
export interface Upstream<P = unknown> {
  readonly name: string;
  /** Its place in the list given (the order of preference without weights). */
  readonly index: number;
  readonly weight: number | null;
  readonly pool: Pool;
  readonly health: Health;
  /** The group's messages sent to this pool and not settled yet. */
  readonly pending: Set<P>;
  routed: number;
  movedAway: number;
  /** Messages the group withdrew from this pool's queue (the pool counts them failed, EABORT). */
  withdrawn: number;
  onDown: (error: SluiceError, retryIn: number) => void;
  onUp: () => void;
}

/** Where an upstream is belongs to each upstream, not to the options they share. */
const PER_UPSTREAM = ['host', 'port', 'preset', 'region', 'service', 'url'];
/** A message is composed once, in the group, whichever upstream sends it. */
const GROUP_ONLY = ['defaults', 'dkim', 'attachDataUrls'];

function bad(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
}

/** Checks what the group adds to the pools' options (each pool checks its own: unknown keys are an error there). */
export function checkGroupOptions(options: PoolGroupOptions): PoolGroupOptions {
  if (!options || typeof options !== 'object') throw bad('createPoolGroup() needs options: { upstreams: [...] }');
  const { upstreams } = options;
  if (!Array.isArray(upstreams) || upstreams.length === 0) throw bad('upstreams must be a non-empty array of { name, host, ... }');
  for (const key of PER_UPSTREAM) {
    if (key in options) throw bad(`${key} belongs in each upstream, not in the options the upstreams share`);
  }
  // Withdrawing a queued message to move it cannot tell one resent after an unknown outcome
  // (retryUnknown) from one never tried: failover keeps "unknown stays unknown" only without it.
  if (options.retryUnknown || upstreams.some((u) => u?.retryUnknown)) {
    throw bad('retryUnknown cannot be used in a pool group: a message with an unknown outcome could be moved to another upstream and delivered twice');
  }
  const names = new Set<string>();
  for (const u of upstreams) {
    if (!u || typeof u.name !== 'string' || u.name === '') throw bad('every upstream needs a name (a non-empty string)');
    if (names.has(u.name)) throw bad(`upstream names must be unique: ${JSON.stringify(u.name)} is given twice`);
    names.add(u.name);
    for (const key of GROUP_ONLY) {
      if (key in u) throw bad(`upstream ${u.name}: ${key} belongs to the group (a message is composed once, whichever upstream sends it)`);
    }
    if (u.weight !== undefined && !(typeof u.weight === 'number' && Number.isFinite(u.weight) && u.weight >= 0)) {
      throw bad(`upstream ${u.name}: weight must be a non-negative number, got ${JSON.stringify(u.weight)}`);
    }
  }
  const health = options.health ?? {};
  if (health.probeTimeout !== undefined && !(typeof health.probeTimeout === 'number' && health.probeTimeout > 0)) {
    throw bad(`health.probeTimeout must be a positive number of ms, got ${JSON.stringify(health.probeTimeout)}`);
  }
  for (const key of Object.keys(health)) {
    if (key !== 'backoff' && key !== 'probeTimeout') throw bad(`unknown health option ${JSON.stringify(key)} (backoff, probeTimeout)`);
  }
  return options;
}

/** One pool per upstream (the shared options under each upstream's own), each with its health. */
export function createUpstreams<P>(list: UpstreamOptions[], shared: SharedOptions, health: HealthOptions): Upstream<P>[] {
  const probeTimeout = health.probeTimeout ?? DEFAULT_PROBE_TIMEOUT;
  return list.map(({ name, weight, ehloName, ...own }, index) => {
    const pool = new Pool({ ...shared, ...own, ...(ehloName !== undefined ? { name: ehloName } : {}) });
    const upstream: Upstream<P> = {
      name,
      index,
      weight: weight ?? null,
      pool,
      health: new Health(health.backoff, {
        probe: () => pool.verify({ timeout: probeTimeout }),
        down: (error, retryIn) => upstream.onDown(error, retryIn),
        up: () => upstream.onUp(),
      }),
      pending: new Set(),
      routed: 0,
      movedAway: 0,
      withdrawn: 0,
      onDown: () => {},
      onUp: () => {},
    };
    return upstream;
  });
}
