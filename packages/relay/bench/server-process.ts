/** The upstream mock server in its own process (so that it never shares an event loop with the relay or the senders). */
import { startMockServer } from '@sluice/mock-server';

const options = JSON.parse(process.argv[2] ?? '{}');
const server = await startMockServer({ record: false, ...options });
process.send?.({ type: 'ready', host: server.host, port: server.port });
process.on('message', async (msg: { type: string }) => {
  // connections: opened since the last clear.
  if (msg.type === 'count') process.send?.({ type: 'count', count: server.inbox.messages.length, connections: server.connections.length });
  if (msg.type === 'clear') {
    server.clear();
    process.send?.({ type: 'cleared' });
  }
  if (msg.type === 'close') {
    await server.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
