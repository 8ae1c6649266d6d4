/**
 * The relay's front door refuses what it could not forward: a message with a line longer than 998
 * octets (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1), which the core refuses to write upstream. Refused at
 * DATA time, the sending program sees the error at once; accepted, it would only come back as a bounce.
 * The rule itself (and its reading of line ends) is the core's: LineLengthCheck.
 */
import { LineLengthCheck, MAX_LINE_LENGTH } from '@sluice/core';

export class LineTooLongError extends Error {
  constructor(readonly line: number) {
    super(`line ${line} is longer than ${MAX_LINE_LENGTH} octets`);
  }
}

/**
 * Passes the content through unchanged until a line is too long; from there it reads the rest without
 * passing it on (so that the client still gets its reply) and ends with LineTooLongError.
 */
export async function* limitLines(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const check = new LineLengthCheck();
  for await (const chunk of source) if (check.push(chunk)) yield chunk;
  if (check.longLine !== 0) throw new LineTooLongError(check.longLine);
}
