import net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, SluiceError } from '../errors.js';
import { ipVersion } from '../ip.js';
import type { ConnectionOptions } from '../options.js';
import { connectThroughProxy } from './proxy.js';
import { type TlsSessions, endpointKey, resumption } from './tls-session.js';

/** The listeners a connection keeps on its socket (the same three across a STARTTLS upgrade). */
export interface SocketListeners {
  data: (chunk: Buffer) => void;
  error: (err: Error) => void;
  close: () => void;
}

/** While a step is pending (connecting, a TLS handshake), the way to fail it from outside (destroy()). */
export type Cancel = (error: SluiceError) => void;

/** tls.connect options: certificates are verified unless the user turns it off (rejectUnauthorized: false). */
function tlsOptions(options: ConnectionOptions): tls.ConnectionOptions {
  return { servername: ipVersion(options.host) ? undefined : options.host, ...options.tls };
}

/**
 * tls.connect with the pool's latest session for this endpoint offered (tls-session.ts). Resolves on
 * 'secureConnect' (Node verified the certificate, of a resumed session too); `onError` names a failure.
 */
function secureConnect(
  options: ConnectionOptions,
  transport: tls.ConnectionOptions,
  sessions: TlsSessions | null,
  timeout: { after: number; error: () => SluiceError },
  pending: (cancel: Cancel | null) => void,
  onError: (err: NodeJS.ErrnoException) => SluiceError,
): Promise<tls.TLSSocket> {
  const base = tlsOptions(options);
  const resume = sessions ? resumption(sessions, endpointKey(options.host, options.port, base.servername)) : null;
  const socket = tls.connect({ ...base, ...transport, ...(resume?.offered ? { session: resume.offered } : {}) });
  resume?.listen(socket);
  socket.setNoDelay(true);
  const ready = established(socket, 'secureConnect', timeout, pending, onError);
  if (!resume) return ready;
  return ready.then(
    (s) => {
      resume.established(s);
      return s;
    },
    (err: unknown) => {
      resume.failed();
      throw err;
    },
  );
}

/** Whether the socket's TLS session was resumed (false for a plain socket). */
export function sessionReused(socket: net.Socket): boolean {
  return socket instanceof tls.TLSSocket && socket.isSessionReused();
}

/**
 * Runs `start` on `socket` within `timeout.after` ms: `start` calls `done(value)` or `fail(error)` once.
 * `pending` holds the cancel function while it runs, and null once it ended; on failure, on time-out
 * and on cancel the socket is destroyed. The socket's 'error' listeners go once it is done.
 */
export function guarded<T>(
  socket: net.Socket,
  timeout: { after: number; error: () => SluiceError },
  pending: (cancel: Cancel | null) => void,
  start: (done: (value: T) => void, fail: (err: SluiceError) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const end = () => {
      settled = true;
      pending(null);
      clearTimeout(timer);
    };
    const fail = (err: SluiceError) => {
      if (settled) return;
      end();
      socket.destroy();
      reject(err);
    };
    pending(fail);
    const timer = setTimeout(() => fail(timeout.error()), timeout.after);
    start((value) => {
      if (settled) return;
      end();
      socket.removeAllListeners('error');
      resolve(value);
    }, fail);
  });
}

/** Waits for `socket` to emit `ready` ('connect' or 'secureConnect'); `onError` names the socket's error. */
function established<S extends net.Socket>(
  socket: S,
  ready: 'connect' | 'secureConnect',
  timeout: { after: number; error: () => SluiceError },
  pending: (cancel: Cancel | null) => void,
  onError: (err: NodeJS.ErrnoException) => SluiceError,
): Promise<S> {
  return guarded<S>(socket, timeout, pending, (done, fail) => {
    socket.once('error', (err: NodeJS.ErrnoException) => fail(onError(err)));
    socket.once(ready, () => done(socket));
  });
}

export function timedOut(message: string, command: string, after: number): { after: number; error: () => SluiceError } {
  return { after, error: () => new SluiceError(ErrorCodes.ETIMEDOUT, message, { command }) };
}

/**
 * Opens the TCP (or implicit TLS, RFC 8314) socket: directly, or over the tunnel of the `proxy` option.
 * `sessions`: the pool's TLS sessions, to resume one (null: a full handshake every time).
 */
export async function connectSocket(
  options: ConnectionOptions,
  pending: (cancel: Cancel | null) => void,
  sessions: TlsSessions | null = null,
): Promise<net.Socket> {
  const { host, port, secure, localAddress, proxy } = options;
  const after = options.timeouts.connect;
  const tunnel = proxy ? await connectThroughProxy(options, proxy, pending) : undefined;
  if (tunnel && !secure) return tunnel;
  const timeout = timedOut(`Connection to ${host}:${port} timed out after ${after} ms`, 'CONNECT', after);
  const onError = (err: NodeJS.ErrnoException) => {
    const isTls = secure && (err.code?.startsWith('ERR_TLS') || err.code?.includes('CERT') || /certificate|ssl|tls/i.test(err.message));
    return new SluiceError(isTls ? ErrorCodes.ETLS : ErrorCodes.ECONNECTION, `${isTls ? 'TLS' : 'Connection'} error with ${host}:${port}: ${err.message}`, {
      cause: err,
      command: 'CONNECT',
      // A certificate the client refuses is refused again on the next attempt.
      permanent: Boolean(isTls),
    });
  };
  // tls.ConnectionOptions lacks localAddress, which tls.connect passes on to net.connect.
  const transport = (tunnel ? { socket: tunnel } : { host, port, localAddress }) as tls.ConnectionOptions;
  if (secure) return secureConnect(options, transport, sessions, timeout, pending, onError);
  const socket = net.connect({ host, port, localAddress });
  socket.setNoDelay(true);
  return established(socket, 'connect', timeout, pending, onError);
}

/** Runs the TLS handshake over a connected plain socket, after STARTTLS's 220 (RFC 3207). */
export function upgradeSocket(
  plain: net.Socket,
  options: ConnectionOptions,
  pending: (cancel: Cancel | null) => void,
  sessions: TlsSessions | null = null,
): Promise<tls.TLSSocket> {
  const timeout = timedOut('TLS handshake timed out', 'STARTTLS', options.timeouts.connect);
  return secureConnect(options, { socket: plain }, sessions, timeout, pending, (err) => {
    return new SluiceError(ErrorCodes.ETLS, `TLS negotiation failed: ${err.message}`, { cause: err, command: 'STARTTLS', permanent: true });
  });
}

export function attach(socket: net.Socket, on: SocketListeners): void {
  socket.on('data', on.data);
  socket.on('error', on.error);
  socket.on('close', on.close);
}

export function detach(socket: net.Socket, on: SocketListeners): void {
  socket.off('data', on.data);
  socket.off('error', on.error);
  socket.off('close', on.close);
}

/**
 * What goes on the wire: bytes, or a command line as a string. Commands stay strings up to the socket,
 * which encodes them (UTF-8: RFC 6531 addresses) in the same native call as the writev: no Buffer per
 * command on the JavaScript heap.
 */
export type Chunk = Buffer | string;

/** Writes a group with one syscall (cork/uncork becomes one writev). Returns false when the socket asks to wait for 'drain'. */
export function writeGroup(socket: net.Socket | null, chunks: Chunk[]): boolean {
  if (!socket || socket.destroyed) return true;
  if (chunks.length === 1) return socket.write(chunks[0]!);
  socket.cork();
  let result = true;
  for (const c of chunks) if (c.length) result = socket.write(c);
  socket.uncork();
  return result;
}

/** Resolves when the socket drained or closed. */
export function drained(socket: net.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
