import { ErrorCodes, SluiceError } from '../errors.js';

/** Delivery status notification request (RFC 3461). */
export interface DsnOptions {
  /** RET: return the full message or only its headers in a bounce. */
  ret?: 'FULL' | 'HDRS';
  /** ENVID: an id of yours, returned in the DSN. */
  envid?: string;
  /** NOTIFY for every recipient: 'NEVER', or any of SUCCESS, FAILURE, DELAY. */
  notify?: 'NEVER' | Array<'SUCCESS' | 'FAILURE' | 'DELAY'>;
  /** ORCPT: the original recipient, per recipient address (defaults to none). */
  orcpt?: Record<string, string>;
}

export interface Envelope {
  /** Reverse-path. The empty string is the null sender `<>` (bounces, RFC 5321 §4.5.5). */
  from: string;
  to: string[];
  /** Size in bytes, sent as SIZE= when the server offers SIZE (RFC 1870). Known sizes are computed. */
  size?: number;
  dsn?: DsnOptions;
}

/** Parameters of one transaction, after checking them against what the server offers. */
export interface MailParams {
  size?: number;
  body8bit?: boolean;
  smtpUtf8?: boolean;
  dsn?: DsnOptions;
}

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;
const LABEL = /^[A-Za-z0-9\u0080-\u{10FFFF}](?:[A-Za-z0-9\-\u0080-\u{10FFFF}]*[A-Za-z0-9\u0080-\u{10FFFF}])?$/u;
// C0 and C1 controls, and the Unicode line and paragraph separators: none belongs in an address.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const NON_ASCII = /[^\u0000-\u007f]/;
/** The common case, checked with one regex: an ASCII dot-atom @ an ASCII host name. */
const SIMPLE_ADDRESS =
  /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function envelopeError(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EENVELOPE, message, { permanent: true, command: 'ENVELOPE' });
}

/**
 * Checks an address against RFC 5321 §4.1.2 (Mailbox) and RFC 6531 (UTF-8 when SMTPUTF8 is used).
 * Anything that could inject a command (CR, LF, NUL, other controls, angle brackets) is refused
 * before a byte is written: RFC 5321 §2.3.8 and the smuggling attacks on it make this a hard rule.
 */
export function validateAddress(address: string, role: 'sender' | 'recipient'): void {
  if (typeof address !== 'string') throw envelopeError(`The ${role} address must be a string`);
  if (role === 'sender' && address === '') return; // the null reverse-path
  if (address.length <= 255 && SIMPLE_ADDRESS.test(address) && address.indexOf('@') <= 64) return;
  const shown = JSON.stringify(address.length > 80 ? `${address.slice(0, 80)}…` : address);
  if (CONTROL.test(address)) throw envelopeError(`The ${role} address ${shown} contains a control character (CR, LF, NUL…)`);
  // RFC 5321 allows "<" and ">" inside a quoted local part, but a careless server may end the path
  // there and read the rest as parameters: refused.
  if (/[<>]/.test(address)) throw envelopeError(`The ${role} address ${shown} contains "<" or ">"`);
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) throw envelopeError(`The ${role} address ${shown} is not of the form local@domain`);
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (Buffer.byteLength(local) > 64) throw envelopeError(`The local part of ${shown} is longer than 64 octets (RFC 5321 §4.5.3.1.1)`);
  if (Buffer.byteLength(domain) > 255) throw envelopeError(`The domain of ${shown} is longer than 255 octets (RFC 5321 §4.5.3.1.2)`);
  if (local.startsWith('"')) {
    // Quoted-string: qtextSMTP or quoted-pair (RFC 5321 §4.1.2).
    if (!/^"(?:[\u0020\u0021\u0023-\u005b\u005d-\u007e\u0080-\u{10FFFF}]|\\[\u0020-\u007e])*"$/u.test(local)) {
      throw envelopeError(`The local part of ${shown} is not a valid quoted string`);
    }
  } else if (!local.split('.').every((atom) => ATEXT.test(atom))) {
    throw envelopeError(`The local part of ${shown} has a character not allowed in an address (RFC 5321 §4.1.2)`);
  }
  if (domain.startsWith('[')) {
    if (!/^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/.test(domain)) {
      throw envelopeError(`The address literal of ${shown} is not valid (RFC 5321 §4.1.3)`);
    }
  } else if (!domain.split('.').every((label) => LABEL.test(label))) {
    throw envelopeError(`The domain of ${shown} is not a valid domain name`);
  }
}

export function needsSmtpUtf8(envelope: Envelope): boolean {
  if (NON_ASCII.test(envelope.from)) return true;
  for (const to of envelope.to) if (NON_ASCII.test(to)) return true;
  return false;
}

/** Validates an envelope. Throws EENVELOPE with the first problem found. */
export function validateEnvelope(envelope: Envelope): void {
  if (!envelope || typeof envelope !== 'object') throw envelopeError('The envelope is missing');
  validateAddress(envelope.from, 'sender');
  if (!Array.isArray(envelope.to) || envelope.to.length === 0) throw envelopeError('The envelope has no recipient');
  for (const to of envelope.to) validateAddress(to, 'recipient');
  if (envelope.size !== undefined && !(Number.isSafeInteger(envelope.size) && envelope.size >= 0)) {
    throw envelopeError('envelope.size must be a non-negative integer');
  }
  const dsn = envelope.dsn;
  if (dsn) {
    if (dsn.ret !== undefined && dsn.ret !== 'FULL' && dsn.ret !== 'HDRS') throw envelopeError("dsn.ret must be 'FULL' or 'HDRS'");
    if (dsn.envid !== undefined) {
      if (typeof dsn.envid !== 'string' || dsn.envid.length === 0 || dsn.envid.length > 100 || CONTROL.test(dsn.envid) || NON_ASCII.test(dsn.envid)) {
        throw envelopeError('dsn.envid must be 1 to 100 printable ASCII characters (RFC 3461 §4.4)');
      }
    }
    if (dsn.notify !== undefined && dsn.notify !== 'NEVER') {
      const ok = Array.isArray(dsn.notify) && dsn.notify.length > 0 && dsn.notify.every((n) => n === 'SUCCESS' || n === 'FAILURE' || n === 'DELAY');
      if (!ok) throw envelopeError("dsn.notify must be 'NEVER' or a non-empty list of 'SUCCESS', 'FAILURE', 'DELAY'");
    }
    for (const [rcpt, orcpt] of Object.entries(dsn.orcpt ?? {})) {
      if (typeof orcpt !== 'string' || CONTROL.test(orcpt) || NON_ASCII.test(orcpt)) {
        throw envelopeError(`dsn.orcpt for ${rcpt} must be printable ASCII`);
      }
    }
  }
}

/** xtext encoding (RFC 3461 §4): "+" and "=" and anything outside 0x21–0x7E become +XX. */
export function xtext(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.charCodeAt(0);
    out += c < 0x21 || c > 0x7e || ch === '+' || ch === '=' ? `+${c.toString(16).toUpperCase().padStart(2, '0')}` : ch;
  }
  return out;
}

/** `MAIL FROM:<addr> [params]` (RFC 5321 §4.1.1.2). Inputs are already validated. */
export function mailCommand(from: string, params: MailParams): string {
  let cmd = `MAIL FROM:<${from}>`;
  if (params.size !== undefined) cmd += ` SIZE=${params.size}`;
  if (params.body8bit) cmd += ' BODY=8BITMIME';
  if (params.smtpUtf8) cmd += ' SMTPUTF8';
  if (params.dsn?.ret) cmd += ` RET=${params.dsn.ret}`;
  if (params.dsn?.envid) cmd += ` ENVID=${xtext(params.dsn.envid)}`;
  return `${cmd}\r\n`;
}

/** `RCPT TO:<addr> [params]` (RFC 5321 §4.1.1.3). */
export function rcptCommand(to: string, dsn: DsnOptions | undefined): string {
  let cmd = `RCPT TO:<${to}>`;
  if (dsn?.notify) cmd += ` NOTIFY=${dsn.notify === 'NEVER' ? 'NEVER' : dsn.notify.join(',')}`;
  const orcpt = dsn?.orcpt?.[to];
  if (orcpt) cmd += ` ORCPT=rfc822;${xtext(orcpt)}`;
  return `${cmd}\r\n`;
}

/** Validates a client hostname for EHLO (RFC 5321 §4.1.1.1: a domain or an address literal). */
export function validateClientName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || CONTROL.test(name) || /\s/.test(name)) {
    throw new SluiceError(
      ErrorCodes.EOPTIONS,
      `Invalid client name for EHLO: ${JSON.stringify(name)}: name must be a domain or an address literal, without spaces or control characters`,
      { permanent: true },
    );
  }
}
