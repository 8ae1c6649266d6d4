/**
 * The SMTP listener for local clients: who may relay, what is accepted, and the 250 only once the
 * message is durable in the spool (RFC 5321 §6.1: accepting a message is taking responsibility for it).
 */
import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { statfs } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { MAX_LINE_LENGTH } from '@sluice/core';
import type { SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { RelayConfigError } from './config.js';
import { GuardedSmtpServer } from './guarded-server.js';
import type { RelayLogger } from './log.js';
import { LineTooLongError, limitLines } from './line-limit.js';
import { isLoopbackAddress } from './loopback.js';
import type { Metrics } from './metrics.js';
import type { Settings } from './options.js';
import { newId, SizeExceededError, type Spool, type SpoolDsn, type SpoolHeader } from './spool.js';
import { isTrusted } from './trusted.js';

export interface ListenerDeps {
  spool: Spool;
  metrics: Metrics;
  log: RelayLogger;
  /** False once the relay is stopping: new sessions and transactions get 421. */
  accepting(): boolean;
  /** A message is durable in queue/ (its 250 is on its way). */
  accepted(id: string, receivedAt: number): void;
}

export interface Listener {
  server: GuardedSmtpServer;
  port: number;
  close(): Promise<void>;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

/** Whether the spool's file system is below `minFreeSpace`, checked at most every 2 s. */
function spaceChecker(s: Settings, log: RelayLogger): () => Promise<boolean> {
  let checkedAt = 0;
  let low = false;
  return async () => {
    if (Date.now() - checkedAt < 2000) return low;
    checkedAt = Date.now();
    try {
      const st = await statfs(s.spoolDir);
      low = st.bavail * st.bsize < s.minFreeSpace;
    } catch (err) {
      log.warn('cannot read the free space of the spool file system; accepting mail', { error: (err as Error).message });
      low = false;
    }
    return low;
  };
}

function spoolHeaderOf(session: SMTPServerSession): SpoolHeader {
  const env = session.envelope;
  const dsn: SpoolDsn = {};
  if (env.dsn?.ret === 'FULL' || env.dsn?.ret === 'HDRS') dsn.ret = env.dsn.ret;
  if (env.dsn?.envid) dsn.envid = env.dsn.envid;
  for (const r of env.rcptTo) {
    if (r.dsn?.notify?.length) (dsn.notify ??= {})[r.address] = r.dsn.notify.map((n) => n.toUpperCase());
    if (r.dsn?.orcpt) (dsn.orcpt ??= {})[r.address] = r.dsn.orcpt;
  }
  return {
    v: 1,
    id: newId(),
    from: env.mailFrom ? env.mailFrom.address : '',
    to: env.rcptTo.map((r) => r.address),
    receivedAt: Date.now(),
    ...(Object.keys(dsn).length ? { dsn } : {}),
    client: {
      address: session.remoteAddress,
      helo: session.clientHostname || session.hostNameAppearsAs,
      ...(session.user ? { user: String(session.user) } : {}),
    },
  };
}

export async function startListener(s: Settings, d: ListenerDeps): Promise<Listener> {
  const { spool, metrics, log } = d;
  const users = s.users;
  // Trusted networks (default loopback) relay without AUTH; beyond loopback a client needs TLS all the same.
  // Remembered per address (every connection asks, and local senders come from a handful of addresses).
  const trustedByAddress = new Map<string, boolean>();
  const trusted = (address: string | undefined): boolean => {
    if (!address) return false;
    let t = trustedByAddress.get(address);
    if (t === undefined) {
      if (trustedByAddress.size >= 1024) trustedByAddress.clear();
      t = isTrusted(address, s.trusted);
      trustedByAddress.set(address, t);
    }
    return t;
  };
  const needsAuth = (session: SMTPServerSession) => !!s.requireAuth || !trusted(session.remoteAddress);
  const needsTls = (session: SMTPServerSession) => !isLoopbackAddress(session.remoteAddress);
  const lowOnSpace = spaceChecker(s, log);
  const spooling = new Set<string>();
  const shuttingDown = () => smtpError(421, 'Service shutting down, try again later');

  const serverOptions: SMTPServerOptions = {
    name: s.hostname,
    banner: 'sluice-relay ESMTP',
    size: s.maxSize,
    maxClients: s.maxClients,
    maxRecipients: s.maxRecipients,
    socketTimeout: s.idleTimeout,
    authOptional: true,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    disabledCommands: [...(s.tls ? [] : ['STARTTLS']), ...(users ? [] : ['AUTH'])],
    hideREQUIRETLS: true,
    hideDSN: false, // NOTIFY, RET, ENVID and ORCPT shape our own bounces
    disableReverseLookup: true,
    logger: false,
    closeTimeout: Math.min(s.shutdownTimeout, 30_000),
    ...(s.tls ? { key: s.tls.key, cert: s.tls.cert } : {}),
    onConnect(_session, callback) {
      if (!d.accepting()) return callback(shuttingDown());
      callback();
    },
    onAuth(auth, session, callback) {
      const expected = users?.[auth.username ?? ''];
      if (expected !== undefined && auth.password != null && safeEqual(auth.password, expected)) return callback(null, { user: auth.username });
      log.warn('local AUTH failed', { client: session.remoteAddress, user: auth.username });
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onMailFrom(address, session, callback) {
      if (!d.accepting()) return callback(shuttingDown());
      // AUTH is offered over TLS only, so a client that must AUTH is first told to STARTTLS.
      if (!session.secure && (needsTls(session) || (s.tls && needsAuth(session)))) return callback(smtpError(530, 'Must issue a STARTTLS command first'));
      if (needsAuth(session)) {
        if (!session.user) {
          metrics.inc('refused_unauthenticated');
          log.warn('relay attempt without AUTH refused', { client: session.remoteAddress, from: address.address });
          return callback(smtpError(530, 'Authentication required'));
        }
      }
      lowOnSpace().then(
        (low) => (low ? callback(smtpError(452, 'Insufficient system storage, try again later')) : callback()),
        (err) => {
          log.error('free space check failed; accepting mail', { error: (err as Error).message });
          callback();
        },
      );
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      const header = spoolHeaderOf(session);
      const { id, from } = header;
      spooling.add(session.id);
      spool.accept(header, limitLines(stream), s.maxSize).then(
        (size) => {
          spooling.delete(session.id);
          // Durable now: acknowledge even while stopping (the next start delivers it).
          metrics.inc('accepted');
          metrics.observeAccepted();
          log.info('accepted', { id, from, to: header.to, size, client: session.remoteAddress, ...(session.user ? { user: String(session.user) } : {}) });
          callback(null, `Ok: queued as ${id}`);
          d.accepted(id, header.receivedAt);
        },
        (err) => {
          spooling.delete(session.id);
          if (err instanceof SizeExceededError || stream.sizeExceeded) {
            metrics.inc('refused_size');
            log.warn('message too large refused', { from, client: session.remoteAddress, limit: s.maxSize });
            return callback(smtpError(552, `Message exceeds fixed maximum message size of ${s.maxSize} bytes`));
          }
          // After the size check: a message both too large and with a long line gets the size's 552.
          if (err instanceof LineTooLongError) {
            metrics.inc('refused_line_length');
            log.warn(`message with a line over ${MAX_LINE_LENGTH} octets refused`, { from, client: session.remoteAddress, line: err.line });
            return callback(smtpError(554, `5.6.0 Line ${err.line} is longer than ${MAX_LINE_LENGTH} octets (RFC 5321 §4.5.3.1.6): nothing was queued`));
          }
          log.error('could not spool a message; the client was told to retry', { from, error: (err as Error).message });
          callback(smtpError(451, 'Local error in processing: could not write to the spool, try again later'));
        },
      );
    },
  };
  const server = new GuardedSmtpServer(serverOptions, {
    maxClientsPerAddress: s.maxClientsPerAddress,
    exempt: trusted,
    sessionTimeout: s.sessionTimeout,
    commandTimeout: s.commandTimeout,
    busy: (sessionId) => spooling.has(sessionId),
    onLimit(rule, client) {
      metrics.inc('sessions_limited');
      const what = {
        'per-address': 'too many connections from one address: refused',
        session: 'session time limit: closed',
        command: 'command timeout: closed',
      };
      log.warn(`client ${what[rule]}`, { client, rule });
    },
  });
  server.on('error', (err) => log.warn('smtp listener error', { error: err.message }));
  server.listen(s.port, s.listenAddress);
  try {
    await Promise.race([once(server.server, 'listening'), once(server.server, 'error').then(([e]) => Promise.reject(e))]);
  } catch (err) {
    throw new RelayConfigError(`Cannot listen on ${s.host}:${s.port}: ${(err as Error).message}`);
  }
  return {
    server,
    port: (server.server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
