/**
 * A TCP proxy in its own process that delays every byte by RTT/2 in each direction: the mock server's
 * latency model, put in front of a server that has none (Postfix). Config as JSON in argv[2]
 * (`{ host, port, rtt }`); sends `{ type: 'ready', port }` over IPC.
 */
import net from 'node:net';

const { host, port, rtt } = JSON.parse(process.argv[2] ?? '{}') as { host: string; port: number; rtt: number };
const half = rtt / 2;

/**
 * Everything that comes from `from` reaches `to` RTT/2 later, in order: the bytes, then the end of the
 * stream, then a reset. All of them go through timers of the one duration, which fire in the order
 * they were set. (A close once timed at RTT/2 + 1 ms could fire before the bytes timed at RTT/2 just
 * before it: a server's last replies and its 221, sent just before it closed, were then dropped, and the
 * client saw the connection lost with a message unanswered.)
 */
function delayed(from: net.Socket, to: net.Socket): void {
  const later = (step: () => void) => (half <= 0 ? step() : setTimeout(step, half));
  from.on('data', (chunk) => later(() => to.writable && to.write(chunk)));
  from.on('end', () => later(() => to.end()));
  // A reset (or a close with no end) arrives after the bytes sent before it, as on a network.
  from.on('error', () => later(() => to.destroy()));
  // Closed: `to` goes too, once what was written to it has left (an ended stream finishes first).
  from.on('close', () =>
    later(() => {
      if (to.writableEnded && !to.writableFinished) to.once('finish', () => to.destroy());
      else to.destroy();
    }),
  );
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
