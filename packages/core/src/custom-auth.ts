/**
 * Custom AUTH handlers, as nodemailer's `customAuth`: `{ MYMECH: async (ctx) => { await ctx.sendCommand(line) } }`
 * with `authMethod: 'MYMECH'`. The handler runs the exchange itself over the connection's one
 * request/reply step (RFC 4954 §4: every AUTH step waits for its reply); sluice never logs a line it
 * sends (they carry secrets) and cuts `auth.pass` out of any error it reports.
 */
import { AUTH_MECHANISMS, type AuthMechanism, redactReply } from './auth.js';
import { ErrorCodes, SluiceError, SmtpReplyError } from './errors.js';
import type { Capabilities } from './protocol/capabilities.js';
import type { Reply } from './protocol/reply.js';

/** A reply as nodemailer's `sendCommand` gives it. */
export interface CustomAuthReply {
  /** The line that was sent. */
  command: string;
  /** The whole reply, its lines joined with '\n'. */
  response: string;
  /** The reply code (235, 334, 535…). */
  status: number;
  /** The enhanced status code ('2.7.0'), when the server sent one. */
  code?: string;
  /** The text after the code(s). */
  text: string;
}

/** The credentials a custom handler gets: what `auth` holds, also under `credentials` (nodemailer's shape). */
export interface CustomAuthCredentials {
  user?: string;
  pass?: string;
  options?: unknown;
}

export interface CustomAuthContext {
  auth: CustomAuthCredentials & { method: string; credentials: CustomAuthCredentials };
  /** The mechanism, upper case. */
  method: string;
  /** The EHLO keywords the server offered. */
  extensions: string[];
  /** The AUTH mechanisms the server offered. */
  authMethods: string[];
  /** The SIZE limit, or false. */
  maxAllowedSize: number | false;
  /** Sends one command line (without CRLF) and resolves with its reply, whatever its code: the handler judges it. */
  sendCommand(command: string, done?: (err: Error | null, reply?: CustomAuthReply) => void): Promise<CustomAuthReply>;
  /** For callback-style handlers: authenticated. */
  resolve(): void;
  /** For callback-style handlers: refused. */
  reject(err: unknown): void;
}

/** Resolves (or calls `ctx.resolve()`) once authenticated; throws (or calls `ctx.reject(err)`) when refused. */
export type CustomAuthHandler = (context: CustomAuthContext) => unknown;

/** Sends one AUTH line (never logged) and resolves with its reply. */
export type SecretExchange = (line: string) => Promise<Reply>;

const bad = (message: string) => new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });

/** Checks `customAuth` and returns it keyed by upper-case mechanism names (nodemailer's rule). */
export function checkCustomAuth(value: unknown): Record<string, CustomAuthHandler> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('customAuth must be an object of { MECHANISM: handler }');
  const out: Record<string, CustomAuthHandler> = {};
  for (const [key, handler] of Object.entries(value)) {
    const name = key.trim().toUpperCase();
    if (!/^[A-Z0-9_-]{1,20}$/.test(name)) throw bad(`customAuth key ${JSON.stringify(key)} is not a SASL mechanism name (RFC 4422 §3.1)`);
    if (typeof handler !== 'function') throw bad(`customAuth.${key} must be a function (ctx) => Promise<void>`);
    out[name] = handler as CustomAuthHandler;
  }
  return out;
}

/** The mechanism to force (a customAuth key in upper case), and whether it is a custom one. EOPTIONS for a name that is neither. */
export function resolveAuthMethod(
  value: unknown,
  customAuth: Record<string, CustomAuthHandler> | undefined,
): { authMethod: string | undefined; custom: boolean } {
  if (value === undefined) return { authMethod: undefined, custom: false };
  const upper = typeof value === 'string' ? value.toUpperCase() : value;
  if (customAuth && typeof upper === 'string' && upper in customAuth) return { authMethod: upper, custom: true };
  if (AUTH_MECHANISMS.includes(value as AuthMechanism)) return { authMethod: value as string, custom: false };
  const names = [...AUTH_MECHANISMS, ...Object.keys(customAuth ?? {})].map((n) => JSON.stringify(n)).join(', ');
  throw bad(`Unknown authMethod ${JSON.stringify(value)}: authMethod must be one of ${names} (a custom one needs its customAuth handler)`);
}

/** Runs a custom handler. A refusal becomes EAUTH with the last reply (secrets cut out), a handler's own SluiceError passes as it is. */
export async function customAuthenticate(
  exchange: SecretExchange,
  handler: CustomAuthHandler,
  method: string,
  credentials: CustomAuthCredentials,
  capabilities: Capabilities,
): Promise<void> {
  const secrets = credentials.pass ? [credentials.pass, Buffer.from(credentials.pass).toString('base64')] : [];
  let last: Reply | undefined;
  const sendCommand = async (command: string, done?: (err: Error | null, reply?: CustomAuthReply) => void): Promise<CustomAuthReply> => {
    try {
      if (typeof command !== 'string' || /[\r\n]/.test(command))
        throw new SluiceError(ErrorCodes.EAUTH, `${method}: a command must be one line without CR or LF`, { command: 'AUTH', permanent: true });
      const reply = await exchange(`${command}\r\n`);
      last = reply;
      const answer: CustomAuthReply = { command, response: reply.lines.join('\n'), status: reply.code, text: reply.text };
      if (reply.enhanced) answer.code = reply.enhanced;
      done?.(null, answer);
      return answer;
    } catch (err) {
      if (!done) throw err;
      done(err as Error);
      return Promise.reject(err);
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const result = handler({
        auth: { ...credentials, method, credentials: { user: credentials.user, pass: credentials.pass, options: credentials.options } },
        method,
        extensions: Object.keys(capabilities.raw),
        authMethods: [...capabilities.auth],
        maxAllowedSize: capabilities.size || false,
        sendCommand,
        resolve,
        reject,
      });
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(() => resolve(), reject);
    });
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    const cut = (text: string) => secrets.reduce((out, s) => (s.length >= 3 ? out.split(s).join('***') : out), text);
    const why = cut(err instanceof Error ? err.message : String(err));
    if (last) {
      const safe = redactReply(last, secrets);
      throw new SmtpReplyError(ErrorCodes.EAUTH, 'AUTH', safe, `Authentication failed (${method}): ${why}`);
    }
    throw new SluiceError(ErrorCodes.EAUTH, `Authentication failed (${method}): ${why}`, { command: 'AUTH', permanent: true });
  }
}
