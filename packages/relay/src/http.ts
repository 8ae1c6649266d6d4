/**
 * The HTTP control port: GET /metrics, /health, /status, /queue; POST /release, /flush.
 *
 * A web page open in a browser on the same host can send requests to 127.0.0.1, so loopback alone
 * protects nothing that changes state. Therefore:
 * - every state-changing route needs `Authorization: Bearer <token>` (compared in constant time;
 *   the token is never logged). Browsers never add that header on their own, so a page cannot;
 * - a request a browser marks as cross-origin (an `Origin` that is not this port's own, or
 *   `Sec-Fetch-Site: cross-site|same-site`) is refused, as is a `Host` that is neither an IP address,
 *   `localhost`, nor a configured name: that is a DNS-rebinding page (RFC 9110 §7.2: Host names the
 *   origin the client thinks it talks to);
 * - beyond loopback, /status and /queue (they list addresses) need the token too.
 * Errors are JSON `{ "error": { "code", "kind", "message" } }`: the relay's own with their status, any other
 * through @sluice/core's httpErrorFor (one table for every adapter).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { type HttpErrorAnswer, httpErrorFor } from '@sluice/core';
import { RelayConfigError, RelayError } from './config.js';
import type { RelayLogger } from './log.js';
import type { RelayStatus } from './options.js';
import type { QueueItem } from './queue-list.js';

export interface ControlSettings {
  host: string;
  port: number;
  token: string;
  /** Names (besides IP addresses and localhost) that the Host header may carry. */
  allowedHosts: string[];
  /** The port is reachable beyond loopback: /status needs the token too. */
  public: boolean;
}

export interface ControlRoutes {
  status(): Promise<RelayStatus>;
  queue(): Promise<QueueItem[]>;
  metrics(): Promise<string>;
  health(): { status: 'ok' | 'stopping'; queue: number; inFlight: number };
  release(ids: string[] | 'all'): Promise<string[]>;
  flush(): void;
  log: RelayLogger;
}

export interface ControlServer {
  port: number;
  close(): Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant time whatever the lengths: both sides are hashed first. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]), digest(token));
}

/** The host name of a Host header or an origin's authority, without port and brackets. */
function hostName(authority: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(authority) ?? /^([^:]+)(?::\d+)?$/.exec(authority);
  return (m?.[1] ?? authority).toLowerCase();
}

function hostAllowed(name: string, allowed: string[]): boolean {
  return isIP(name) !== 0 || name === 'localhost' || allowed.includes(name);
}

/** Why a request is refused before any route runs, or null. */
function refusal(req: http.IncomingMessage, s: ControlSettings): RelayError | null {
  const host = req.headers.host;
  if (!host) return new RelayError('EFORBIDDEN', 'A Host header is required', 403);
  if (!hostAllowed(hostName(host), s.allowedHosts)) {
    return new RelayError('EFORBIDDEN', `Host ${JSON.stringify(host)} is not this relay's (add it with --http-allowed-hosts)`, 403);
  }
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (site === 'cross-site' || site === 'same-site' || (origin !== undefined && origin !== `http://${host}`)) {
    return new RelayError('EFORBIDDEN', 'Cross-origin requests are refused', 403);
  }
  return null;
}

/** The relay's own errors carry their status; everything else goes by the core's one table. */
function errorResponse(err: unknown): HttpErrorAnswer {
  if (err instanceof RelayError) {
    const headers: Record<string, string> = err.code === 'EUNAUTHORIZED' ? { 'www-authenticate': 'Bearer realm="sluice-relay"' } : {};
    return { status: err.status, headers, body: { error: { code: err.code, kind: err.kind, message: err.message } } };
  }
  return httpErrorFor(err);
}

export async function startControlServer(s: ControlSettings, r: ControlRoutes): Promise<ControlServer> {
  const handle = async (req: http.IncomingMessage, url: URL): Promise<{ status: number; type?: string; body: unknown }> => {
    const refused = refusal(req, s);
    if (refused) throw refused;
    const route = `${req.method} ${url.pathname}`;
    const guarded = route === 'POST /release' || route === 'POST /flush' || (s.public && (route === 'GET /status' || route === 'GET /queue'));
    if (guarded && !tokenMatches(req.headers.authorization, s.token)) {
      throw new RelayError('EUNAUTHORIZED', `${route} needs the relay's token: Authorization: Bearer <token> (see --http-token-file)`, 401);
    }
    switch (route) {
      case 'GET /metrics':
        return { status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', body: await r.metrics() };
      case 'GET /health': {
        const h = r.health();
        return { status: h.status === 'ok' ? 200 : 503, body: h };
      }
      case 'GET /status':
        return { status: 200, body: await r.status() };
      case 'GET /queue':
        return { status: 200, body: { messages: await r.queue() } };
      case 'POST /release': {
        const ids = url.searchParams.getAll('id');
        return { status: 200, body: { released: await r.release(ids.length ? ids : 'all') } };
      }
      case 'POST /flush':
        r.flush();
        return { status: 200, body: { ok: true } };
      default:
        throw new RelayError(
          'ERELAYCONFIG',
          `No route ${route}`,
          ['/metrics', '/health', '/status', '/queue', '/release', '/flush'].includes(url.pathname) ? 405 : 404,
        );
    }
  };

  const server = http.createServer((req, res) => {
    req.resume(); // no route reads a body
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, type: string, body: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...extra });
      res.end(body);
    };
    handle(req, url).then(
      (out) => send(out.status, out.type ?? 'application/json', typeof out.body === 'string' ? out.body : JSON.stringify(out.body)),
      (err) => {
        const { status, headers, body } = errorResponse(err);
        if (status >= 500) r.log.error('HTTP request failed', { method: req.method, path: url.pathname, error: (err as Error).message });
        else if (status === 401 || status === 403)
          r.log.warn('HTTP request refused', { method: req.method, path: url.pathname, client: req.socket.remoteAddress, code: body.error.code });
        send(status, 'application/json', JSON.stringify(body), headers);
      },
    );
  });
  server.listen(s.port, s.host);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
  } catch (err) {
    throw new RelayConfigError(`Cannot listen for HTTP on ${s.host}:${s.port}: ${(err as Error).message} (--http off to disable)`);
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
