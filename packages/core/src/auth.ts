import { createHmac } from 'node:crypto';
import { ErrorCodes, SluiceError, SmtpReplyError } from './errors.js';
import type { Reply } from './protocol/reply.js';

export type AuthMechanism = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2';

export interface PasswordAuth {
  user: string;
  pass: string;
}

export interface OAuth2Auth {
  user: string;
  /** A current access token. */
  accessToken?: string;
  /**
   * Returns an access token. Called when there is no `accessToken`, and once more with
   * `{ refresh: true }` when the server refuses the token (it may have expired).
   */
  getAccessToken?: (context: { user: string; refresh: boolean }) => string | Promise<string>;
}

export type AuthOptions = PasswordAuth | OAuth2Auth;

/** Sends one command line and resolves with its reply. `secret` lines are never logged. */
export type Exchange = (line: string, secret: boolean) => Promise<Reply>;

export const AUTH_MECHANISMS: readonly AuthMechanism[] = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'];

const PREFERENCE: AuthMechanism[] = ['PLAIN', 'LOGIN', 'CRAM-MD5'];

function isOAuth(auth: AuthOptions): auth is OAuth2Auth {
  return !('pass' in auth) && ('accessToken' in auth || 'getAccessToken' in auth);
}

export function validateAuth(auth: AuthOptions, forced?: AuthMechanism): void {
  const bad = (msg: string) => new SluiceError(ErrorCodes.EOPTIONS, msg, { permanent: true });
  if (!auth || typeof auth.user !== 'string' || auth.user.length === 0) throw bad('auth.user must be a non-empty string');
  if (/[\r\n\0]/.test(auth.user)) throw bad('auth.user contains CR, LF or NUL');
  if (!isOAuth(auth) && typeof (auth as PasswordAuth).pass !== 'string')
    throw bad('auth.pass must be a string (or give accessToken/getAccessToken for XOAUTH2)');
  if (forced && !AUTH_MECHANISMS.includes(forced)) throw bad(`Unknown authMethod ${forced}`);
  if (forced === 'XOAUTH2' && !isOAuth(auth)) throw bad('authMethod XOAUTH2 needs accessToken or getAccessToken');
}

/** Picks the mechanism: the forced one, else XOAUTH2 for tokens, else the best password mechanism offered. */
export function chooseMechanism(auth: AuthOptions, offered: string[], forced?: AuthMechanism): AuthMechanism {
  if (forced) return forced;
  if (isOAuth(auth)) {
    if (offered.includes('XOAUTH2')) return 'XOAUTH2';
    throw new SluiceError(ErrorCodes.EAUTH, `The server does not offer XOAUTH2 (it offers ${offered.join(', ') || 'no AUTH'})`, {
      command: 'AUTH',
      permanent: true,
    });
  }
  for (const m of PREFERENCE) if (offered.includes(m)) return m;
  throw new SluiceError(ErrorCodes.EAUTH, `No supported AUTH mechanism offered (server offers ${offered.join(', ') || 'none'})`, {
    command: 'AUTH',
    permanent: true,
  });
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function fail(reply: Reply, mechanism: string): SmtpReplyError {
  const err = new SmtpReplyError(ErrorCodes.EAUTH, 'AUTH', reply, `Authentication failed (${mechanism}): ${reply.lines.join(' ')}`);
  return err;
}

function expect(reply: Reply, code: number, mechanism: string): void {
  if (reply.code !== code) throw fail(reply, mechanism);
}

/**
 * Runs one AUTH exchange (RFC 4954). AUTH is a synchronisation point: every step waits for its reply.
 */
export async function authenticate(exchange: Exchange, auth: AuthOptions, mechanism: AuthMechanism): Promise<void> {
  switch (mechanism) {
    case 'PLAIN': {
      const { user, pass } = auth as PasswordAuth;
      // RFC 4616: authzid NUL authcid NUL passwd; sent as an initial response (RFC 4954 §4) to save a round trip.
      const reply = await exchange(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}\r\n`, true);
      expect(reply, 235, mechanism);
      return;
    }
    case 'LOGIN': {
      const { user, pass } = auth as PasswordAuth;
      let reply = await exchange('AUTH LOGIN\r\n', false);
      expect(reply, 334, mechanism);
      reply = await exchange(`${b64(user)}\r\n`, true);
      expect(reply, 334, mechanism);
      reply = await exchange(`${b64(pass)}\r\n`, true);
      expect(reply, 235, mechanism);
      return;
    }
    case 'CRAM-MD5': {
      const { user, pass } = auth as PasswordAuth;
      let reply = await exchange('AUTH CRAM-MD5\r\n', false);
      expect(reply, 334, mechanism);
      // RFC 2195: the challenge is base64; the response is "user HEX(HMAC-MD5(pass, challenge))".
      const challenge = Buffer.from(reply.text.trim(), 'base64').toString('utf8');
      const digest = createHmac('md5', pass).update(challenge).digest('hex');
      reply = await exchange(`${b64(`${user} ${digest}`)}\r\n`, true);
      expect(reply, 235, mechanism);
      return;
    }
    case 'XOAUTH2': {
      const oauth = auth as OAuth2Auth;
      const attempt = async (refresh: boolean): Promise<Reply> => {
        const token = await getToken(oauth, refresh);
        let reply = await exchange(`AUTH XOAUTH2 ${b64(`user=${oauth.user}\x01auth=Bearer ${token}\x01\x01`)}\r\n`, true);
        // On failure the server sends 334 with a JSON error; the client answers an empty line and
        // then gets the final failure reply (Google's XOAUTH2 protocol).
        if (reply.code === 334) reply = await exchange('\r\n', false);
        return reply;
      };
      let reply = await attempt(false);
      if (reply.code !== 235 && oauth.getAccessToken) reply = await attempt(true);
      expect(reply, 235, mechanism);
      return;
    }
  }
}

async function getToken(auth: OAuth2Auth, refresh: boolean): Promise<string> {
  let token: string | undefined;
  if (!refresh && auth.accessToken) token = auth.accessToken;
  else if (auth.getAccessToken) {
    try {
      token = await auth.getAccessToken({ user: auth.user, refresh });
    } catch (cause) {
      // Reconnecting will not mend a token source that throws: the sends it holds fail now.
      throw new SluiceError(ErrorCodes.EAUTH, 'getAccessToken failed', { cause, command: 'AUTH', permanent: true });
    }
  }
  if (!token || typeof token !== 'string' || /[\r\n\0\x01]/.test(token)) {
    throw new SluiceError(ErrorCodes.EAUTH, 'No valid XOAUTH2 access token', { command: 'AUTH', permanent: true });
  }
  return token;
}
