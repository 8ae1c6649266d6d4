/**
 * smtp-server with the relay's connection rules, applied per socket where smtp-server hands it over
 * (`connect`, and `onSecure` for the TLS socket after STARTTLS):
 *
 * - the greeting goes out at once. smtp-server waits 100 ms before it to catch clients that talk too
 *   early (a spam-bot heuristic, like Postfix's postscreen); for a relay whose clients are local
 *   programs opening one connection per message, that pause is most of the time a message takes.
 *   smtp-server has no option for it, so this calls the connection's `connectionReady()` itself
 *   (once; the delayed call becomes a no-op). That relies on how smtp-server 3.21.6 starts a
 *   connection, so the version is pinned exactly, and test/limits.test.ts fails if the pause returns;
 * - at most `maxClientsPerAddress` connections from one address (beyond: 421 before the greeting);
 * - a session deadline: `sessionTimeout` after connecting, the session is closed with 421;
 * - a line deadline: a command line (or a line of message content) must arrive whole within
 *   `commandTimeout` of its first byte. smtp-server's idle timeout restarts at every byte, so a
 *   client sending one byte a second is never cut by it alone (slowloris).
 *
 * RFC 5321 §3.8 lets a server close a session with 421 when it must; the client retries later.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;

export interface ConnectionLimits {
  maxClientsPerAddress: number;
  /**
   * Addresses the per-address cap does not apply to (the trusted networks), as Postfix exempts
   * `$mynetworks` from its per-client limits (smtpd_client_event_limit_exceptions): every local
   * program connects from 127.0.0.1, and a burst of them is not an attack. max-clients and the
   * session and command deadlines still apply.
   */
  exempt(address: string): boolean;
  sessionTimeout: number;
  commandTimeout: number;
  /** True while the relay is deciding on a message of that session (spooling it): not the moment to cut it. */
  busy(sessionId: string): boolean;
  /** A connection refused or cut by one of the rules. */
  onLimit(rule: 'per-address' | 'session' | 'command', client: string): void;
}

interface Tracked {
  connection: Connection;
  address: string;
  /** The line deadline, while a line is incomplete. */
  line: NodeJS.Timeout | null;
  session: NodeJS.Timeout;
  /** A cut that waits for the spooling of a message to finish. */
  retry: NodeJS.Timeout | null;
  watched: Socket | TLSSocket;
  onData: (chunk: Buffer) => void;
}

/** "::ffff:127.0.0.2" and "127.0.0.2" are one client. */
function clientAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.toLowerCase().startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class GuardedSmtpServer extends SMTPServer {
  private readonly perAddress = new Map<string, number>();
  private readonly tracked = new Map<string, Tracked>();

  constructor(
    options: SMTPServerOptions,
    private readonly limits: ConnectionLimits,
  ) {
    super(options);
  }

  override connect(socket: Socket | TLSSocket, socketOptions?: Parameters<SMTPServer['connect']>[1]): void {
    const address = clientAddress(socket);
    const count = this.perAddress.get(address) ?? 0;
    if (count >= this.limits.maxClientsPerAddress && !this.limits.exempt(address)) {
      this.limits.onLimit('per-address', address);
      socket.on('error', () => {}); // the client may be gone already; nothing to tell it
      socket.end(`421 ${this.options.name} Too many connections from your address, try again later\r\n`, () => socket.destroy());
      return;
    }
    this.perAddress.set(address, count + 1);
    socket.once('close', () => {
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
    const before = this.connections.size;
    super.connect(socket, socketOptions);
    if (this.connections.size !== before + 1) return;
    let connection: Connection | undefined;
    for (const c of this.connections) connection = c; // the newest
    if (!connection) return;
    this.track(connection, socket, address);
    if (this.options.maxClients && this.connections.size > this.options.maxClients) return; // it was told 421
    greetNow(connection);
  }

  /** After STARTTLS the lines arrive on the TLS socket. */
  override onSecure(socket: Socket | TLSSocket, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const t = this.tracked.get(session.id);
    if (t) this.watch(t, socket);
    callback();
  }

  private track(connection: Connection, socket: Socket, address: string): void {
    const t: Tracked = {
      connection,
      address,
      line: null,
      session: deadline(() => this.cut(t, 'session'), this.limits.sessionTimeout),
      retry: null,
      watched: socket,
      onData: () => {},
    };
    this.tracked.set(connection.id, t);
    this.watch(t, socket);
    socket.once('close', () => {
      clearTimeout(t.session);
      if (t.line) clearTimeout(t.line);
      if (t.retry) clearTimeout(t.retry);
      t.watched.removeListener('data', t.onData);
      this.tracked.delete(connection.id);
    });
  }

  private watch(t: Tracked, socket: Socket | TLSSocket): void {
    t.watched.removeListener('data', t.onData);
    t.onData = (chunk: Buffer) => {
      const lastNl = chunk.lastIndexOf(10);
      if (lastNl !== -1 && t.line) {
        clearTimeout(t.line);
        t.line = null;
      }
      // Bytes after the last line end start a line that must be complete in time.
      if (lastNl !== chunk.length - 1 && !t.line) t.line = deadline(() => this.cut(t, 'command'), this.limits.commandTimeout);
    };
    t.watched = socket;
    socket.on('data', t.onData);
  }

  private cut(t: Tracked, rule: 'session' | 'command'): void {
    const c = t.connection;
    if (c._closing || c._closed) return;
    if (this.limits.busy(c.id)) {
      // The message is being spooled: a 421 now could make the client send again what we accept.
      t.retry = deadline(() => this.cut(t, rule), 250);
      return;
    }
    this.limits.onLimit(rule, t.address);
    c.send(421, rule === 'session' ? `${c.name} Session time limit exceeded, closing connection` : `${c.name} Command timeout, closing connection`);
    c.close();
  }
}

/** A deadline never keeps the process alive on its own (stop() closes the sessions). */
function deadline(f: () => void, ms: number): NodeJS.Timeout {
  return setTimeout(f, ms).unref();
}

function greetNow(connection: Connection): void {
  const ready = connection.connectionReady;
  let done = false;
  connection.connectionReady = function (this: Connection, next?: () => void) {
    if (done) return;
    done = true;
    ready.call(connection, next);
  };
  connection.connectionReady();
}
