import http from 'node:http';
import net from 'node:net';
import { afterEach } from 'vitest';

/** A proxy started by a test: every tunnel it opens goes to `target`, whatever destination the client asked for. */
export interface TestProxy {
  port: number;
  /** The destinations clients asked for ('host:port'), in order. */
  requests: string[];
  /** Bytes relayed from the client to the target, over every tunnel. */
  relayed: number;
  close(): Promise<void>;
}

const open: Array<{ server: net.Server; sockets: Set<net.Socket> }> = [];
afterEach(async () => {
  await Promise.all(
    open.splice(0).map(({ server, sockets }) => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    }),
  );
});

function track(server: net.Server, target: { host: string; port: number }): TestProxy & { tunnel(client: net.Socket, head: Buffer, ready: () => void): void } {
  const sockets = new Set<net.Socket>();
  const keep = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  server.on('connection', keep);
  open.push({ server, sockets });
  const proxy = {
    port: 0,
    requests: [] as string[],
    relayed: 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    tunnel(client: net.Socket, head: Buffer, ready: () => void) {
      const upstream = net.connect(target.port, target.host);
      keep(upstream);
      upstream.on('connect', () => {
        ready();
        if (head.length) upstream.write(head);
        proxy.relayed += head.length;
        client.on('data', (chunk: Buffer) => {
          proxy.relayed += chunk.length;
        });
        client.pipe(upstream).pipe(client);
      });
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
    },
  };
  return proxy;
}

async function listen(server: net.Server, proxy: TestProxy): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
}

/** Reads exact byte counts from a socket during a handshake. */
function reader(socket: net.Socket) {
  let buffer = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  const onData = (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    wake?.();
  };
  socket.on('data', onData);
  return {
    async read(n: number): Promise<Buffer> {
      while (buffer.length < n) await new Promise<void>((resolve) => (wake = resolve));
      const out = buffer.subarray(0, n);
      buffer = buffer.subarray(n);
      return out;
    },
    /** Stops reading; returns what came after the handshake. */
    done(): Buffer {
      socket.off('data', onData);
      return buffer;
    },
  };
}

/**
 * A SOCKS5 server (RFC 1928; user/password auth per RFC 1929 when `credentials` is given) that opens
 * every CONNECT to `target`.
 */
export async function socks5Proxy(target: { host: string; port: number }, credentials?: { user: string; pass: string }): Promise<TestProxy> {
  const server = net.createServer();
  const proxy = track(server, target);
  server.on('connection', async (client) => {
    const r = reader(client);
    try {
      const [version, count] = await r.read(2);
      const methods = [...(await r.read(count!))];
      if (version !== 5) return client.destroy();
      const wanted = credentials ? 0x02 : 0x00;
      if (!methods.includes(wanted)) return client.end(Buffer.from([5, 0xff]));
      client.write(Buffer.from([5, wanted]));
      if (credentials) {
        const [, ulen] = await r.read(2);
        const user = (await r.read(ulen!)).toString();
        const [plen] = await r.read(1);
        const pass = (await r.read(plen!)).toString();
        const ok = user === credentials.user && pass === credentials.pass;
        client.write(Buffer.from([1, ok ? 0 : 1]));
        if (!ok) return client.end();
      }
      const [, command, , type] = await r.read(4);
      let host: string;
      if (type === 1) host = [...(await r.read(4))].join('.');
      else if (type === 3) host = (await r.read((await r.read(1))[0]!)).toString();
      else host = (await r.read(16)).toString('hex');
      const port = (await r.read(2)).readUInt16BE(0);
      if (command !== 1) return client.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
      proxy.requests.push(`${host}:${port}`);
      const head = r.done();
      proxy.tunnel(client, head, () => client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0])));
    } catch {
      client.destroy();
    }
  });
  await listen(server, proxy);
  return proxy;
}

/** An HTTP proxy answering CONNECT (RFC 9110 §9.3.6) by opening a tunnel to `target`; with `credentials`, 407 without them. */
export async function httpConnectProxy(target: { host: string; port: number }, credentials?: { user: string; pass: string }): Promise<TestProxy> {
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  const proxy = track(server, target);
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const expected = credentials && `Basic ${Buffer.from(`${credentials.user}:${credentials.pass}`).toString('base64')}`;
    if (expected && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
      return;
    }
    proxy.requests.push(req.url ?? '');
    proxy.tunnel(client, head, () => client.write('HTTP/1.1 200 Connection Established\r\n\r\n'));
  });
  await listen(server, proxy);
  return proxy;
}
