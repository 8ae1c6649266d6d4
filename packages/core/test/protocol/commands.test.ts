import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, SluiceError } from '../../src/errors.js';
import {
  type DsnOptions,
  type Envelope,
  mailCommand,
  needsSmtpUtf8,
  rcptCommand,
  validateAddress,
  validateClientName,
  validateEnvelope,
  xtext,
} from '../../src/protocol/commands.js';
import { thrown } from './util.js';


function expectEnvelopeError(fn: () => unknown, message?: RegExp): SluiceError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(SluiceError);
  const e = err as SluiceError;
  expect(e.code).toBe(ErrorCodes.EENVELOPE);
  expect(e.permanent).toBe(true);
  if (message) expect(e.message).toMatch(message);
  return e;
}

function passes(address: string, role: 'sender' | 'recipient' = 'recipient'): boolean {
  try {
    validateAddress(address, role);
    return true;
  } catch (err) {
    if (!(err instanceof SluiceError) || err.code !== ErrorCodes.EENVELOPE) throw err;
    return false;
  }
}

/** A decoder for RFC 3461 §4 xtext; throws on anything that is not xtext. */
function xtextDecode(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (value[i] === '+') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`bad hexchar at ${i}: ${JSON.stringify(value)}`);
      out += String.fromCharCode(Number.parseInt(hex, 16));
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && value[i] !== '=') {
      out += value[i];
    } else {
      throw new Error(`not xtext at ${i}: ${JSON.stringify(value)}`);
    }
  }
  return out;
}

const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;

/** Count of a substring. */
const count = (s: string, sub: string) => s.split(sub).length - 1;

// ---------------------------------------------------------------------------------------------------

describe('validateAddress: accepted', () => {
  it.each([
    'user@example.com',
    'first.last+tag@sub.example.co.uk',
    "o'brien@example.com",
    "!#$%&'*+-/=?^_`{|}~@example.com",
    'x@localhost',
    'a-b@x-y.example',
    'USER@EXAMPLE.COM',
    '123@456.com',
    `${'a'.repeat(64)}@example.com`,
    '"john doe"@example.com',
    '"a\\"b"@example.com',
    '"a\\\\b"@example.com',
    '"a@b"@example.com',
    '"."@example.com',
    '""@example.com',
    'user@[192.0.2.1]',
    'user@[IPv6:2001:db8::1]',
    'user@[IPv6:::ffff:192.0.2.1]',
  ])('accepts %j', (address) => {
    expect(() => validateAddress(address, 'recipient')).not.toThrow();
    expect(() => validateAddress(address, 'sender')).not.toThrow();
  });

  it.each(['用户@例子.广告', 'josé@exämple.com', 'пользователь@пример.рф', 'user@bücher.example', 'δοκιμή@παράδειγμα.δοκιμή', '😀@example.com'])(
    'accepts the UTF-8 address %j (RFC 6531) and needsSmtpUtf8 says so',
    (address) => {
      expect(() => validateAddress(address, 'recipient')).not.toThrow();
      expect(needsSmtpUtf8({ from: address, to: ['a@example.com'] })).toBe(true);
      expect(needsSmtpUtf8({ from: 'a@example.com', to: ['b@example.com', address] })).toBe(true);
      expect(needsSmtpUtf8({ from: '', to: [address] })).toBe(true);
    },
  );

  it('needsSmtpUtf8 is false for an ASCII envelope', () => {
    expect(needsSmtpUtf8({ from: 'a@example.com', to: ['"q t"@example.com', 'b@[192.0.2.1]'] })).toBe(false);
    expect(needsSmtpUtf8({ from: '', to: ['b@example.com'] })).toBe(false);
  });

  it('accepts the null reverse-path "" for the sender only', () => {
    expect(() => validateAddress('', 'sender')).not.toThrow();
    expectEnvelopeError(() => validateAddress('', 'recipient'));
  });

  it('counts the 64-octet local part limit in bytes, not characters', () => {
    expect(() => validateAddress(`${'é'.repeat(32)}@example.com`, 'recipient')).not.toThrow(); // 64 bytes
    expectEnvelopeError(() => validateAddress(`${'é'.repeat(33)}@example.com`, 'recipient'), /64 octets/); // 66 bytes
  });
});

describe('validateAddress: refused with EENVELOPE, permanent', () => {
  it.each([
    ['CR', 'a\r@example.com'],
    ['LF', 'a\n@example.com'],
    ['CRLF command injection', 'a@example.com>\r\nRCPT TO:<victim@example.org'],
    ['CRLF at the end', 'a@example.com\r\n'],
    ['LF in the domain', 'a@exam\nple.com'],
    ['NUL', 'a\0@example.com'],
    ['TAB', 'a\t@example.com'],
    ['ESC', 'a\x1b@example.com'],
    ['DEL', 'a\x7f@example.com'],
    ['a control in a quoted local part', '"a\rb"@example.com'],
    ['a NUL in a quoted local part', '"a\0b"@example.com'],
  ])('%s', (_name, address) => {
    expectEnvelopeError(() => validateAddress(address, 'recipient'), /control character/);
    expectEnvelopeError(() => validateAddress(address, 'sender'), /control character/);
  });

  it.each([
    ['angle brackets around', '<a@example.com>'],
    ['"<" in the local part', 'a<b@example.com'],
    ['">" in the local part', 'a>b@example.com'],
    ['">" in the domain', 'a@exa>mple.com'],
    ['"<" in the domain', 'a@example.com<'],
    ['a space in the local part', 'a b@example.com'],
    ['a leading space', ' a@example.com'],
    ['a trailing space', 'a@example.com '],
    ['a space in the domain', 'a@exa mple.com'],
    ['no "@"', 'example.com'],
    ['empty local part', '@example.com'],
    ['empty domain', 'a@'],
    ['only "@"', '@'],
    ['empty string (recipient)', ''],
    ['a 65-octet local part', `${'a'.repeat(65)}@example.com`],
    ['a domain over 255 octets', `a@${`${'a'.repeat(63)}.`.repeat(4)}com`],
    ['an empty atom', 'a..b@example.com'],
    ['a leading dot', '.a@example.com'],
    ['a trailing dot in the local part', 'a.@example.com'],
    ['an empty label', 'a@example..com'],
    ['a trailing dot in the domain', 'a@example.com.'],
    ['a label starting with "-"', 'a@-example.com'],
    ['a label ending with "-"', 'a@example-.com'],
    ['"_" in the domain', 'a@ex_ample.com'],
    ['a comma', 'a,b@example.com'],
    ['a semicolon', 'a;b@example.com'],
    ['a backslash outside quotes', 'a\\b@example.com'],
    ['an unterminated quoted string', '"abc@example.com'],
    ['a quote in the middle of a quoted string', '"a"b"@example.com'],
    ['a bare backslash at the end of a quoted string', '"a\\"@example.com'],
    ['a bad IPv4 literal', 'a@[192.0.2]'],
    ['a literal with garbage', 'a@[example.com]'],
    ['an unclosed literal', 'a@[192.0.2.1'],
    ['a route (source routing)', '@relay.example:a@example.com'],
  ])('%s: %j', (_name, address) => {
    expectEnvelopeError(() => validateAddress(address, 'recipient'));
  });

  it('refuses a value that is not a string', () => {
    expectEnvelopeError(() => validateAddress(undefined as unknown as string, 'sender'), /must be a string/);
    expectEnvelopeError(() => validateAddress(42 as unknown as string, 'recipient'), /must be a string/);
  });

  it('names the role in the message and truncates long addresses', () => {
    expectEnvelopeError(() => validateAddress('nope', 'sender'), /sender/);
    const e = expectEnvelopeError(() => validateAddress(`${'x'.repeat(500)}\n`, 'recipient'), /recipient/);
    expect(e.message.length).toBeLessThan(300);
  });

  it('sets command to ENVELOPE', () => {
    expect(expectEnvelopeError(() => validateAddress('nope', 'recipient')).command).toBe('ENVELOPE');
  });
});

// ---------------------------------------------------------------------------------------------------
// No CR or LF from user input ever reaches the wire.

const trickyChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcXYZ019.-+_=!#~\'"\\@<>[]: ', 'é', '€', '用', '😀') },
  { weight: 1, arbitrary: fc.constantFrom('\r', '\n', '\0', '\t', '\x7f', '\x85', '\u2028') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const trickyString = (maxLength: number) => fc.array(trickyChar, { maxLength }).map((a) => a.join(''));

const atom = fc.stringMatching(/^[a-z0-9+_=!#~'-]{1,8}$/);
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?$/);
const validAddress = fc
  .tuple(fc.array(atom, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 1, maxLength: 4 }))
  .map(([l, d]) => `${l.join('.')}@${d.join('.')}`);
/** ASCII strings biased towards what xtext must encode. */
const asciiParam = fc
  .array(
    fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
      { weight: 3, arbitrary: fc.constantFrom(0x2b, 0x3d, 0x20) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xff }) },
    ),
    { maxLength: 30 },
  )
  .map((codes) => String.fromCharCode(...codes));

/** Mostly address-shaped strings, some of which pass validation. */
const addressLike = fc.oneof(
  fc.tuple(trickyString(20), trickyString(20)).map(([l, d]) => `${l}@${d}`),
  fc.tuple(trickyString(10), trickyString(10)).map(([l, d]) => `"${l}"@${d}.example`),
  validAddress,
  fc.string({ unit: 'binary', maxLength: 40 }),
);

describe('validateAddress / mailCommand / rcptCommand: properties', () => {
  it('any string with CR, LF or NUL is refused (both roles)', () => {
    const withControl = fc
      .tuple(fc.oneof(addressLike, fc.string({ unit: 'binary' })), fc.constantFrom('\r', '\n', '\0', '\r\n'), fc.nat())
      .map(([s, c, at]) => {
        const i = at % (s.length + 1);
        return s.slice(0, i) + c + s.slice(i);
      });
    fc.assert(
      fc.property(withControl, (address) => {
        expectEnvelopeError(() => validateAddress(address, 'recipient'));
        expectEnvelopeError(() => validateAddress(address, 'sender'));
        expectEnvelopeError(() => validateEnvelope({ from: address, to: ['ok@example.com'] }));
        expectEnvelopeError(() => validateEnvelope({ from: 'ok@example.com', to: ['ok2@example.com', address] }));
      }),
      { numRuns: 500 },
    );
  });

  it('for any address that passes validateAddress, MAIL and RCPT contain exactly one CRLF, at the end', () => {
    let accepted = 0;
    fc.assert(
      fc.property(addressLike, (address) => {
        if (!passes(address)) {
          // Refused input never reaches the encoder; nothing to check.
          return;
        }
        accepted++;
        for (const cmd of [mailCommand(address, {}), rcptCommand(address, undefined)]) {
          expect(cmd.endsWith('\r\n')).toBe(true);
          expect(count(cmd, '\r')).toBe(1);
          expect(count(cmd, '\n')).toBe(1);
          // And at the byte level: the only CR, LF or NUL octets on the wire are the final CRLF.
          const bytes = Buffer.from(cmd, 'utf8');
          expect(bytes.subarray(0, -2).some((o) => o === 0x0d || o === 0x0a || o === 0x00)).toBe(false);
        }
        expect(mailCommand(address, {})).toBe(`MAIL FROM:<${address}>\r\n`);
        expect(rcptCommand(address, undefined)).toBe(`RCPT TO:<${address}>\r\n`);
      }),
      { numRuns: 500 },
    );
    // Make sure the property was not vacuous.
    expect(accepted).toBeGreaterThan(50);
  });

  it('for any envelope that passes validateEnvelope, every command is one line with well-formed parameters', () => {
    // `orcpt` here is the ORCPT value for the first recipient; it is turned into the DsnOptions map below.
    const dsnArb = fc.option(
      fc.record(
        {
          ret: fc.constantFrom('FULL' as const, 'HDRS' as const),
          envid: fc.oneof({ weight: 6, arbitrary: asciiParam }, { weight: 1, arbitrary: trickyString(30) }),
          notify: fc.oneof(
            fc.constant('NEVER' as const),
            fc.uniqueArray(fc.constantFrom('SUCCESS' as const, 'FAILURE' as const, 'DELAY' as const), { minLength: 1 }),
          ),
          orcpt: fc.option(fc.oneof({ weight: 6, arbitrary: asciiParam }, { weight: 1, arbitrary: trickyString(30) }), { nil: undefined }),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    );
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof({ weight: 3, arbitrary: validAddress }, { weight: 1, arbitrary: addressLike }, { weight: 1, arbitrary: fc.constant('') }),
        fc.array(fc.oneof({ weight: 4, arbitrary: validAddress }, { weight: 1, arbitrary: addressLike }), { minLength: 1, maxLength: 3 }),
        dsnArb,
        fc.option(fc.nat(), { nil: undefined }),
        fc.boolean(),
        (from, to, dsnSpec, size, body8bit) => {
          const dsn: DsnOptions | undefined = dsnSpec && {
            ...dsnSpec,
            orcpt: dsnSpec.orcpt === undefined ? undefined : { [to[0]!]: dsnSpec.orcpt },
          };
          const envelope: Envelope = { from, to, dsn, size };
          try {
            validateEnvelope(envelope);
          } catch (err) {
            if (!(err instanceof SluiceError) || err.code !== ErrorCodes.EENVELOPE) throw err;
            return;
          }
          accepted++;
          const mail = mailCommand(from, { size, body8bit, smtpUtf8: needsSmtpUtf8(envelope), dsn });
          const rcpts = to.map((t) => rcptCommand(t, dsn));
          for (const cmd of [mail, ...rcpts]) {
            expect(cmd.endsWith('\r\n')).toBe(true);
            expect(count(cmd, '\r')).toBe(1);
            expect(count(cmd, '\n')).toBe(1);
          }
          // Parameters after the path: space-separated KEYWORD[=value], values free of spaces and '='.
          const params = [mail.slice(`MAIL FROM:<${from}>`.length, -2), ...rcpts.map((r, i) => r.slice(`RCPT TO:<${to[i]}>`.length, -2))];
          for (const p of params) {
            if (p === '') continue;
            expect(p.startsWith(' ')).toBe(true);
            for (const token of p.slice(1).split(' ')) expect(token).toMatch(/^[A-Z0-9]+(=[\x21-\x3c\x3e-\x7e]+)?$/);
          }
        },
      ),
      { numRuns: 500 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('xtext (RFC 3461 §4)', () => {
  it.each([
    ['', ''],
    ['abc', 'abc'],
    ['a+b', 'a+2Bb'],
    ['a=b', 'a+3Db'],
    ['a b', 'a+20b'],
    ['\t', '+09'],
    ['\x7f', '+7F'],
    ['!~', '!~'],
    ['<id@example.com>', '<id@example.com>'],
    ['rfc822;x', 'rfc822;x'],
  ])('xtext(%j) === %j', (input, expected) => {
    expect(xtext(input)).toBe(expected);
  });

  const asciiString = fc.array(fc.integer({ min: 0, max: 0x7f }), { maxLength: 60 }).map((codes) => String.fromCharCode(...codes));

  it('round-trips any ASCII string through a reference decoder', () => {
    fc.assert(
      fc.property(asciiString, (s) => {
        const encoded = xtext(s);
        expect(encoded).toMatch(XTEXT);
        expect(xtextDecode(encoded)).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it('leaves xtext-safe characters alone and encodes the rest as exactly +XX', () => {
    fc.assert(
      fc.property(asciiString, (s) => {
        const safe = [...s].filter((ch) => ch >= '!' && ch <= '~' && ch !== '+' && ch !== '=').length;
        const encoded = xtext(s);
        expect(encoded.length).toBe(safe + 3 * (s.length - safe));
      }),
      { numRuns: 300 },
    );
  });
});

describe('mailCommand / rcptCommand', () => {
  it('MAIL FROM with no parameters, and the null sender', () => {
    expect(mailCommand('a@example.com', {})).toBe('MAIL FROM:<a@example.com>\r\n');
    expect(mailCommand('', {})).toBe('MAIL FROM:<>\r\n');
  });

  it('SIZE, BODY=8BITMIME, SMTPUTF8', () => {
    expect(mailCommand('a@example.com', { size: 1234, body8bit: true, smtpUtf8: true })).toBe('MAIL FROM:<a@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n');
    expect(mailCommand('a@example.com', { size: 0 })).toBe('MAIL FROM:<a@example.com> SIZE=0\r\n');
    expect(mailCommand('a@example.com', { body8bit: false, smtpUtf8: false })).toBe('MAIL FROM:<a@example.com>\r\n');
  });

  it('RET and ENVID (xtext-encoded)', () => {
    expect(mailCommand('a@example.com', { dsn: { ret: 'HDRS', envid: 'QQ314159' } })).toBe('MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ314159\r\n');
    expect(mailCommand('a@example.com', { dsn: { ret: 'FULL' } })).toBe('MAIL FROM:<a@example.com> RET=FULL\r\n');
    expect(mailCommand('a@example.com', { dsn: { envid: 'a+b=c d' } })).toBe('MAIL FROM:<a@example.com> ENVID=a+2Bb+3Dc+20d\r\n');
  });

  it('DSN options meant for RCPT do not appear on MAIL', () => {
    expect(mailCommand('a@example.com', { dsn: { notify: ['FAILURE'], orcpt: { 'a@example.com': 'x@y' } } })).toBe('MAIL FROM:<a@example.com>\r\n');
  });

  it('RCPT TO with no DSN', () => {
    expect(rcptCommand('b@example.com', undefined)).toBe('RCPT TO:<b@example.com>\r\n');
    expect(rcptCommand('b@example.com', {})).toBe('RCPT TO:<b@example.com>\r\n');
  });

  it('NOTIFY=NEVER and NOTIFY lists', () => {
    expect(rcptCommand('b@example.com', { notify: 'NEVER' })).toBe('RCPT TO:<b@example.com> NOTIFY=NEVER\r\n');
    expect(rcptCommand('b@example.com', { notify: ['SUCCESS', 'FAILURE', 'DELAY'] })).toBe('RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE,DELAY\r\n');
  });

  it('ORCPT=rfc822;xtext for the matching recipient only, after NOTIFY', () => {
    const dsn: DsnOptions = { notify: ['FAILURE'], orcpt: { 'b@example.com': 'orig+tag=1@example.com' } };
    expect(rcptCommand('b@example.com', dsn)).toBe('RCPT TO:<b@example.com> NOTIFY=FAILURE ORCPT=rfc822;orig+2Btag+3D1@example.com\r\n');
    expect(rcptCommand('c@example.com', dsn)).toBe('RCPT TO:<c@example.com> NOTIFY=FAILURE\r\n');
  });

  it('RET/ENVID never appear on RCPT', () => {
    expect(rcptCommand('b@example.com', { ret: 'FULL', envid: 'x' })).toBe('RCPT TO:<b@example.com>\r\n');
  });
});

describe('validateEnvelope', () => {
  const ok: Envelope = { from: 'a@example.com', to: ['b@example.com'] };

  it('accepts valid envelopes', () => {
    expect(() => validateEnvelope(ok)).not.toThrow();
    expect(() => validateEnvelope({ from: '', to: ['b@example.com', 'c@example.com'] })).not.toThrow();
    expect(() => validateEnvelope({ ...ok, size: 0 })).not.toThrow();
    expect(() => validateEnvelope({ ...ok, size: 10_000_000 })).not.toThrow();
    expect(() =>
      validateEnvelope({
        ...ok,
        dsn: { ret: 'HDRS', envid: 'x'.repeat(100), notify: ['SUCCESS', 'DELAY'], orcpt: { 'b@example.com': 'orig@example.com' } },
      }),
    ).not.toThrow();
    expect(() => validateEnvelope({ ...ok, dsn: { notify: 'NEVER' } })).not.toThrow();
    expect(() => validateEnvelope({ ...ok, dsn: { envid: 'has space' } })).not.toThrow();
    expect(() => validateEnvelope({ ...ok, dsn: {} })).not.toThrow();
  });

  it.each([
    ['a missing envelope', null, /missing/],
    ['a non-object envelope', 'a@example.com', /missing/],
    ['an invalid sender', { from: 'nope', to: ['b@example.com'] }, /sender/],
    ['a sender with CRLF', { from: 'a@example.com\r\nRSET', to: ['b@example.com'] }, /control/],
    ['no recipients', { from: 'a@example.com', to: [] }, /no recipient/],
    ['to not an array', { from: 'a@example.com', to: 'b@example.com' }, /no recipient/],
    ['to missing', { from: 'a@example.com' }, /no recipient/],
    ['an invalid recipient among valid ones', { from: 'a@example.com', to: ['b@example.com', 'bad', 'c@example.com'] }, /recipient/],
    ['an empty recipient', { from: 'a@example.com', to: [''] }, /recipient/],
    ['a negative size', { ...ok, size: -1 }, /size/],
    ['a fractional size', { ...ok, size: 1.5 }, /size/],
    ['a NaN size', { ...ok, size: Number.NaN }, /size/],
    ['an infinite size', { ...ok, size: Number.POSITIVE_INFINITY }, /size/],
    ['a string size', { ...ok, size: '10' }, /size/],
    ['a bad RET', { ...ok, dsn: { ret: 'ALL' } }, /dsn\.ret/],
    ['an empty ENVID', { ...ok, dsn: { envid: '' } }, /dsn\.envid/],
    ['an ENVID over 100 characters', { ...ok, dsn: { envid: 'x'.repeat(101) } }, /dsn\.envid/],
    ['an ENVID with CRLF', { ...ok, dsn: { envid: 'a\r\nb' } }, /dsn\.envid/],
    ['an ENVID with a TAB', { ...ok, dsn: { envid: 'a\tb' } }, /dsn\.envid/],
    ['a non-ASCII ENVID', { ...ok, dsn: { envid: 'é' } }, /dsn\.envid/],
    ['a non-string ENVID', { ...ok, dsn: { envid: 5 } }, /dsn\.envid/],
    ['an empty NOTIFY list', { ...ok, dsn: { notify: [] } }, /dsn\.notify/],
    ['NEVER inside a NOTIFY list', { ...ok, dsn: { notify: ['NEVER', 'SUCCESS'] } }, /dsn\.notify/],
    ['an unknown NOTIFY value', { ...ok, dsn: { notify: ['SUCCESS', 'BOGUS'] } }, /dsn\.notify/],
    ['a lower-case NOTIFY value', { ...ok, dsn: { notify: ['success'] } }, /dsn\.notify/],
    ['a NOTIFY string other than NEVER', { ...ok, dsn: { notify: 'SUCCESS' } }, /dsn\.notify/],
    ['a non-ASCII ORCPT', { ...ok, dsn: { orcpt: { 'b@example.com': 'ü@example.com' } } }, /dsn\.orcpt/],
    ['an ORCPT with CRLF', { ...ok, dsn: { orcpt: { 'b@example.com': 'x@y\r\nDATA' } } }, /dsn\.orcpt/],
    ['a non-string ORCPT', { ...ok, dsn: { orcpt: { 'b@example.com': 1 } } }, /dsn\.orcpt/],
  ])('refuses %s', (_name, envelope, message) => {
    expectEnvelopeError(() => validateEnvelope(envelope as unknown as Envelope), message);
  });

  it('reports the sender before the recipients', () => {
    expectEnvelopeError(() => validateEnvelope({ from: 'bad', to: ['also bad'] }), /sender/);
  });
});

describe('validateClientName', () => {
  it('accepts a domain or an address literal', () => {
    expect(() => validateClientName('client.example.com')).not.toThrow();
    expect(() => validateClientName('[192.0.2.1]')).not.toThrow();
  });

  it.each(['', 'a b', 'host\r\nMAIL FROM:<x@y>', 'host\n', 'host\0', 'host\t'])('refuses %j with EOPTIONS', (name) => {
    const err = thrown(() => validateClientName(name));
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe(ErrorCodes.EOPTIONS);
    expect((err as SluiceError).permanent).toBe(true);
  });

  it('refuses a non-string', () => {
    expect(() => validateClientName(undefined as unknown as string)).toThrow(SluiceError);
  });
});
