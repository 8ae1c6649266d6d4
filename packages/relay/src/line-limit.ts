/**
 * The relay's front door refuses what it could not forward: a message with a line longer than 998
 * octets (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1), which the core refuses to write upstream. Refused at
 * DATA time, the sending program sees the error at once; accepted, it would only come back as a bounce.
 */

const CR = 0x0d;
const LF = 0x0a;
export const MAX_LINE_LENGTH = 998;

export class LineTooLongError extends Error {
  constructor(readonly line: number) {
    super(`line ${line} is longer than ${MAX_LINE_LENGTH} octets`);
  }
}

/**
 * Passes the content through unchanged until a line is too long; from there it reads the rest without
 * passing it on (so that the client still gets its reply) and ends with LineTooLongError. CR and LF each
 * end a line, as they do for the core's encoder.
 */
export async function* limitLines(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let column = 0;
  let line = 1;
  let tooLong = 0;
  for await (const chunk of source) {
    if (tooLong) continue;
    let start = 0;
    let nextCr = chunk.indexOf(CR);
    let nextLf = chunk.indexOf(LF);
    while (nextCr !== -1 || nextLf !== -1) {
      const end = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      if (column + end - start > MAX_LINE_LENGTH) break;
      column = 0;
      if (chunk[end] === LF || chunk[end + 1] !== LF) line++;
      start = end + 1;
      if (end === nextCr) nextCr = chunk.indexOf(CR, start);
      else nextLf = chunk.indexOf(LF, start);
    }
    if (nextCr !== -1 || nextLf !== -1 || column + chunk.length - start > MAX_LINE_LENGTH) {
      tooLong = line;
      continue;
    }
    column += chunk.length - start;
    yield chunk;
  }
  if (tooLong) throw new LineTooLongError(tooLong);
}
