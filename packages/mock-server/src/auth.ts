import { createHmac, randomBytes } from 'node:crypto';
import type { AuthMechanism, Config } from './config.js';

/**
 * SASL mechanisms for SMTP AUTH (RFC 4954) as small state machines: each step either asks the client
 * for another line (`334 <challenge>`) or finishes.
 */
export type SaslStep =
  | { kind: 'challenge'; challenge: string; next: (response: string) => SaslStep }
  /** Credentials checked: `user` null means they were wrong. `secret` is the password or token given
   * (only a broken server would ever show it: echoCredentialsOnFailure). */
  | { kind: 'done'; user: string | null; claimed: string | null; secret: string | null }
  /** The response was not valid base64 or not shaped as the mechanism requires. */
  | { kind: 'malformed' };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 4954 §4: responses are base64; "=" stands for an empty initial response. */
function decode(text: string): string | null {
  if (text === '=') return '';
  if (!BASE64.test(text)) return null;
  return Buffer.from(text, 'base64').toString('utf8');
}

const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');

const malformed: SaslStep = { kind: 'malformed' };

/**
 * Start an exchange. `initial` is the initial response given on the AUTH line (undefined when
 * absent), per RFC 4954 §4.
 */
export function startSasl(mechanism: AuthMechanism, initial: string | undefined, cfg: Config): SaslStep {
  switch (mechanism) {
    case 'PLAIN':
      return initial === undefined ? { kind: 'challenge', challenge: '', next: (r) => plain(r, cfg) } : plain(initial, cfg);
    case 'LOGIN': {
      const askPassword = (username: string): SaslStep => ({
        kind: 'challenge',
        challenge: encode('Password:'),
        next: (r) => {
          const password = decode(r);
          if (password === null) return malformed;
          return { kind: 'done', user: cfg.users.get(username) === password ? username : null, claimed: username, secret: password };
        },
      });
      const withUser = (r: string): SaslStep => {
        const username = decode(r);
        return username === null ? malformed : askPassword(username);
      };
      return initial === undefined ? { kind: 'challenge', challenge: encode('Username:'), next: withUser } : withUser(initial);
    }
    case 'CRAM-MD5': {
      // RFC 2195 §2: the challenge is a msg-id-like string; it must differ every time.
      if (initial !== undefined) return malformed;
      const challenge = `<${randomBytes(8).toString('hex')}.${Date.now()}@${cfg.hostname}>`;
      return {
        kind: 'challenge',
        challenge: encode(challenge),
        next: (r) => {
          const text = decode(r);
          if (text === null) return malformed;
          const space = text.lastIndexOf(' ');
          if (space <= 0) return malformed;
          const username = text.slice(0, space);
          const digest = text.slice(space + 1).toLowerCase();
          const password = cfg.users.get(username);
          const ok = password !== undefined && createHmac('md5', password).update(challenge).digest('hex') === digest;
          return { kind: 'done', user: ok ? username : null, claimed: username, secret: digest };
        },
      };
    }
    case 'XOAUTH2':
      return initial === undefined ? { kind: 'challenge', challenge: '', next: (r) => xoauth2(r, cfg) } : xoauth2(initial, cfg);
  }
}

/** RFC 4616 §2: [authzid] NUL authcid NUL passwd. */
function plain(response: string, cfg: Config): SaslStep {
  const text = decode(response);
  if (text === null) return malformed;
  const parts = text.split('\0');
  if (parts.length !== 3) return malformed;
  const [authzid, username, password] = parts;
  // We do not let anyone act for someone else.
  const ok = cfg.users.get(username) === password && (authzid === '' || authzid === username);
  return { kind: 'done', user: ok ? username : null, claimed: username, secret: password };
}

/** Google's XOAUTH2: base64("user=" U ^A "auth=Bearer " T ^A ^A). */
function xoauth2(response: string, cfg: Config): SaslStep {
  const text = decode(response);
  if (text === null) return malformed;
  const m = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]+)\x01\x01$/.exec(text);
  if (!m) return malformed;
  const [, username, token] = m;
  if (cfg.tokens.get(username)?.has(token)) return { kind: 'done', user: username, claimed: username, secret: token };
  // Google answers a bad token with a 334 carrying a JSON error; the client sends an empty line and
  // only then gets the 535.
  const error = encode(JSON.stringify({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' }));
  return { kind: 'challenge', challenge: error, next: () => ({ kind: 'done', user: null, claimed: username, secret: token }) };
}
