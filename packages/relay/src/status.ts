/** `sluice-relay status` and `release` without a running relay: read the spool directory. */
import type { RelayStatus } from './options.js';
import { releaseHeld } from './release.js';
import { type DeliveryState, Spool } from './spool.js';

export type OfflineStatus = Pick<RelayStatus, 'spoolDir' | 'queue' | 'held' | 'dead'> & { running: false };

export async function spoolStatus(spoolDir: string): Promise<OfflineStatus> {
  const spool = new Spool(spoolDir);
  const queued = await spool.list('queue');
  let oldest = Number.POSITIVE_INFINITY;
  let deferred = 0;
  for (const id of queued) {
    try {
      const h = await spool.readHeader('queue', id);
      if (h.receivedAt < oldest) oldest = h.receivedAt;
      const state = await spool.readMeta<DeliveryState>('queue', id);
      if (state && state.attempts > 0) deferred++;
    } catch {
      // being removed
    }
  }
  const held = await spool.describeHeld(await spool.list('held'));
  return {
    running: false,
    spoolDir,
    queue: {
      depth: queued.length,
      inFlight: 0,
      deferred,
      oldestAgeSeconds: oldest === Number.POSITIVE_INFINITY ? null : Math.round((Date.now() - oldest) / 1000),
    },
    held,
    dead: (await spool.list('dead')).length,
  };
}

/** Moves held messages back to queue/; a running relay picks them up at its next scan (5 s). */
export async function releaseFromSpool(spoolDir: string, ids: string[] | 'all'): Promise<string[]> {
  return (await releaseHeld(new Spool(spoolDir), ids)).map((r) => r.id);
}

export function formatAge(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

export function formatStatus(s: OfflineStatus | RelayStatus, source: string): string {
  const lines: string[] = [];
  lines.push(`sluice-relay ${s.running ? 'running' : 'status from the spool (relay not reachable)'} — ${source}`);
  if ('upstream' in s) lines.push(`upstream: ${s.upstream}   listening: ${s.listening.host}:${s.listening.port}   uptime: ${formatAge(s.uptimeSeconds)}`);
  if ('upstreams' in s && s.upstreams.length > 1) {
    for (const u of s.upstreams) {
      const health = u.healthy ? 'healthy' : `down (${u.failures} failure(s)${u.nextProbeAt ? `, next probe ${u.nextProbeAt}` : ''})`;
      lines.push(`  ${u.name}: ${u.upstream}  ${health}  routed ${u.routed}, moved away ${u.movedAway}, ${u.pool.connections} connection(s)`);
    }
  }
  lines.push(`spool: ${s.spoolDir}`);
  lines.push(`queue: ${s.queue.depth} message(s), ${s.queue.inFlight} in flight, ${s.queue.deferred} deferred; oldest ${formatAge(s.queue.oldestAgeSeconds)}`);
  if ('rates' in s) {
    lines.push(`rates (last minute): accepted ${s.rates.acceptedPerMinute}/min, delivered ${s.rates.deliveredPerMinute}/min`);
    const c = s.counters;
    lines.push(
      `since start: accepted ${c.accepted}, delivered ${c.delivered}, deferred ${c.deferred}, bounced ${c.bounced}, dead-lettered ${c.dead_lettered}, held ${c.held}, expired ${c.expired}`,
    );
  }
  lines.push(`held: ${s.held.length} (unknown outcome upstream: may or may not have been delivered)`);
  for (const h of s.held) lines.push(`  ${h.id}  <${h.from}> -> ${h.to.map((t) => `<${t}>`).join(', ')}  held ${h.heldAt}  ${h.reason}`);
  if (s.held.length) lines.push('  release (deliver again, a duplicate is possible): sluice-relay release <id>… | --all; or delete the files in held/');
  lines.push(`dead letters: ${s.dead}`);
  return `${lines.join('\n')}\n`;
}
