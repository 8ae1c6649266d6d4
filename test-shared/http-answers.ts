/**
 * The HTTP answers that @sluice/express's sluiceErrorHandler() and @sluice/nestjs's SluiceExceptionFilter
 * both give for the same failures (the core's httpErrorFor()), asserted in one place so that the two
 * adapters cannot drift apart. Test-only: imported by relative path from those packages' tests, like
 * vitest.shared.ts from their configs; no package depends on another for it.
 */
import { expect } from 'vitest';

/** What a test read back from the server. */
export interface HttpAnswer {
  status: number;
  contentType: string | null | undefined;
  body: unknown;
}

/** A send to a malformed address (`ada@` by default): 400 JSON, refused before the wire. */
export function expectBadAddressAnswer(answer: HttpAnswer, address = 'ada@'): void {
  expect(answer.status).toBe(400);
  expect(answer.contentType).toMatch(/^application\/json/);
  expect(answer.body).toEqual({
    error: {
      code: 'EENVELOPE',
      kind: 'input',
      outcome: 'rejected',
      command: 'ENVELOPE',
      message: expect.stringContaining(`"${address}" is not of the form local@domain`),
    },
  });
}

/** A send whose only recipient the server refused with `550 5.1.1`: 422 with the reply's codes. */
export function expectRefusedRecipientAnswer(answer: HttpAnswer): void {
  expect(answer.status).toBe(422);
  expect((answer.body as { error?: unknown }).error).toMatchObject({
    code: 'EENVELOPE',
    kind: 'refused',
    outcome: 'rejected',
    responseCode: 550,
    enhancedCode: '5.1.1',
    command: 'RCPT',
  });
}
