/**
 * The connect step through a proxy: SOCKS 4/4a/5 (the `socks` package) or HTTP CONNECT (Node's HTTP
 * client, RFC 9110 §9.3.6). The proxy hands back a plain TCP tunnel to host:port; TLS (implicit or
 * STARTTLS) and SMTP then run over it as over a direct socket, so certificates are still verified
 * against the mail server, end to end. Credentials in the proxy URL never appear in errors or logs.
 */
import http from 'node:http';
import net from 'node:net';
import { SocksClient } from 'socks';
import { ErrorCodes, SluiceError } from '../errors.js';
import { ipVersion } from '../ip.js';
import type { ConnectionOptions } from '../options.js';
import { type Cancel, guarded, timedOut } from './socket.js';

export interface ProxyTarget {
  protocol: 'socks4' | 'socks5' | 'http';
  host: string;
  port: number;
  user?: string;
  pass?: string;
  /** protocol://host:port, without credentials: for messages. */
  label: string;
}

const PROTOCOLS: Record<string, { protocol: ProxyTarget['protocol']; port: number }> = {
  'socks:': { protocol: 'socks5', port: 1080 },
  'socks5:': { protocol: 'socks5', port: 1080 },
  'socks5h:': { protocol: 'socks5', port: 1080 },
  'socks4:': { protocol: 'socks4', port: 1080 },
  'socks4a:': { protocol: 'socks4', port: 1080 },
  'http:': { protocol: 'http', port: 80 },
};

const bad = (message: string) => new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });

/** Reads `proxy: 'socks5://user:pass@host:1080'` or `'http://host:3128'`. Errors never echo the URL (it may hold a password). */
export function parseProxy(value: unknown): ProxyTarget | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw bad('proxy must be a URL string: socks5://host:port, socks4://host:port or http://host:port');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad('proxy is not a valid URL (socks5://host:port, socks4://host:port or http://host:port)');
  }
  const known = PROTOCOLS[url.protocol];
  if (!known) throw bad(`proxy protocol ${JSON.stringify(url.protocol)} is not supported: use socks5:, socks4: or http: (HTTP CONNECT)`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw bad('proxy needs a host');
  const port = url.port === '' ? known.port : Number(url.port);
  const target: ProxyTarget = { protocol: known.protocol, host, port, label: `${known.protocol}://${url.host}` };
  if (url.username) target.user = decodeURIComponent(url.username);
  if (url.password) target.pass = decodeURIComponent(url.password);
  return target;
}

/**
 * Connects to the proxy and opens the tunnel to options.host:port within `timeouts.connect`. `pending`
 * holds the cancel function while it runs (the pool's destroy() cuts it).
 */
export function connectThroughProxy(options: ConnectionOptions, proxy: ProxyTarget, pending: (cancel: Cancel | null) => void): Promise<net.Socket> {
  const { host, port, localAddress } = options;
  const after = options.timeouts.connect;
  const socket = net.connect({ host: proxy.host, port: proxy.port, localAddress });
  socket.setNoDelay(true);
  const failure = (message: string, permanent = false) =>
    new SluiceError(ErrorCodes.ECONNECTION, `Proxy ${proxy.label} to ${host}:${port}: ${message}`, { command: 'CONNECT', permanent });
  const timeout = timedOut(`Connection to ${host}:${port} through ${proxy.label} timed out after ${after} ms`, 'CONNECT', after);
  return guarded<net.Socket>(socket, timeout, pending, (done, fail) => {
    socket.once('error', (err) => fail(failure(err.message)));
    socket.once('connect', () => {
      const tunnel = proxy.protocol === 'http' ? httpConnect(socket, proxy, host, port) : socksConnect(socket, proxy, host, port, after);
      tunnel.then(
        () => done(socket),
        (err: Error & { permanent?: boolean }) => fail(failure(err.message, err.permanent)),
      );
    });
  });
}

async function socksConnect(socket: net.Socket, proxy: ProxyTarget, host: string, port: number, timeout: number): Promise<void> {
  try {
    await SocksClient.createConnection({
      command: 'connect',
      existing_socket: socket,
      destination: { host, port },
      proxy: { host: proxy.host, port: proxy.port, type: proxy.protocol === 'socks4' ? 4 : 5, userId: proxy.user, password: proxy.pass },
      timeout,
    });
  } catch (err) {
    // The socks package's messages name the step ("Socks5 Authentication failed"), never the password.
    const message = (err as Error).message;
    throw Object.assign(new Error(message), { permanent: /authentication/i.test(message) });
  }
}

/** CONNECT host:port over the proxy socket (RFC 9110 §9.3.6); a 2xx opens the tunnel. */
function httpConnect(socket: net.Socket, proxy: ProxyTarget, host: string, port: number): Promise<void> {
  const authority = `${ipVersion(host) === 6 ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.user !== undefined) headers['proxy-authorization'] = `Basic ${Buffer.from(`${proxy.user}:${proxy.pass ?? ''}`).toString('base64')}`;
  return new Promise<void>((resolve, reject) => {
    // No `agent`: with createConnection and no agent, Node sends the request over this socket.
    const request = http.request({ method: 'CONNECT', path: authority, headers, createConnection: () => socket });
    request.once('connect', (response: http.IncomingMessage, tunnel: net.Socket, head: Buffer) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        // 407: the proxy wants (other) credentials; 403: it refuses this destination. Neither mends itself.
        reject(
          Object.assign(new Error(`HTTP CONNECT refused: ${status} ${response.statusMessage ?? ''}`.trim()), { permanent: status === 407 || status === 403 }),
        );
        return;
      }
      // Bytes after the proxy's headers are the server's (its greeting): hand them back to the socket.
      if (head.length > 0) tunnel.unshift(head);
      resolve();
    });
    request.once('error', reject);
    request.end();
  });
}
