import type tls from 'node:tls';

/**
 * TLS session resumption (RFC 8446 §2.2 tickets in TLS 1.3, RFC 5077 tickets in TLS 1.2): a pool that
 * retires connections after N messages reconnects often, and a resumed handshake skips the server's
 * certificate chain and signature (and their verification on our side).
 *
 * A resumed session is NOT verified again: OpenSSL keeps the verify result of the handshake that made
 * it (under that handshake's CA), and Node skips checkServerIdentity for a reused session (it resumes
 * a session made for another servername without a word). So which sessions are offered where is what
 * keeps verification as strict as a full handshake:
 * - one store per pool (`PeerMemory.tls`), never shared between pools, which may trust other CAs or
 *   set other TLS options (`checkServerIdentity`, `rejectUnauthorized`) for the same host;
 * - within the store, one session per endpoint (host, port, servername): a session is only offered to
 *   the name it was verified for.
 *
 * Only a session from a handshake that succeeded is kept: Node emits 'session' once the certificate
 * was verified (a TLS 1.2 ticket that arrives during the handshake is held until then, and dropped with
 * a refused certificate). A failed handshake drops the session it offered, and so does one the server
 * did not resume (unless it sent a newer one), so a ticket the server no longer takes is not offered
 * to every later connection.
 */
export class TlsSessions {
  private readonly byEndpoint = new Map<string, Buffer>();
  private closed = false;

  get(endpoint: string): Buffer | undefined {
    return this.byEndpoint.get(endpoint);
  }

  /** Keeps `session` as the endpoint's latest (TLS 1.3 servers may send several tickets: the last wins). */
  set(endpoint: string, session: Buffer): void {
    if (!this.closed) this.byEndpoint.set(endpoint, session);
  }

  /** Drops the endpoint's session if it is still `session` (a newer one, from another connection, stays). */
  forget(endpoint: string, session: Buffer): void {
    if (this.byEndpoint.get(endpoint) === session) this.byEndpoint.delete(endpoint);
  }

  /** The pool closed: every session goes, and none is kept after this. */
  close(): void {
    this.closed = true;
    this.byEndpoint.clear();
  }
}

export function endpointKey(host: string, port: number, servername: string | undefined): string {
  return JSON.stringify([host, port, servername ?? null]);
}

/** One handshake's part in resumption: created with the socket, told how the handshake ended. */
export interface Resumption {
  /** The session to pass to `tls.connect`, if any. */
  readonly offered: Buffer | undefined;
  /** Keeps the socket's sessions (TLS 1.3 sends its tickets after the handshake); call right after `tls.connect`. */
  listen(socket: tls.TLSSocket): void;
  /** 'secureConnect': a session the server did not resume is not offered again. */
  established(socket: tls.TLSSocket): void;
  /** The handshake failed (refused certificate, reset, timeout): the offered session goes. */
  failed(): void;
}

export function resumption(sessions: TlsSessions, endpoint: string): Resumption {
  const offered = sessions.get(endpoint);
  return {
    offered,
    listen(socket) {
      socket.on('session', (session: Buffer) => sessions.set(endpoint, session));
    },
    established(socket) {
      if (offered && !socket.isSessionReused()) sessions.forget(endpoint, offered);
    },
    failed() {
      if (offered) sessions.forget(endpoint, offered);
    },
  };
}
