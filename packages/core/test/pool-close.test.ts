import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type Pool, type SluiceError } from '../src/index.js';
import { readCommands } from './fixtures/command-lines.js';
import { message, pool, server } from './helpers.js';

// Finding 10 of issue 16: pool.close() after the last send took seconds against a server that answers
// QUIT at once. Two waits: after the 221 the client waited for the server's FIN, and close() waited for
// connections still in setup (opened for a burst) to finish their handshakes before QUITting them.
// These tests assert on events and states, not on elapsed time: each wait removed is one that, left in,
// would never end within the test (the servers below never close and never finish a handshake).

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

/**
 * A minimal SMTP server that answers everything at once and, after its 221 to QUIT, keeps its side of
 * the connection open (a half-open socket: it never sends its FIN). `log` records what it saw, in order.
 */
async function lingeringServer(log: string[]): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.write('220 linger.test ESMTP\r\n');
    readCommands(
      socket,
      (line) => {
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') socket.write('250-linger.test\r\n250 PIPELINING\r\n');
        else if (verb === 'MAIL' || verb === 'RCPT') socket.write('250 2.1.0 ok\r\n');
        else if (verb === 'DATA') socket.write('354 go ahead\r\n');
        else if (verb === 'QUIT') {
          log.push('server: QUIT');
          socket.write('221 2.0.0 bye\r\n', () => log.push('server: 221 written'));
        } else socket.write('502 5.5.1 unknown\r\n');
      },
      () => socket.write('250 2.0.0 queued\r\n'),
    );
    socket.on('end', () => log.push('server: client FIN'));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, sockets };
}

function plainPool(port: number, options: object = {}): Pool {
  const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test', ...options });
  cleanup.push(() => void p.destroy());
  return p;
}

describe('pool.close() does not wait for what it does not need', () => {
  it('closes the socket right after the 221, without waiting for the server to close its side', async () => {
    const log: string[] = [];
    const s = await lingeringServer(log);
    const p = plainPool(s.port);
    p.on('close', (info) => log.push(`client: close ${info.error ? info.error.code : 'orderly'}`));
    await p.send(message(1));
    await p.close();
    // The 221 was read, then the connection closed, orderly, although the server never sent its FIN.
    expect(log).toEqual(['server: QUIT', 'server: 221 written', 'server: client FIN', 'client: close orderly']);
    expect(s.sockets).toHaveLength(1);
    expect(s.sockets[0]!.writableEnded).toBe(false);
    expect(p.stats).toMatchObject({ connections: 0, connecting: 0, delivered: 1 });
  });

  it('also when QUIT went out pipelined behind the last message of a retiring connection', async () => {
    const log: string[] = [];
    const s = await lingeringServer(log);
    const p = plainPool(s.port, { maxConnections: 1, maxMessagesPerConnection: 2 });
    const closed = new Promise<void>((resolve) => p.once('close', () => resolve()));
    await Promise.all([p.send(message(1)), p.send(message(2))]);
    // The connection retired by itself at its message cap: QUIT, 221, and the socket is gone.
    await closed;
    expect(log).toEqual(['server: QUIT', 'server: 221 written', 'server: client FIN']);
    expect(s.sockets[0]!.writableEnded).toBe(false);
    await p.close();
  });

  it('cuts connections still in setup (a burst whose greetings never come) instead of waiting for their handshakes', async () => {
    // The first connection is greeted; the next three are accepted and never greeted (the default
    // greeting timeout is 5 minutes: waiting for them would outlast the test).
    const s = await server({ faults: [2, 3, 4].map((connection) => ({ command: 'CONNECT' as const, connection, action: 'stall' as const })) });
    const p = pool(s, { maxConnections: 4 });
    const connectErrors: SluiceError[] = [];
    p.on('connect-error', (e) => connectErrors.push(e));
    const sends = Array.from({ length: 8 }, (_, i) => p.send(message(i)));
    await Promise.all(sends);
    expect(s.connections).toHaveLength(4);
    expect(p.stats.connecting).toBe(3);
    await p.close();
    expect(p.stats).toMatchObject({ connections: 0, connecting: 0, delivered: 8 });
    // A cut attempt is not a failed one: no 'connect-error', nothing counted against the server.
    expect(connectErrors).toEqual([]);
    expect(s.connections[0]!.byCommand.QUIT).toBe(1);
  });

  it('cuts a connection in the middle of its STARTTLS handshake', async () => {
    // Connection 1 is relayed to the mock server (STARTTLS works); later ones answer STARTTLS with 220
    // and then never answer the TLS ClientHello.
    const s = await server({ extensions: { starttls: true } });
    let accepted = 0;
    const stalled: net.Socket[] = [];
    const helloSeen: Array<() => void> = [];
    const front = net.createServer((client) => {
      client.on('error', () => {});
      if (++accepted === 1) {
        const upstream = net.connect(s.port, '127.0.0.1');
        upstream.on('error', () => client.destroy());
        client.pipe(upstream).pipe(client);
        return;
      }
      stalled.push(client);
      client.write('220 front.test ESMTP\r\n');
      let buffered = '';
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        if (buffered.startsWith('EHLO') && buffered.endsWith('\r\n')) {
          buffered = '';
          client.write('250-front.test\r\n250 STARTTLS\r\n');
        } else if (buffered === 'STARTTLS\r\n') {
          client.off('data', onData);
          client.write('220 2.0.0 Ready to start TLS\r\n');
          // The ClientHello arrives and is never answered.
          client.once('data', () => helloSeen.shift()?.());
        }
      };
      client.on('data', onData);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => {
      for (const c of stalled) c.destroy();
      front.close();
    });
    const p = createPool({
      host: '127.0.0.1',
      port: (front.address() as net.AddressInfo).port,
      name: 'client.sluice.test',
      tls: { ca: s.ca, servername: 'localhost' },
      maxConnections: 2,
    });
    cleanup.push(() => void p.destroy());
    const connectErrors: SluiceError[] = [];
    p.on('connect-error', (e) => connectErrors.push(e));
    const inHandshake = new Promise<void>((resolve) => helloSeen.push(resolve));
    const sends = Array.from({ length: 4 }, (_, i) => p.send(message(i)));
    await inHandshake;
    await Promise.all(sends);
    expect(p.stats.connecting).toBe(1);
    await p.close();
    expect(p.stats).toMatchObject({ connections: 0, connecting: 0, delivered: 4 });
    expect(connectErrors).toEqual([]);
  });
});
