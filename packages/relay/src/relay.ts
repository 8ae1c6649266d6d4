/**
 * startRelay: puts the parts together. The listener accepts into the spool, the queue schedules,
 * delivery forwards through the upstream pool, the HTTP port reports and releases; stop() undoes
 * them in order.
 */
import { ensureSpoolToken, spoolTokenFile } from './config.js';
import { Delivery } from './delivery.js';
import { type ControlServer, startControlServer } from './http.js';
import { startListener } from './listener.js';
import { silentLogger } from './log.js';
import { isLoopbackAddress } from './loopback.js';
import { Metrics } from './metrics.js';
import { type Relay, type RelayOptions, type RelayStatus, resolveSettings } from './options.js';
import { Queue } from './queue.js';
import { listQueue } from './queue-list.js';
import { releaseHeld } from './release.js';
import { Router } from './router.js';
import { Spool } from './spool.js';

export type { PermanentFailureAction, Relay, RelayOptions, RelayStatus, UpstreamOptions } from './options.js';
export { upstreamPoolOptions } from './upstream.js';

/** Bytes of message content held in memory for attempts at once. */
const MAX_IN_FLIGHT_BYTES = 256 * 1024 * 1024;

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const log = options.logger ?? silentLogger;
  const s = await resolveSettings(options);
  const spool = new Spool(s.spoolDir);
  const { removedTmp } = await spool.init();
  if (removedTmp > 0) log.info('removed unacknowledged partial messages from tmp/', { count: removedTmp });
  const token = s.http ? (s.http.token ?? (await ensureSpoolToken(s.spoolDir))) : null;

  const metrics = new Metrics();
  const startedAt = Date.now();
  const router = new Router({
    upstreams: s.upstreams,
    routes: s.routes,
    hostname: s.hostname,
    retryMin: s.retryMin,
    retryMax: s.retryMax,
    log,
    onFailover: () => metrics.inc('failovers'),
  });
  const upstream = router.list[0];
  const capacity = router.list.reduce((n, u) => n + u.maxConnections * u.maxMessagesPerConnection, 0);
  const queue: Queue = new Queue({
    spool,
    log,
    maxInFlight: s.maxInFlight ?? Math.max(100, capacity),
    maxInFlightBytes: MAX_IN_FLIGHT_BYTES,
    tickInterval: Math.min(1000, s.retryMin),
    scanInterval: s.scanInterval,
    localRetryDelay: s.retryMin,
    deliver: (entry): Promise<void> => delivery.deliver(entry), // called from start() on, once delivery exists
  });
  const delivery: Delivery = new Delivery({
    spool,
    queue,
    router,
    metrics,
    log,
    hostname: s.hostname,
    maxAge: s.maxAge,
    retryMin: s.retryMin,
    retryMax: s.retryMax,
    onPermanentFailure: s.onPermanentFailure,
    delayWarnings: s.delayWarnings,
  });

  // Replay the spool.
  const queued = await spool.list('queue');
  for (const id of queued) await queue.load(id);
  const heldAtStart = (await spool.list('held')).length;
  metrics.setHeldGauge(heldAtStart);
  queue.start();

  const release = async (ids?: string[]): Promise<string[]> => {
    const released = await releaseHeld(spool, ids && ids.length > 0 ? ids : 'all');
    for (const r of released) {
      metrics.inc('released');
      log.info('released from held/ back into the queue', { id: r.id });
      if (!queue.stopping && !queue.has(r.id)) queue.add(r.id, r.receivedAt, r.state);
    }
    queue.pump();
    metrics.setHeldGauge((await spool.list('held')).length);
    return released.map((r) => r.id);
  };

  const status = async (): Promise<RelayStatus> => {
    const heldIds = await spool.list('held');
    metrics.setHeldGauge(heldIds.length);
    const oldest = queue.oldestAge();
    return {
      running: !queue.stopping,
      listening: { host: s.host, port: listener.port },
      upstream: upstream.describe,
      upstreams: router.describe(),
      spoolDir: s.spoolDir,
      queue: { depth: queue.entries.size, inFlight: queue.inFlight, deferred: queue.deferred(), oldestAgeSeconds: oldest === null ? null : Math.round(oldest) },
      held: await spool.describeHeld(heldIds.slice(0, 1000)),
      dead: (await spool.list('dead')).length,
      counters: metrics.counterValues(),
      rates: metrics.rates(),
      pool: { ...router.primaryStats() },
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
  };
  metrics.attach(
    { depth: () => queue.entries.size, inFlight: () => queue.inFlight, oldestAge: () => queue.oldestAge() ?? 0, connections: () => router.connections() },
    router.group.names.map((name) => ({ name, pool: router.group.pool(name)! })),
  );
  const renderMetrics = () => metrics.render();

  const closeUpstream = async (why: string) => {
    await queue.stop(0);
    await router.close().catch((err) => log.warn(`upstream close failed ${why}`, { error: (err as Error).message }));
  };
  let listener: Awaited<ReturnType<typeof startListener>>;
  try {
    listener = await startListener(s, {
      spool,
      metrics,
      log,
      accepting: () => !queue.stopping,
      accepted(id, receivedAt) {
        if (!queue.stopping && !queue.has(id)) queue.add(id, receivedAt);
        queue.pump();
      },
    });
  } catch (err) {
    await closeUpstream('after the listener failed to start');
    throw err;
  }

  let control: ControlServer | null = null;
  if (s.http && token) {
    try {
      control = await startControlServer(
        {
          host: s.http.address,
          port: s.http.port,
          token,
          allowedHosts: (s.http.allowedHosts ?? []).map((h) => h.toLowerCase()),
          public: !isLoopbackAddress(s.http.address),
        },
        {
          status,
          queue: () => listQueue(spool, queue.entries),
          metrics: renderMetrics,
          health: () => ({ status: queue.stopping ? 'stopping' : 'ok', queue: queue.entries.size, inFlight: queue.inFlight }),
          release: (ids) => release(ids === 'all' ? undefined : ids),
          flush: () => queue.flush(),
          log,
        },
      );
    } catch (err) {
      await listener.close();
      await closeUpstream('after the HTTP port failed to start');
      throw err;
    }
  }

  log.info('sluice-relay started', {
    listen: `${s.host}:${listener.port}`,
    upstream: upstream.describe,
    ...(router.list.length > 1 ? { upstreams: router.list.map((u) => `${u.name}=${u.describe}`), routes: s.routes ?? {} } : {}),
    ...(s.delayWarnings.length ? { delayWarningSeconds: s.delayWarnings.map((a) => Math.round(a / 1000)) } : {}),
    trustedNetworks: s.trusted.map(([a, bits]) => `${a.toString()}/${bits}`),
    ehloName: router.ehloName,
    ...(new Set(router.list.map((u) => u.ehloName)).size > 1 ? { ehloNames: Object.fromEntries(router.list.map((u) => [u.name, u.ehloName])) } : {}),
    spool: s.spoolDir,
    replayed: queued.length,
    held: heldAtStart,
    http: control && s.http ? `${s.http.host}:${control.port}` : null,
    // Where the token comes from, never the token.
    httpToken: s.http ? (s.http.token !== undefined ? 'configured' : spoolTokenFile(s.spoolDir)) : null,
    maxConnections: upstream.maxConnections,
    maxMessagesPerConnection: upstream.maxMessagesPerConnection,
    maxAgeSeconds: Math.round(s.maxAge / 1000),
    onPermanentFailure: s.onPermanentFailure,
    tls: !!s.tls,
    auth: s.users ? (s.requireAuth ? 'required' : 'required beyond loopback') : 'off',
    limits: { maxClients: s.maxClients, maxClientsPerAddress: s.maxClientsPerAddress, sessionTimeout: s.sessionTimeout, commandTimeout: s.commandTimeout },
  });

  let stopPromise: Promise<void> | null = null;
  const stop = () => {
    stopPromise ??= (async () => {
      log.info('stopping: no new mail accepted, finishing messages on the wire', { inFlight: queue.inFlight, queue: queue.entries.size });
      const closed = listener.close();
      const settled = await queue.stop(s.shutdownTimeout); // aborts what waits in the pool: it stays spooled
      if (!settled) {
        log.warn('shutdown timeout: closing upstream connections now', { inFlight: queue.inFlight });
        router.destroy();
        await queue.settled(2000);
      } else {
        const timedOut = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
        const result = await Promise.race([router.close().then(() => 'closed' as const), timedOut]).catch((err) => {
          log.warn('upstream close failed', { error: (err as Error).message });
          return 'failed' as const;
        });
        if (result === 'timeout') log.warn('upstream QUIT took over 5 s; closing the connections', {});
        router.destroy();
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      await control?.close();
      await spool.close();
      metrics.dispose();
      log.info('stopped', { spooled: queue.entries.size });
    })();
    return stopPromise;
  };

  return {
    host: s.host,
    port: listener.port,
    httpPort: control?.port ?? null,
    spoolDir: s.spoolDir,
    status,
    metrics: renderMetrics,
    release,
    flush: () => queue.flush(),
    idle: (timeoutMs = 30_000) => queue.idle(timeoutMs),
    stop,
  };
}
