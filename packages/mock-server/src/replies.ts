/**
 * Reply formatting. Replies are built once per configuration as ready-to-write strings, so the hot
 * path only concatenates constants.
 */
import { MockServerError } from './errors.js';

const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;

/** One reply line (or several, for a multi-line text) with CRLF. `enhanced` is dropped when the
 * ENHANCEDSTATUSCODES extension is off (RFC 2034 §3: the codes are only sent once negotiated). */
export function formatReply(code: number, enhanced: string | undefined, text: string, withEnhanced: boolean): string {
  const lines = text.split(/\r?\n/);
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? ' ' : '-';
    const prefix = withEnhanced && enhanced ? `${enhanced} ` : '';
    out += `${code}${sep}${prefix}${lines[i]}\r\n`;
  }
  return out;
}

export interface ParsedReply {
  code: number;
  /** Ready to write, CRLF-terminated. */
  line: string;
}

/**
 * Normalise a user-supplied reply (fault rules, limit replies): `'452 4.5.3 Too many recipients'`,
 * a multi-line string `'421-a\n421 b'`, or `{ code, enhanced, text }`. Enhanced codes are removed when
 * the extension is off, whatever the user wrote, so the server never contradicts its own EHLO.
 */
export function parseReply(reply: string | { code: number; enhanced?: string; text?: string }, withEnhanced: boolean): ParsedReply {
  if (typeof reply === 'object') {
    const { code, enhanced, text } = reply;
    if (!Number.isInteger(code) || code < 200 || code > 599) {
      throw new MockServerError('EMOCKOPTIONS', `reply code must be an integer 200..599, got ${String(code)}`);
    }
    if (enhanced !== undefined && !/^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced)) {
      throw new MockServerError('EMOCKOPTIONS', `enhanced status code must look like 4.5.3, got ${enhanced}`);
    }
    return { code, line: formatReply(code, enhanced, text ?? (code < 400 ? 'Ok' : 'Error'), withEnhanced) };
  }
  const lines = reply.replace(/\r?\n$/, '').split(/\r?\n/);
  let code = 0;
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const m = /^([2-5]\d\d)(?:[ -](.*))?$/.exec(lines[i]);
    if (!m) throw new MockServerError('EMOCKOPTIONS', `reply must start with a 3-digit code: ${JSON.stringify(reply)}`);
    const lineCode = Number(m[1]);
    if (i === 0) code = lineCode;
    else if (lineCode !== code) throw new MockServerError('EMOCKOPTIONS', `all lines of a reply must carry the same code: ${JSON.stringify(reply)}`);
    let text = m[2] ?? '';
    if (!withEnhanced) text = text.replace(ENHANCED_PREFIX, '');
    out += `${code}${i === lines.length - 1 ? ' ' : '-'}${text}\r\n`;
  }
  return { code, line: out };
}

/** Every fixed reply the session sends, prebuilt for one configuration. */
export interface Replies {
  greeting: string;
  heloOk: string;
  mailOk: string;
  rcptOk: string;
  dataGo: string;
  /** Followed by the queue id and CRLF. */
  queuedPrefix: string;
  rsetOk: string;
  noopOk: string;
  quit: string;
  help: string;
  vrfy: string;
  startTls: string;
  authOk: string;
  authFailed: string;
  authCancelled: string;
  authDecode: string;
  authNotEnabled: string;
  authAlready: string;
  authInTransaction: string;
  authMechanism: string;
  xoauth2Failed: string;
  tlsRequired: string;
  authRequired: string;
  tlsActive: string;
  notImplemented: string;
  unknownCommand: string;
  emptyLine: string;
  lineTooLong: string;
  tooManyErrors: string;
  needHelo: string;
  nestedMail: string;
  needMail: string;
  noRecipients: string;
  dataAfterBdat: string;
  tooManyRecipients: string;
  messageTooBig: string;
  sizeExceeded: string;
  throttled: string;
  tooManyMessages: string;
  connectionLimit: string;
  pipelinedAfterData: string;
  closing: string;
  idle: string;
  rejected: string;
  syntaxEhlo: string;
  syntaxHelo: string;
  syntaxMail: string;
  syntaxRcpt: string;
  syntaxData: string;
  syntaxBdat: string;
  syntaxRset: string;
  syntaxQuit: string;
  syntaxStartTls: string;
  syntaxAuth: string;
  badSender: string;
  badRecipient: string;
  nonAsciiAddress: string;
  paramsWithoutEhlo: string;
}

/** Replies the options may change, already parsed (ready-to-write lines). */
export interface ConfiguredReplies {
  connectionLimit: string;
  tooManyRecipients: string;
}

export function buildReplies(hostname: string, enhanced: boolean, configured: ConfiguredReplies): Replies {
  const r = (code: number, enh: string | undefined, text: string) => formatReply(code, enh, text, enhanced);
  return {
    // RFC 2034 §3: no enhanced code in the greeting.
    greeting: `220 ${hostname} ESMTP sluice mock server\r\n`,
    heloOk: `250 ${hostname}\r\n`,
    mailOk: r(250, '2.1.0', 'Ok'),
    rcptOk: r(250, '2.1.5', 'Ok'),
    // Postfix sends 354 without an enhanced code as well.
    dataGo: '354 End data with <CR><LF>.<CR><LF>\r\n',
    queuedPrefix: enhanced ? '250 2.0.0 Ok: queued as ' : '250 Ok: queued as ',
    rsetOk: r(250, '2.0.0', 'Ok'),
    noopOk: r(250, '2.0.0', 'Ok'),
    quit: r(221, '2.0.0', 'Bye'),
    help: r(214, '2.0.0', 'See RFC 5321'),
    // RFC 5321 §3.5.3: 252 when the server will not verify but will accept.
    vrfy: r(252, '2.0.0', 'Cannot VRFY user, but will accept message and attempt delivery'),
    startTls: r(220, '2.0.0', 'Ready to start TLS'),
    authOk: r(235, '2.7.0', 'Authentication successful'),
    authFailed: r(535, '5.7.8', 'Authentication credentials invalid'),
    // RFC 4954 §4: a "*" response cancels the exchange and MUST get 501.
    authCancelled: r(501, '5.0.0', 'Authentication cancelled'),
    authDecode: r(501, '5.5.2', 'Cannot decode response'),
    authNotEnabled: r(503, '5.5.1', 'Error: authentication not enabled'),
    authAlready: r(503, '5.5.1', 'Error: already authenticated'),
    // RFC 4954 §4: AUTH is not permitted during a mail transaction.
    authInTransaction: r(503, '5.5.1', 'Error: MAIL transaction in progress'),
    authMechanism: r(504, '5.5.4', 'Unrecognized authentication type'),
    xoauth2Failed: r(535, '5.7.8', 'Username and Password not accepted'),
    tlsRequired: r(530, '5.7.0', 'Must issue a STARTTLS command first'),
    authRequired: r(530, '5.7.0', 'Authentication required'),
    tlsActive: r(503, '5.5.1', 'Error: TLS already active'),
    notImplemented: r(502, '5.5.1', 'Error: command not implemented'),
    // RFC 5321 §4.2.4: 500 for a command that is not recognised at all.
    unknownCommand: r(500, '5.5.2', 'Error: command not recognized'),
    emptyLine: r(500, '5.5.2', 'Error: bad syntax'),
    lineTooLong: r(500, '5.5.2', 'Line too long'),
    tooManyErrors: r(421, '4.7.0', `${hostname} Error: too many errors`),
    needHelo: r(503, '5.5.1', 'Error: send HELO/EHLO first'),
    nestedMail: r(503, '5.5.1', 'Error: nested MAIL command'),
    needMail: r(503, '5.5.1', 'Error: need MAIL command'),
    noRecipients: r(554, '5.5.1', 'Error: No valid recipients'),
    dataAfterBdat: r(503, '5.5.1', 'Error: DATA and BDAT cannot be mixed in one transaction'),
    // RFC 5321 §4.5.3.1.8: 452 by default (the option may say otherwise).
    tooManyRecipients: configured.tooManyRecipients,
    messageTooBig: r(552, '5.3.4', 'Error: message file too big'),
    sizeExceeded: r(552, '5.3.4', 'Message size exceeds fixed maximum message size'),
    // Amazon SES's wording.
    throttled: r(454, '4.7.0', 'Throttling failure: Maximum sending rate exceeded.'),
    tooManyMessages: r(421, '4.4.5', `${hostname} Too many messages on this connection`),
    connectionLimit: configured.connectionLimit,
    // forbidPipeliningAfterData, after Haraka 3.3's anti-smuggling check (the wording is ours).
    pipelinedAfterData: r(503, '5.5.0', 'Error: command pipelined after end of DATA'),
    closing: r(421, '4.7.0', `${hostname} Service not available, closing transmission channel`),
    idle: r(421, '4.4.2', `${hostname} Error: timeout exceeded`),
    rejected: r(503, '5.5.1', 'Error: no service; send QUIT'),
    syntaxEhlo: r(501, '5.5.4', 'Syntax: EHLO hostname'),
    syntaxHelo: r(501, '5.5.4', 'Syntax: HELO hostname'),
    syntaxMail: r(501, '5.5.4', 'Syntax: MAIL FROM:<address>'),
    syntaxRcpt: r(501, '5.5.4', 'Syntax: RCPT TO:<address>'),
    syntaxData: r(501, '5.5.4', 'Syntax: DATA'),
    syntaxBdat: r(501, '5.5.4', 'Syntax: BDAT size [LAST]'),
    syntaxRset: r(501, '5.5.4', 'Syntax: RSET'),
    syntaxQuit: r(501, '5.5.4', 'Syntax: QUIT'),
    syntaxStartTls: r(501, '5.5.4', 'Syntax: STARTTLS'),
    syntaxAuth: r(501, '5.5.4', 'Syntax: AUTH mechanism [initial-response]'),
    badSender: r(501, '5.1.7', 'Bad sender address syntax'),
    badRecipient: r(501, '5.1.3', 'Bad recipient address syntax'),
    // RFC 6531 §3.5: non-ASCII addresses only in an SMTPUTF8 transaction.
    nonAsciiAddress: r(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8'),
    // RFC 5321 §4.1.1.1: service extensions only after EHLO.
    paramsWithoutEhlo: r(555, '5.5.4', 'Error: parameters need EHLO'),
  };
}

/** The reply code of a prebuilt or parsed reply line. */
export function replyCode(line: string): number {
  return (line.charCodeAt(0) - 48) * 100 + (line.charCodeAt(1) - 48) * 10 + (line.charCodeAt(2) - 48);
}
