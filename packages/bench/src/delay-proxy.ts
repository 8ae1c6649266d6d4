/**
 * A TCP proxy in its own process that delays every byte by RTT/2 in each direction: the mock server's
 * latency model, put in front of a server that has none (Postfix). Config as JSON in argv[2]
 * (`{ host, port, rtt }`); sends `{ type: 'ready', port }` over IPC.
 */
import net from 'node:net';

const { host, port, rtt } = JSON.parse(process.argv[2] ?? '{}') as { host: string; port: number; rtt: number };
const half = rtt / 2;

/** Timers of one duration fire in the order they were set, so chunks keep their order. */
function delayed(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk) => {
    if (half <= 0) to.write(chunk);
    else setTimeout(() => to.writable && to.write(chunk), half);
  });
  from.on('end', () => setTimeout(() => to.end(), half));
  from.on('error', () => to.destroy());
  from.on('close', () => setTimeout(() => to.destroy(), half + 1));
}

const server = net.createServer((client) => {
  client.setNoDelay(true);
  const upstream = net.connect({ host, port });
  upstream.setNoDelay(true);
  delayed(client, upstream);
  delayed(upstream, client);
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as net.AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
