import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, SluiceError } from '../../src/errors.js';
import { buildReply, DEFAULT_REPLY_LIMITS, type Reply, ReplyParser, type ReplyParserLimits } from '../../src/protocol/reply.js';
import { splitAt, thrown } from './util.js';

/** Feeds every chunk and returns the replies, in order. */
function parseAll(chunks: Array<Buffer | string>, limits?: Partial<ReplyParserLimits>): Reply[] {
  const parser = new ReplyParser(limits);
  const out: Reply[] = [];
  for (const chunk of chunks) parser.feed(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk, (r) => out.push(r));
  return out;
}

function parse(text: string, limits?: Partial<ReplyParserLimits>): Reply[] {
  return parseAll([text], limits);
}


function expectProtocolError(fn: () => unknown): SluiceError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(SluiceError);
  expect((err as SluiceError).code).toBe(ErrorCodes.EPROTOCOL);
  return err as SluiceError;
}


describe('ReplyParser: single-line replies', () => {
  it('parses a plain reply', () => {
    const [r, ...rest] = parse('220 mx.example.com ESMTP Postfix\r\n');
    expect(rest).toEqual([]);
    expect(r).toEqual({ code: 220, enhanced: null, lines: ['220 mx.example.com ESMTP Postfix'], text: 'mx.example.com ESMTP Postfix' });
  });

  it('parses a lone code line "250" (RFC 5321 §4.2: the text is optional)', () => {
    expect(parse('250\r\n')).toEqual([{ code: 250, enhanced: null, lines: ['250'], text: '' }]);
  });

  it('parses a code followed by a single space and no text', () => {
    expect(parse('354 \r\n')).toEqual([{ code: 354, enhanced: null, lines: ['354 '], text: '' }]);
  });

  it('accepts a bare LF as a line end', () => {
    expect(parse('250 OK\n')).toEqual([{ code: 250, enhanced: null, lines: ['250 OK'], text: 'OK' }]);
  });

  it('strips only the CR of CRLF, not other CRs', () => {
    const [r] = parse('250 a\rb\r\n');
    expect(r!.lines).toEqual(['250 a\rb']);
  });

  it('parses several replies in one chunk, in order', () => {
    const replies = parse('250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <x@example.com>: Recipient address rejected\r\n354 End data with <CR><LF>.<CR><LF>\r\n');
    expect(replies.map((r) => r.code)).toEqual([250, 250, 550, 354]);
    expect(replies.map((r) => r.enhanced)).toEqual(['2.1.0', '2.1.5', '5.1.1', null]);
  });

  it('decodes UTF-8 text', () => {
    const [r] = parse('250 2.0.0 Ok: queued as é€😀\r\n');
    expect(r!.text).toBe('Ok: queued as é€😀');
  });

  it('reports partial input and does not call onReply before the line end', () => {
    const parser = new ReplyParser();
    const out: Reply[] = [];
    expect(parser.partial).toBe(false);
    parser.feed(Buffer.from('250 O'), (r) => out.push(r));
    expect(out).toEqual([]);
    expect(parser.partial).toBe(true);
    parser.feed(Buffer.from('K\r'), (r) => out.push(r));
    expect(out).toEqual([]);
    parser.feed(Buffer.from('\n'), (r) => out.push(r));
    expect(out.map((r) => r.lines)).toEqual([['250 OK']]);
    expect(parser.partial).toBe(false);
  });

  it('an empty chunk is a no-op', () => {
    const parser = new ReplyParser();
    const out: Reply[] = [];
    parser.feed(Buffer.alloc(0), (r) => out.push(r));
    expect(out).toEqual([]);
    expect(parser.partial).toBe(false);
  });
});

describe('ReplyParser: multi-line replies', () => {
  it('folds a multi-line EHLO reply into one reply', () => {
    const replies = parse('250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 CHUNKING\r\n');
    expect(replies).toEqual([
      {
        code: 250,
        enhanced: null,
        lines: ['250-mx.example.com', '250-PIPELINING', '250-SIZE 10240000', '250 CHUNKING'],
        text: 'mx.example.com\nPIPELINING\nSIZE 10240000\nCHUNKING',
      },
    ]);
  });

  it('accepts mixed CRLF and bare LF line ends inside one reply', () => {
    const [r] = parse('250-a\n250-b\r\n250 c\n');
    expect(r!.lines).toEqual(['250-a', '250-b', '250 c']);
  });

  it('accepts a lone code as the last line of a multi-line reply', () => {
    const [r] = parse('250-first\r\n250\r\n');
    expect(r).toEqual({ code: 250, enhanced: null, lines: ['250-first', '250'], text: 'first\n' });
  });

  it('accepts an empty continuation line "250-"', () => {
    const [r] = parse('250-\r\n250 end\r\n');
    expect(r!.lines).toEqual(['250-', '250 end']);
    expect(r!.text).toBe('\nend');
  });

  it('throws EPROTOCOL when the code changes inside a multi-line reply', () => {
    expectProtocolError(() => parse('250-mx.example.com\r\n251 PIPELINING\r\n'));
    expectProtocolError(() => parse('250-mx.example.com\r\n550 no\r\n'));
    expectProtocolError(() => parse('550-5.1.1 a\r\n550-5.1.1 b\r\n450 4.1.1 c\r\n'));
  });

  it('throws EPROTOCOL on a code change even when it arrives in a later chunk', () => {
    const parser = new ReplyParser();
    parser.feed(Buffer.from('250-a\r\n'), () => {});
    expectProtocolError(() => parser.feed(Buffer.from('220 b\r\n'), () => {}));
  });
});

describe('ReplyParser: enhanced status codes (RFC 3463)', () => {
  it('extracts the enhanced code and strips it from the text', () => {
    const [r] = parse('550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n');
    expect(r!.enhanced).toBe('5.1.1');
    expect(r!.text).toBe('<nobody@example.com>: Recipient address rejected');
    expect(r!.lines).toEqual(['550 5.1.1 <nobody@example.com>: Recipient address rejected']);
  });

  it('extracts an enhanced code alone on the line', () => {
    expect(parse('250 2.0.0\r\n')[0]).toMatchObject({ enhanced: '2.0.0', text: '' });
  });

  it('extracts three-digit subject and detail', () => {
    expect(parse('451 4.123.999 busy\r\n')[0]).toMatchObject({ enhanced: '4.123.999', text: 'busy' });
  });

  it('does NOT extract an enhanced code whose class digit disagrees with the reply code', () => {
    const [r] = parse('550 4.1.1 mismatched\r\n');
    expect(r!.enhanced).toBeNull();
    expect(r!.text).toBe('4.1.1 mismatched');
    const [r2] = parse('250 5.0.0 odd\r\n');
    expect(r2!.enhanced).toBeNull();
    expect(r2!.text).toBe('5.0.0 odd');
  });

  it('does not extract codes of a class RFC 3463 does not define, or of the wrong shape', () => {
    expect(parse('354 3.0.0 go ahead\r\n')[0]!.enhanced).toBeNull();
    expect(parse('250 2.1234.1 x\r\n')[0]!.enhanced).toBeNull();
    expect(parse('250 2.1.1234 x\r\n')[0]!.enhanced).toBeNull();
    expect(parse('250 2.1.1x\r\n')[0]!.enhanced).toBeNull();
    expect(parse('250 2.1 x\r\n')[0]!.enhanced).toBeNull();
    expect(parse('250  2.1.0 x\r\n')[0]!.enhanced).toBeNull();
  });

  it('takes the enhanced code from the first line and strips it from every line', () => {
    const [r] = parse('550-5.7.1 Message rejected\r\n550-5.7.1 see https://example.com\r\n550 5.7.1 policy\r\n');
    expect(r!.enhanced).toBe('5.7.1');
    expect(r!.text).toBe('Message rejected\nsee https://example.com\npolicy');
  });

  it('is null when only a later line has an enhanced code', () => {
    const [r] = parse('250-mx.example.com\r\n250 2.0.0 ok\r\n');
    expect(r!.enhanced).toBeNull();
    expect(r!.text).toBe('mx.example.com\nok');
  });

  it('buildReply matches what the parser produces', () => {
    expect(buildReply(550, ['550-5.1.1 a', '550 b'])).toEqual({ code: 550, enhanced: '5.1.1', lines: ['550-5.1.1 a', '550 b'], text: 'a\nb' });
  });
});

describe('ReplyParser: malformed input', () => {
  it.each([
    ['an empty line', '\r\n'],
    ['a non-numeric code', 'abc hello\r\n'],
    ['a two-digit code', '25\r\n'],
    ['a two-digit code with text', '25 hello\r\n'],
    ['a bad separator', '250x hello\r\n'],
    ['a tab separator', '250\thello\r\n'],
    ['a 1xx code', '150 hello\r\n'],
    ['a 6xx code', '650 hello\r\n'],
    ['a 0xx code', '050 hello\r\n'],
    ['a code with a non-digit', '2a0 hello\r\n'],
    ['leading space', ' 250 hello\r\n'],
  ])('throws EPROTOCOL on %s', (_name, input) => {
    const err = expectProtocolError(() => parse(input));
    expect(err.command).toBe('REPLY');
  });

  it('delivers the replies before a malformed line, then throws', () => {
    const parser = new ReplyParser();
    const out: Reply[] = [];
    expectProtocolError(() => parser.feed(Buffer.from('250 ok\r\ngarbage\r\n'), (r) => out.push(r)));
    expect(out.map((r) => r.code)).toEqual([250]);
  });
});

describe('ReplyParser: size limits', () => {
  it('uses 8192 / 65536 by default', () => {
    expect(DEFAULT_REPLY_LIMITS).toEqual({ maxLineLength: 8192, maxReplySize: 65536 });
  });

  it('accepts a line of exactly maxLineLength bytes (CR LF not counted)', () => {
    const line = `250 ${'x'.repeat(96)}`; // 100 bytes
    expect(parse(`${line}\r\n`, { maxLineLength: 100 })[0]!.lines).toEqual([line]);
    expect(parse(`${line}\n`, { maxLineLength: 100 })[0]!.lines).toEqual([line]);
  });

  it('throws EPROTOCOL on a complete line longer than maxLineLength', () => {
    const line = `250 ${'x'.repeat(97)}`; // 101 bytes
    expectProtocolError(() => parse(`${line}\r\n`, { maxLineLength: 100 }));
  });

  it('throws EPROTOCOL on an unterminated line longer than maxLineLength (no unbounded buffering)', () => {
    expectProtocolError(() => parse(`250 ${'x'.repeat(200)}`, { maxLineLength: 100 }));
  });

  it('throws EPROTOCOL when a long line trickles in byte by byte', () => {
    const parser = new ReplyParser({ maxLineLength: 100 });
    const err = thrown(() => {
      parser.feed(Buffer.from('250 '), () => {});
      for (let i = 0; i < 1000; i++) parser.feed(Buffer.from('x'), () => {});
    });
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe(ErrorCodes.EPROTOCOL);
  });

  it('throws EPROTOCOL with the default limit on a line over 8192 bytes', () => {
    expectProtocolError(() => parse(`250 ${'x'.repeat(8200)}\r\n`));
  });

  it('throws EPROTOCOL on a multi-line reply larger than maxReplySize', () => {
    const lines = `${'250-0123456789\r\n'.repeat(20)}250 end\r\n`; // 16 * 20 + 9 bytes
    expect(parse(lines, { maxReplySize: 1000 })).toHaveLength(1);
    expectProtocolError(() => parse(lines, { maxReplySize: 100 }));
  });

  it('throws EPROTOCOL with the default limit on a reply over 65536 bytes', () => {
    expectProtocolError(() => parse(`${'250-0123456789\r\n'.repeat(5000)}250 end\r\n`));
  });

  it('counts the reply size per reply, not over the whole stream', () => {
    const many = '250 0123456789\r\n'.repeat(100); // 1600 bytes, 100 replies of 16 bytes
    expect(parse(many, { maxReplySize: 16 })).toHaveLength(100);
  });

  // BUG (see report): the limit check on a buffered, unterminated line counts the CR of a CRLF split
  // across two chunks, so a line of exactly maxLineLength bytes is accepted or refused depending on
  // where the socket happened to split it.
  it('accepts a line of exactly maxLineLength bytes when its CRLF is split across chunks', () => {
    const line = `250 ${'x'.repeat(96)}`; // 100 bytes
    const replies = parseAll([`${line}\r`, '\n'], { maxLineLength: 100 });
    expect(replies.map((r) => r.lines)).toEqual([[line]]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties

interface ReplySpec {
  code: number;
  texts: string[];
  /** End the last line with a lone code when its text is empty. */
  loneLast: boolean;
  /** One line end per line. */
  eols: Array<'\r\n' | '\n'>;
}

const textArb = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));
const enhancedArb = fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999 }));

const replyArb: fc.Arbitrary<ReplySpec> = fc
  .record({
    code: fc.integer({ min: 200, max: 599 }),
    texts: fc.array(
      fc.oneof(
        textArb,
        // Sometimes an enhanced code, of the right class or not.
        fc.tuple(fc.constantFrom(2, 4, 5), enhancedArb, textArb).map(([c, [s, d], t]) => `${c}.${s}.${d} ${t}`),
      ),
      { minLength: 1, maxLength: 5 },
    ),
    loneLast: fc.boolean(),
    eolSeed: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
  })
  .map(({ code, texts, loneLast, eolSeed }) => ({ code, texts, loneLast, eols: eolSeed.map((b) => (b ? '\r\n' : '\n')) }));

function lineOf(spec: ReplySpec, i: number): string {
  const last = i === spec.texts.length - 1;
  const text = spec.texts[i]!;
  if (last && spec.loneLast && text === '') return String(spec.code);
  return `${spec.code}${last ? ' ' : '-'}${text}`;
}

function serialise(specs: ReplySpec[]): Buffer {
  let s = '';
  for (const spec of specs) for (let i = 0; i < spec.texts.length; i++) s += lineOf(spec, i) + spec.eols[i]!;
  return Buffer.from(s, 'utf8');
}

/** An independent reference for `enhanced` and `text`. */
function expectedReply(spec: ReplySpec): Reply {
  const lines = spec.texts.map((_, i) => lineOf(spec, i));
  const cls = Math.floor(spec.code / 100);
  let enhanced: string | null = null;
  const texts = lines.map((line, i) => {
    const text = line.slice(4);
    const m = /^(\d)\.(\d{1,3})\.(\d{1,3})( |$)/.exec(text);
    if (m && Number(m[1]) === cls && (cls === 2 || cls === 4 || cls === 5)) {
      if (i === 0) enhanced = `${m[1]}.${m[2]}.${m[3]}`;
      return text.slice(m[0].length);
    }
    return text;
  });
  return { code: spec.code, enhanced, lines, text: texts.join('\n') };
}

describe('ReplyParser: properties', () => {
  it('any sequence of valid replies, split at random points, parses to the same replies in order', () => {
    fc.assert(
      fc.property(fc.array(replyArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (specs, cuts) => {
        const wire = serialise(specs);
        const replies = parseAll(splitAt(wire, cuts));
        expect(replies).toEqual(specs.map(expectedReply));
      }),
      { numRuns: 400 },
    );
  });

  it('parsing is independent of chunking (byte by byte equals all at once)', () => {
    fc.assert(
      fc.property(fc.array(replyArb, { maxLength: 5 }), (specs) => {
        const wire = serialise(specs);
        const whole = parseAll([wire]);
        const bytes = parseAll([...wire].map((b) => Buffer.from([b])));
        expect(bytes).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  // Bytes biased towards what the parser branches on.
  const noisyByte = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) },
    { weight: 4, arbitrary: fc.constantFrom(0x30, 0x32, 0x34, 0x35, 0x39, 0x2d, 0x20, 0x2e, 0x0d, 0x0a) },
  );
  const noisyBytes = fc.array(noisyByte, { maxLength: 600 }).map((a) => Buffer.from(a));

  function runNoisy(input: Buffer, cuts: number[], limits?: Partial<ReplyParserLimits>): void {
    const parser = new ReplyParser(limits);
    try {
      for (const chunk of splitAt(input, cuts)) {
        parser.feed(chunk, (r) => {
          expect(r.code).toBeGreaterThanOrEqual(200);
          expect(r.code).toBeLessThanOrEqual(599);
          expect(r.lines.length).toBeGreaterThan(0);
        });
      }
    } catch (err) {
      if (!(err instanceof SluiceError) || err.code !== ErrorCodes.EPROTOCOL) throw err;
    }
  }

  it('random bytes never throw anything but SluiceError EPROTOCOL (default limits)', () => {
    fc.assert(
      fc.property(noisyBytes, fc.array(fc.nat(), { maxLength: 20 }), (input, cuts) => runNoisy(input, cuts)),
      { numRuns: 500 },
    );
  });

  it('random bytes never throw anything but SluiceError EPROTOCOL (small limits)', () => {
    fc.assert(
      fc.property(
        noisyBytes,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 256 }),
        (input, cuts, maxLineLength, maxReplySize) => runNoisy(input, cuts, { maxLineLength, maxReplySize }),
      ),
      { numRuns: 500 },
    );
  });

  it('valid replies prefixed to random bytes are still delivered before any error', () => {
    fc.assert(
      fc.property(fc.array(replyArb, { minLength: 1, maxLength: 4 }), noisyBytes, (specs, noise) => {
        const parser = new ReplyParser();
        const out: Reply[] = [];
        try {
          parser.feed(Buffer.concat([serialise(specs), noise]), (r) => out.push(r));
        } catch (err) {
          if (!(err instanceof SluiceError) || err.code !== ErrorCodes.EPROTOCOL) throw err;
        }
        expect(out.slice(0, specs.length)).toEqual(specs.map(expectedReply));
      }),
      { numRuns: 300 },
    );
  });
});
