import { type ErrorKind, isSluiceError } from './errors.js';

/** The HTTP answer for an error: see `httpErrorFor`. */
export interface HttpErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: {
    error: {
      code: string;
      kind: string;
      message: string;
      outcome?: string;
      responseCode?: number;
      enhancedCode?: string;
      command?: string;
      /** Recipients the server refused along the way (a refused or failed send): which ones, and why. */
      rejected?: Array<{ address: string; code: number; enhancedCode: string | null; response: string }>;
    };
  };
}

/** Status per kind (the table is in the README, "Errors over HTTP"). */
const STATUS: Record<ErrorKind, number> = { input: 400, refused: 422, transient: 503, unknown: 502, config: 500 };

/** Seconds in `retry-after`: a full queue drains in moments; a server's 4xx or a lost connection takes longer. */
const RETRY_AFTER_QUEUE_FULL = '1';
const RETRY_AFTER = '30';

/**
 * Maps any thrown value to an HTTP answer, for the adapters (express, nestjs, the relay) to share one
 * table: input 400, refused 422, transient 503 (with `retry-after`, except for a closed pool, which
 * will not come back), unknown 502, config 500.
 *
 * Nothing secret or internal goes out: a config error (credentials, TLS, options) and any error that
 * is not a SluiceError get a generic message (the details belong in the server's logs); `command` is
 * only the SMTP verb (never an AUTH argument).
 */
export function httpErrorFor(error: unknown): HttpErrorAnswer {
  if (!isSluiceError(error)) {
    return { status: 500, headers: {}, body: { error: { code: 'EINTERNAL', kind: 'internal', message: 'Internal error' } } };
  }
  const kind = error.kind;
  const headers: Record<string, string> = {};
  if (kind === 'transient' && error.code !== 'ECLOSED') headers['retry-after'] = error.code === 'EQUEUEFULL' ? RETRY_AFTER_QUEUE_FULL : RETRY_AFTER;
  const message = kind === 'config' ? 'The mail service is misconfigured' : oneLine(error.message);
  const body: HttpErrorAnswer['body']['error'] = { code: error.code, kind, message };
  if (error.outcome !== undefined) body.outcome = error.outcome;
  if (kind !== 'config') {
    if (error.responseCode !== undefined) body.responseCode = error.responseCode;
    if (error.enhancedCode !== undefined) body.enhancedCode = error.enhancedCode;
    const verb = error.command?.split(' ')[0];
    if (verb && /^[A-Z_]+$/.test(verb)) body.command = verb;
    if (error.rejected?.length) body.rejected = error.rejected.map(({ address, code, enhancedCode, response }) => ({ address, code, enhancedCode, response }));
  }
  return { status: STATUS[kind], headers, body: { error: body } };
}

/** One line, bounded: a server reply can be long and multi-line. */
function oneLine(text: string): string {
  const flat = text.replace(/[\r\n\0]+/g, ' ');
  return flat.length > 500 ? `${flat.slice(0, 497)}...` : flat;
}
