import os from 'node:os';
import { authenticate, chooseMechanism } from '../auth.js';
import { ErrorCodes, SluiceError, SmtpReplyError } from '../errors.js';
import type { ConnectionOptions } from '../options.js';
import { type Capabilities, parseCapabilities } from '../protocol/capabilities.js';
import { defaultClientName } from '../protocol/client-name.js';
import type { Reply } from '../protocol/reply.js';
import { redactAuth } from './trace.js';

/**
 * What setup needs from its connection: one request/reply exchange (as auth.ts has it), the TLS
 * upgrade, and whether unread bytes wait in the reply parser.
 */
export interface SetupSession {
  /** Writes `line` (nothing for the greeting) and resolves with its reply. `what` is logged and names a timeout; never a secret. */
  request(line: string | null, timeout: number, what: string): Promise<Reply>;
  /** Bytes received and not yet parsed into a reply. */
  readonly partial: boolean;
  readonly encrypted: boolean;
  /** The connection's own address, for the default EHLO name (an address literal). */
  readonly localAddress: string | undefined;
  /** Runs the TLS handshake over the current socket. */
  upgrade(): Promise<void>;
}

export interface SetupResult {
  capabilities: Capabilities;
  authenticated: boolean;
}

/** Greeting, EHLO (HELO as a fallback), STARTTLS when offered, AUTH when configured. Rejects with a SluiceError. */
export async function setup(session: SetupSession, options: ConnectionOptions): Promise<SetupResult> {
  const greeting = await session.request(null, options.timeouts.greeting, 'GREETING');
  if (greeting.code !== 220)
    throw new SmtpReplyError(ErrorCodes.ECONNECTION, 'GREETING', greeting, `The server refused the connection: ${greeting.lines.join(' ')}`);
  let capabilities = await hello(session, options);
  capabilities = await maybeStartTls(session, options, capabilities);
  const authenticated = await maybeAuthenticate(session, options, capabilities);
  return { capabilities, authenticated };
}

async function hello(session: SetupSession, options: ConnectionOptions): Promise<Capabilities> {
  const { timeouts } = options;
  const name = options.name ?? defaultClientName(os.hostname(), session.localAddress);
  const ehlo = await session.request(`EHLO ${name}\r\n`, timeouts.command, 'EHLO');
  if (ehlo.code === 250) return parseCapabilities(ehlo);
  // RFC 5321 §3.2: a server that does not know EHLO answers "command unrecognized" (500), "not
  // implemented" (502) or "parameter not implemented" (504): only then fall back to HELO. A 4xx
  // (421 included) is "not now", and another 5xx (554 "no service") a refusal: falling back would lose
  // every extension, STARTTLS first, so the attempt fails with the reply instead.
  if (ehlo.code !== 500 && ehlo.code !== 502 && ehlo.code !== 504) throw new SmtpReplyError(ErrorCodes.ECONNECTION, 'EHLO', ehlo);
  const helo = await session.request(`HELO ${name}\r\n`, timeouts.command, 'HELO');
  if (helo.code !== 250) throw new SmtpReplyError(ErrorCodes.EPROTOCOL, 'HELO', helo);
  return parseCapabilities(null);
}

async function maybeStartTls(session: SetupSession, options: ConnectionOptions, capabilities: Capabilities): Promise<Capabilities> {
  const { requireTLS, ignoreTLS } = options;
  if (session.encrypted) return capabilities;
  if (!capabilities.starttls || ignoreTLS) {
    if (requireTLS) {
      throw new SluiceError(ErrorCodes.ETLS, ignoreTLS ? 'requireTLS and ignoreTLS are both set' : 'TLS is required but the server does not offer STARTTLS', {
        command: 'STARTTLS',
        permanent: true,
      });
    }
    return capabilities;
  }
  const reply = await session.request('STARTTLS\r\n', options.timeouts.command, 'STARTTLS');
  if (reply.code !== 220) throw new SmtpReplyError(ErrorCodes.ETLS, 'STARTTLS', reply);
  // RFC 3207 §4.2 / CVE-2011-0411: anything the server sent after the 220 in clear text would be
  // injected into the TLS session. No reply is owed now; any buffered byte is an attack.
  if (session.partial) throw new SluiceError(ErrorCodes.ETLS, 'The server sent data after its STARTTLS reply', { command: 'STARTTLS', permanent: true });
  await session.upgrade();
  // RFC 3207 §4.2: forget everything learnt before TLS and say EHLO again.
  return hello(session, options);
}

async function maybeAuthenticate(session: SetupSession, options: ConnectionOptions, capabilities: Capabilities): Promise<boolean> {
  const { auth, authMethod, allowInsecureAuth, timeouts } = options;
  if (!auth) return false;
  if (!session.encrypted && !allowInsecureAuth) {
    throw new SluiceError(
      ErrorCodes.EAUTH,
      'Refusing to send credentials over an unencrypted connection (the server offers no STARTTLS, or ignoreTLS is set); set allowInsecureAuth to override',
      { command: 'AUTH', permanent: true },
    );
  }
  const mechanism = chooseMechanism(auth, capabilities.auth, authMethod);
  await authenticate((line, secret) => session.request(line, timeouts.command, secret ? redactAuth(line) : line.trim()), auth, mechanism);
  return true;
}
