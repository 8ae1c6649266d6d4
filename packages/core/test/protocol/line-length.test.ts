import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { BodyEncoder } from '../../src/protocol/body.js';
import { LineLengthCheck, MAX_LINE_LENGTH } from '../../src/protocol/line-length.js';
import { splitAt, thrown } from './util.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const line = (n: number) => 'x'.repeat(n);

/** The index of the chunk at which the check says no (-1: none), and its verdict at the end. */
function check(chunks: Buffer[]): { at: number; longLine: number; end: unknown } {
  const c = new LineLengthCheck();
  let at = -1;
  chunks.forEach((chunk, i) => {
    if (!c.push(chunk) && at === -1) at = i;
  });
  let end: unknown;
  try {
    c.end();
  } catch (err) {
    end = err;
  }
  return { at, longLine: c.longLine, end };
}

/** The index of the chunk at which the encoder refuses (-1: none), and its error. */
function encoderVerdict(chunks: Buffer[], dotStuff: boolean): { at: number; error: unknown } {
  const encoder = new BodyEncoder(dotStuff);
  for (let i = 0; i < chunks.length; i++) {
    try {
      encoder.encode(chunks[i]!);
    } catch (error) {
      return { at: i, error };
    }
  }
  return { at: -1, error: undefined };
}

describe('LineLengthCheck (RFC 5321 §4.5.3.1.6)', () => {
  it('passes a line of 998 octets and refuses one of 999, naming the line, with the encoder’s error', () => {
    expect(check([b(`a\r\n${line(MAX_LINE_LENGTH)}\r\n`)])).toEqual({ at: -1, longLine: 0, end: undefined });
    const refused = check([b('a\r\nb\n'), b(`${line(999)}\r\n`), b('more\r\n')]);
    expect(refused.at).toBe(1);
    expect(refused.longLine).toBe(3);
    const err = refused.end as SluiceError;
    expect(err).toBeInstanceOf(SluiceError);
    expect({ code: err.code, permanent: err.permanent, command: err.command, kind: err.kind }).toEqual({
      code: 'EMESSAGE',
      permanent: true,
      command: 'DATA',
      kind: 'input',
    });
    expect(err.message).toMatch(/^Line 3 of the message is longer than 998 octets/);
  });

  it('counts a line across chunks and a CRLF split over two chunks as one line end', () => {
    expect(check([b(line(500)), b(line(498)), b('\r'), b(`\n${line(998)}\r\n`)]).at).toBe(-1);
    const split = check([b(`${line(10)}\r`), b('\n'), b(`${line(999)}`)]);
    expect([split.at, split.longLine]).toEqual([2, 2]);
    expect(check([b(line(998)), b('x')]).at).toBe(1);
  });

  it('property: says no at the same chunk as the encoder, with the same error', () => {
    const text = fc
      .array(fc.oneof(fc.constantFrom('\r\n', '\n', '\r', '.'), fc.integer({ min: 0, max: 1005 }).map(line)), { maxLength: 8 })
      .map((parts) => b(parts.join('')));
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (body, cuts, dotStuff) => {
        const chunks = splitAt(body, cuts);
        const ours = check(chunks);
        const encoder = encoderVerdict(chunks, dotStuff);
        expect(ours.at).toBe(encoder.at);
        if (encoder.at === -1) expect(ours.end).toBeUndefined();
        else expect((ours.end as Error).message).toBe((encoder.error as Error).message);
      }),
      { numRuns: 500 },
    );
  });

  it('reads Uint8Array chunks as well as Buffers', () => {
    const c = new LineLengthCheck();
    expect(c.push(new Uint8Array(MAX_LINE_LENGTH))).toBe(true);
    expect(c.push(new Uint8Array([0x0d, 0x0a, 0x41]))).toBe(true);
    expect(c.push(new Uint8Array(MAX_LINE_LENGTH))).toBe(false);
    expect(thrown(() => c.end())).toBeInstanceOf(SluiceError);
  });
});
