/**
 * The mock SMTP server in its own process (never sharing an event loop with the senders), for the
 * cluster bench and the soak. It reports when `target` messages have arrived, and the peak of
 * concurrent connections, sampled every millisecond from `openConnections` (every connection lives
 * at least 1.5 RTT at the simulated latency, refused ones included, so no overlap is missed).
 */
import { startMockServer } from '@sluice/mock-server';

const options = JSON.parse(process.argv[2] ?? '{}');
let target = Number.POSITIVE_INFINITY;
let peak = 0;
const server = await startMockServer({
  record: false,
  inboxLimit: 1,
  ...options,
  onMessage: (m) => {
    const rcpt = m.to[0] ?? '';
    seen.set(rcpt, (seen.get(rcpt) ?? 0) + 1);
    if (++received === target) process.send?.({ type: 'reached', at: performance.timeOrigin + performance.now() });
  },
});
let received = 0;
let cpu0 = process.cpuUsage();
/** First recipient → times received: the soak gives every message its own, to find duplicates. */
const seen = new Map<string, number>();
setInterval(() => {
  peak = Math.max(peak, server.openConnections);
}, 1).unref();
process.send?.({ type: 'ready', host: server.host, port: server.port });
process.on('message', async (msg: { type: string; target?: number }) => {
  if (msg.type === 'target') {
    target = msg.target!;
    cpu0 = process.cpuUsage();
    if (received >= target) process.send?.({ type: 'reached', at: performance.timeOrigin + performance.now() });
  }
  if (msg.type === 'stats') {
    // Connections the server refused (greeted with the 421 limit reply, no command read).
    const refused = server.connections.filter((c) => c.commands === 0 && c.closed).length;
    const duplicates = [...seen].filter(([, n]) => n > 1).map(([rcpt, n]) => ({ rcpt, n }));
    const cpu = process.cpuUsage(cpu0);
    process.send?.({
      type: 'stats',
      received,
      distinct: seen.size,
      duplicates,
      peak,
      connections: server.connections.length,
      refused,
      cpuMicros: cpu.user + cpu.system,
    });
  }
  if (msg.type === 'close') {
    await server.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
