/** Stable codes of the errors the mock server throws. */
export type MockServerErrorCode =
  /** An invalid option, fault rule or reply. */
  | 'EMOCKOPTIONS'
  /** inbox.waitFor() ran out of time. */
  | 'EMOCKTIMEOUT'
  /** The server was closed while something waited on it. */
  | 'EMOCKCLOSED'
  /** Used at the wrong time (the vitest helper read outside its hooks). */
  | 'EMOCKSTATE';

export class MockServerError extends Error {
  override name = 'MockServerError';
  constructor(
    readonly code: MockServerErrorCode,
    message: string,
  ) {
    super(message);
  }
}
