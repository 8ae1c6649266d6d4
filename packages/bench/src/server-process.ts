/**
 * The mock server in its own process, so that client and server never share an event loop.
 * Started by the bench with the server options as JSON in argv[2]; talks over the IPC channel.
 */
import { startMockServer } from '@sluice/mock-server';

const options = JSON.parse(process.argv[2] ?? '{}');
const server = await startMockServer({ record: false, ...options });
/** The server's CPU since the last 'clear' (what one sender cost it: TLS handshakes, parsing). */
let cpu0 = process.cpuUsage();
process.send?.({ type: 'ready', host: server.host, port: server.port, ca: server.ca });
process.on('message', async (msg: { type: string }) => {
  if (msg.type === 'count') {
    const cpu = process.cpuUsage(cpu0);
    process.send?.({ type: 'count', count: server.inbox.messages.length, connections: server.connections.length, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
  }
  if (msg.type === 'clear') {
    server.clear();
    cpu0 = process.cpuUsage();
    process.send?.({ type: 'cleared' });
  }
  if (msg.type === 'close') {
    await server.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
