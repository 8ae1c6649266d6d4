import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { BodyEncoder, DATA_TERMINATOR, encodeBody, has8bit, MAX_LINE_LENGTH } from '../../src/protocol/body.js';
import { splitAt } from './util.js';

const CR = 0x0d;
const LF = 0x0a;

// ---------------------------------------------------------------------------------------------------
// Independent references

/** RFC 5321 §2.3.8: every bare LF and every bare CR (in the original byte sequence) becomes CRLF. */
function normaliseLineEnds(input: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const byte = input[i]!;
    if (byte === CR) {
      out.push(CR, LF);
      if (input[i + 1] === LF) i++;
    } else if (byte === LF) out.push(CR, LF);
    else out.push(byte);
  }
  return Buffer.from(out);
}

/** What DATA should deliver: the normalised content, ending with CRLF unless it is empty. */
function expectedDataContent(input: Buffer): Buffer {
  const norm = normaliseLineEnds(input);
  const endsWithCrlf = norm.length >= 2 && norm[norm.length - 2] === CR && norm[norm.length - 1] === LF;
  return norm.length === 0 || endsWithCrlf ? norm : Buffer.concat([norm, Buffer.from('\r\n')]);
}

/**
 * A receiver per RFC 5321 §4.5.2: read CRLF-terminated lines; a line that is exactly "." ends the
 * content; otherwise a leading "." is removed. Throws if the stream is unterminated or has bytes after
 * the terminator.
 */
function decodeData(stream: Buffer): Buffer {
  const s = stream.toString('latin1');
  const out: string[] = [];
  let pos = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', pos);
    if (eol === -1) throw new Error(`unterminated DATA stream: ${JSON.stringify(s.slice(pos))}`);
    const line = s.slice(pos, eol);
    pos = eol + 2;
    if (line === '.') {
      if (pos !== s.length) throw new Error(`${s.length - pos} bytes after the terminator`);
      return Buffer.from(out.join(''), 'latin1');
    }
    out.push(`${line.startsWith('.') ? line.slice(1) : line}\r\n`);
  }
}

/** True when the buffer contains an LF not preceded by CR. */
function hasBareLf(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] === LF && (i === 0 || buf[i - 1] !== CR)) return true;
  return false;
}

/** True when the buffer contains a CR not followed by LF. */
function hasBareCr(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] === CR && buf[i + 1] !== LF) return true;
  return false;
}


function encodeChunks(chunks: Uint8Array[], dotStuff: boolean): { encoder: BodyEncoder; out: Buffer } {
  const encoder = new BodyEncoder(dotStuff);
  const out = Buffer.concat(chunks.map((c) => encoder.encode(c)));
  return { encoder, out };
}

/** The terminator the encoded bytes call for, derived from the bytes themselves. */
function referenceTerminator(encoded: Buffer): string {
  // A final CR is the first half of a line end whose LF the terminator brings.
  if (encoded.length > 0 && encoded[encoded.length - 1] === CR) return '\n.\r\n';
  const endsWithCrlf = encoded.length >= 2 && encoded[encoded.length - 2] === CR && encoded[encoded.length - 1] === LF;
  return encoded.length === 0 || endsWithCrlf ? '.\r\n' : '\r\n.\r\n';
}

const b = (s: string) => Buffer.from(s, 'latin1');
const enc = (s: string, dotStuff = true) => encodeBody(b(s), dotStuff).toString('latin1');

function terminatorFor(chunks: string[], dotStuff = true): string {
  const encoder = new BodyEncoder(dotStuff);
  for (const c of chunks) encoder.encode(b(c));
  return encoder.terminator().toString('latin1');
}

// Bodies rich in the bytes that matter.
const bodyByte = fc.oneof({ weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) }, { weight: 6, arbitrary: fc.constantFrom(0x2e, 0x0d, 0x0a, 0x61) });
const bodyArb = fc.array(bodyByte, { maxLength: 300 }).map((a) => Buffer.from(a));
const cutsArb = fc.array(fc.nat(), { maxLength: 25 });
/** Sometimes hand the encoder plain Uint8Arrays (with an offset into a larger buffer), not Buffers. */
const asUint8 = (chunks: Buffer[], plain: boolean): Uint8Array[] =>
  plain
    ? chunks.map((c) => {
        const backing = new Uint8Array(c.length + 8);
        backing.set(c, 4);
        return new Uint8Array(backing.buffer, 4, c.length);
      })
    : chunks;

// ---------------------------------------------------------------------------------------------------

describe('BodyEncoder: examples (DATA, dot-stuffing)', () => {
  it.each([
    ['', ''],
    ['hello', 'hello'],
    ['hello\r\n', 'hello\r\n'],
    ['a\nb\n', 'a\r\nb\r\n'],
    ['\n', '\r\n'],
    ['\n\n', '\r\n\r\n'],
    ['.', '..'],
    ['.hidden\r\n', '..hidden\r\n'],
    ['a\r\n.\r\nMAIL FROM:<x@evil>\r\n', 'a\r\n..\r\nMAIL FROM:<x@evil>\r\n'],
    ['a\n.\nb', 'a\r\n..\r\nb'],
    ['a\r\n..b\r\n', 'a\r\n...b\r\n'],
    ['a.b\r\nc.d', 'a.b\r\nc.d'],
    // A bare CR ends a line too (RFC 5321 §2.3.8 forbids it; "\r.\r" is a smuggling vector).
    ['a\r.b', 'a\r\n..b'],
    ['\r\r\n', '\r\n\r\n'],
    ['a\rb\r', 'a\r\nb\r\n'],
    ['a\r.\rMAIL FROM:<x@evil>\r', 'a\r\n..\r\nMAIL FROM:<x@evil>\r\n'],
  ])('encodes %j as %j', (input, expected) => {
    expect(enc(input)).toBe(expected);
  });

  it('sees a CRLF split across chunks (no extra CR)', () => {
    const encoder = new BodyEncoder(true);
    expect(encoder.encode(b('a\r')).toString('latin1')).toBe('a\r');
    expect(encoder.encode(b('\nb')).toString('latin1')).toBe('\nb');
  });

  it('sees a line-starting dot at the start of the next chunk', () => {
    const encoder = new BodyEncoder(true);
    expect(encoder.encode(b('a\r\n')).toString('latin1')).toBe('a\r\n');
    expect(encoder.encode(b('.b')).toString('latin1')).toBe('..b');
    const encoder2 = new BodyEncoder(true);
    expect(encoder2.encode(b('a\n')).toString('latin1')).toBe('a\r\n');
    expect(encoder2.encode(b('.b')).toString('latin1')).toBe('..b');
  });

  it('stuffs a dot at the very start of the content', () => {
    const encoder = new BodyEncoder(true);
    expect(encoder.encode(b('.\r\n')).toString('latin1')).toBe('..\r\n');
  });

  it('ignores empty chunks (state is kept)', () => {
    const encoder = new BodyEncoder(true);
    encoder.encode(b('a\r'));
    expect(encoder.encode(Buffer.alloc(0)).length).toBe(0);
    expect(encoder.encode(b('\n.')).toString('latin1')).toBe('\n..');
  });

  it('counts the encoded bytes in size', () => {
    const encoder = new BodyEncoder(true);
    encoder.encode(b('a\n.b'));
    expect(encoder.size).toBe('a\r\n..b'.length);
    encoder.encode(b('\n'));
    expect(encoder.size).toBe('a\r\n..b\r\n'.length);
  });
});

describe('BodyEncoder: BDAT mode (dotStuff = false)', () => {
  it.each([
    ['.\r\n', '.\r\n'],
    ['a\n.\nb', 'a\r\n.\r\nb'],
    ['\r\n.\r\n', '\r\n.\r\n'],
    ['..', '..'],
    ['a\r.\rb', 'a\r\n.\r\nb'],
  ])('encodes %j as %j (line-end normalisation only, no dots)', (input, expected) => {
    expect(enc(input, false)).toBe(expected);
  });

  it('property: output (with end()) is exactly the line-end normalisation of the input, whatever the chunking', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, fc.boolean(), (body, cuts, plain) => {
        const { encoder, out } = encodeChunks(asUint8(splitAt(body, cuts), plain), false);
        const all = Buffer.concat([out, encoder.end()]);
        expect(all.equals(normaliseLineEnds(body))).toBe(true);
        expect(encoder.size).toBe(all.length);
      }),
      { numRuns: 400 },
    );
  });
});

describe('BodyEncoder: no copy when nothing changes', () => {
  it('returns the same Buffer object for content that needs no change', () => {
    for (const s of ['', 'hello', 'hello\r\nworld\r\n', 'a.b\r\nc', 'x\r\n\r\n']) {
      const input = b(s);
      expect(encodeBody(input, true)).toBe(input);
      expect(encodeBody(input, false)).toBe(input);
    }
  });

  it('returns the same Buffer object in BDAT mode even with line-starting dots', () => {
    const input = b('.a\r\n.\r\n..\r\n');
    expect(encodeBody(input, false)).toBe(input);
    expect(encodeBody(input, true)).not.toBe(input);
  });

  it('returns the same object per chunk from a streaming encoder', () => {
    const encoder = new BodyEncoder(true);
    const c1 = b('abc\r');
    const c2 = b('\ndef');
    expect(encoder.encode(c1)).toBe(c1);
    expect(encoder.encode(c2)).toBe(c2);
  });

  it('property: the input is returned as is exactly when encoding would not change it', () => {
    fc.assert(
      fc.property(bodyArb, fc.boolean(), (body, dotStuff) => {
        const out = encodeBody(body, dotStuff);
        if (out.equals(body)) expect(out).toBe(body);
        else expect(out).not.toBe(body);
      }),
      { numRuns: 300 },
    );
  });
});

describe('BodyEncoder: terminator()', () => {
  it('is ".\\r\\n" for empty content', () => {
    expect(terminatorFor([])).toBe('.\r\n');
    expect(terminatorFor([''])).toBe('.\r\n');
    expect(new BodyEncoder(true).terminator()).toBe(DATA_TERMINATOR);
  });

  it('is ".\\r\\n" when the content ends in CRLF', () => {
    expect(terminatorFor(['hello\r\n'])).toBe('.\r\n');
    expect(terminatorFor(['hello\r', '\n'])).toBe('.\r\n');
    expect(terminatorFor(['hello', '\r', '\n'])).toBe('.\r\n');
    expect(terminatorFor(['\r\n'])).toBe('.\r\n');
    expect(terminatorFor(['\r', '\n'])).toBe('.\r\n');
  });

  it('is "\\r\\n.\\r\\n" otherwise', () => {
    expect(terminatorFor(['hello'])).toBe('\r\n.\r\n');
    expect(terminatorFor(['hello\r\n', 'x'])).toBe('\r\n.\r\n');
    expect(terminatorFor(['.'])).toBe('\r\n.\r\n');
  });

  it('completes a final bare CR with its LF: "\\n.\\r\\n"', () => {
    expect(terminatorFor(['hello\r'])).toBe('\n.\r\n');
    expect(terminatorFor(['\r\n', '\r'])).toBe('\n.\r\n');
  });

  // Regression: an earlier encoder looked at the last two INPUT bytes, so content ending in a bare LF
  // (sent as CRLF) got "\r\n.\r\n" and the message grew an extra empty line at its end.
  it('is ".\\r\\n" when the content ends in a bare LF (sent as CRLF)', () => {
    expect(terminatorFor(['hello\n'])).toBe('.\r\n');
  });

  it('is ".\\r\\n" when the content is a single bare LF', () => {
    expect(terminatorFor(['\n'])).toBe('.\r\n');
  });

  it('round-trips "hello\\n" through DATA as "hello\\r\\n" (no extra empty line)', () => {
    const encoder = new BodyEncoder(true);
    const wire = Buffer.concat([encoder.encode(b('hello\n')), encoder.terminator()]);
    expect(decodeData(wire).toString('latin1')).toBe('hello\r\n');
  });
});

describe('BodyEncoder: properties (DATA)', () => {
  it('encoding, then a terminator derived from the encoded bytes, decodes to the normalised original', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, fc.boolean(), (body, cuts, plain) => {
        const { out } = encodeChunks(asUint8(splitAt(body, cuts), plain), true);
        const wire = Buffer.concat([out, b(referenceTerminator(out))]);
        expect(decodeData(wire).toString('latin1')).toBe(expectedDataContent(body).toString('latin1'));
      }),
      { numRuns: 500 },
    );
  });

  it('encoding, then terminator(), decodes to the normalised original ', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, fc.boolean(), (body, cuts, plain) => {
        const { encoder, out } = encodeChunks(asUint8(splitAt(body, cuts), plain), true);
        const wire = Buffer.concat([out, encoder.terminator()]);
        expect(decodeData(wire).toString('latin1')).toBe(expectedDataContent(body).toString('latin1'));
      }),
      { numRuns: 500 },
    );
  });

  it('terminator() is what the encoded bytes call for ', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, fc.boolean(), (body, cuts, dotStuff) => {
        const { encoder, out } = encodeChunks(splitAt(body, cuts), dotStuff);
        expect(encoder.terminator().toString('latin1')).toBe(referenceTerminator(out));
      }),
      { numRuns: 300 },
    );
  });

  it('the encoded content never contains CRLF "." CRLF (nor a line that is just "."), so only the terminator ends DATA', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, (body, cuts) => {
        const { encoder, out } = encodeChunks(splitAt(body, cuts), true);
        // The content starts at the beginning of a line (after the 354), hence the leading CRLF.
        expect(Buffer.concat([b('\r\n'), out]).indexOf('\r\n.\r\n')).toBe(-1);
        // Not even with a bare-LF-tolerant reading of line ends.
        expect(Buffer.concat([b('\n'), out]).indexOf('\n.\r\n')).toBe(-1);
        expect(Buffer.concat([b('\n'), out]).indexOf('\n.\n')).toBe(-1);
        // With the terminator, the first CRLF.CRLF is the very end of the stream.
        const stream = Buffer.concat([b('\r\n'), out, encoder.terminator()]);
        expect(stream.indexOf('\r\n.\r\n')).toBe(stream.length - 5);
      }),
      { numRuns: 500 },
    );
  });

  it('output never contains a bare LF or a bare CR (either mode)', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, fc.boolean(), (body, cuts, dotStuff) => {
        const { encoder, out } = encodeChunks(splitAt(body, cuts), dotStuff);
        expect(hasBareLf(out)).toBe(false);
        const complete = Buffer.concat([out, dotStuff ? encoder.terminator() : encoder.end()]);
        expect(hasBareLf(complete)).toBe(false);
        expect(hasBareCr(complete)).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('chunking invariance: same bytes, size and terminator whatever the split', () => {
    fc.assert(
      fc.property(bodyArb, cutsArb, cutsArb, fc.boolean(), (body, cuts1, cuts2, dotStuff) => {
        const a = encodeChunks(splitAt(body, cuts1), dotStuff);
        const c = encodeChunks(splitAt(body, cuts2), dotStuff);
        const whole = encodeBody(body, dotStuff);
        expect(a.encoder.terminator().equals(c.encoder.terminator())).toBe(true);
        const aAll = Buffer.concat([a.out, a.encoder.end()]);
        const cAll = Buffer.concat([c.out, c.encoder.end()]);
        expect(aAll.equals(whole)).toBe(true);
        expect(cAll.equals(whole)).toBe(true);
        expect(a.encoder.size).toBe(whole.length);
        expect(c.encoder.size).toBe(whole.length);
      }),
      { numRuns: 400 },
    );
  });

  it('dot-stuffing adds exactly one "." per line that starts with "."', () => {
    fc.assert(
      fc.property(bodyArb, (body) => {
        const norm = normaliseLineEnds(body).toString('latin1');
        const dotLines = norm.split('\r\n').filter((line) => line.startsWith('.')).length;
        expect(encodeBody(body, true).length - norm.length).toBe(dotLines);
      }),
      { numRuns: 300 },
    );
  });
});

describe('BodyEncoder: lines longer than 998 octets (RFC 5321 §4.5.3.1.6)', () => {
  const line = (n: number) => 'x'.repeat(n);
  const refusal = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err as SluiceError;
    }
    throw new Error('expected a refusal');
  };

  it.each([true, false])('takes a line of exactly 998 octets (dotStuff %s), with any line end', (dotStuff) => {
    for (const end of ['\r\n', '\n', '\r']) {
      const body = b(`${line(MAX_LINE_LENGTH)}${end}next\r\n`);
      expect(encodeBody(body, dotStuff).toString('latin1')).toBe(`${line(MAX_LINE_LENGTH)}\r\nnext\r\n`);
    }
    expect(encodeBody(b(line(MAX_LINE_LENGTH)), dotStuff).length).toBe(MAX_LINE_LENGTH);
  });

  it('refuses a line of 999 octets with EMESSAGE, naming the line', () => {
    const err = refusal(() => encodeBody(b(`ok\r\n${line(999)}\r\n`), true));
    expect(err).toBeInstanceOf(SluiceError);
    expect(err.code).toBe('EMESSAGE');
    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/^Line 2 of the message is longer than 998 octets/);
  });

  it('counts a line across chunks, and refuses it before returning any byte of the chunk that overflows it', () => {
    const encoder = new BodyEncoder(true);
    expect(encoder.encode(b(line(500))).length).toBe(500);
    expect(encoder.encode(b(line(498))).length).toBe(498);
    expect(refusal(() => encoder.encode(b(`x\r\n`))).code).toBe('EMESSAGE');
    expect(encoder.size).toBe(998);
  });

  it('starts counting afresh after a CRLF split across chunks', () => {
    const encoder = new BodyEncoder(false);
    encoder.encode(b(`${line(998)}\r`));
    expect(encoder.encode(b(`\n${line(998)}`)).length).toBe(999);
  });

  it('property: refuses exactly the bodies that have a line over 998 octets', () => {
    const longBody = fc
      .array(fc.oneof(fc.constantFrom('\r\n', '\n', '\r'), fc.integer({ min: 990, max: 1005 }).map(line)), { maxLength: 6 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(longBody, fc.boolean(), (text, dotStuff) => {
        const longest = Math.max(0, ...text.split(/\r\n|\r|\n/).map((l) => l.length));
        if (longest > MAX_LINE_LENGTH) expect(refusal(() => encodeBody(b(text), dotStuff)).code).toBe('EMESSAGE');
        else expect(() => encodeBody(b(text), dotStuff)).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });
});

describe('has8bit', () => {
  it('detects bytes above 0x7F', () => {
    expect(has8bit(b('plain ascii\r\n'))).toBe(false);
    expect(has8bit(Buffer.from('café', 'utf8'))).toBe(true);
    expect(has8bit(Buffer.from([0x7f]))).toBe(false);
    expect(has8bit(Buffer.from([0x80]))).toBe(true);
    expect(has8bit(Buffer.alloc(0))).toBe(false);
  });
});
