import { Connection } from '../connection/connection.js';
import { ErrorCodes, SluiceError, abortError } from '../errors.js';
import type { ConnectionOptions } from '../options.js';
import type { Capabilities } from '../protocol/capabilities.js';
import type { VerifyOptions, VerifyResult } from './types.js';

/** A connection's owner that never hands it a message: setup only. */
const SETUP_ONLY = { free: () => {}, settle: () => {}, idle: () => {}, closed: () => {} };

/**
 * Opens a connection, runs greeting, EHLO, STARTTLS and AUTH, then QUITs. `timeout` rejects with
 * ETIMEDOUT and `signal` with EABORT; both cut the connection at once.
 */
export async function verify(options: ConnectionOptions, { signal, timeout }: VerifyOptions = {}): Promise<VerifyResult> {
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
    throw new SluiceError(ErrorCodes.EOPTIONS, `verify({ timeout }) must be a positive integer (ms), got ${JSON.stringify(timeout)}`, { permanent: true });
  }
  if (signal?.aborted) throw abortError(signal, 'The verification was aborted');
  const conn = new Connection({ ...options, maxMessages: 1 }, SETUP_ONLY);
  const onAbort = () => conn.destroy(abortError(signal!, 'The verification was aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeout === undefined
      ? null
      : setTimeout(() => conn.destroy(new SluiceError(ErrorCodes.ETIMEDOUT, `verify() timed out after ${timeout} ms`, { command: 'VERIFY' })), timeout);
  let capabilities: Capabilities;
  try {
    capabilities = await conn.open();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (timer) clearTimeout(timer);
  }
  const result = { capabilities, encrypted: conn.encrypted, authenticated: conn.authenticated };
  conn.quit();
  return result;
}
