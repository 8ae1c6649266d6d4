import { type HttpErrorAnswer, httpErrorFor, isSluiceError } from '@sluice/core';
import type { ErrorRequestHandler, Request } from 'express';

/** What the error handler logs: one entry per error it answers. */
export interface ErrorLogEntry {
  /** e.g. 'POST /signup' */
  route: string;
  status: number;
  /** The stable code: a SluiceError's (EENVELOPE, ECONNECTION…), EINVALID for a bad request body, EINTERNAL otherwise. */
  code: string;
  /** The error as thrown (with its stack and cause), for your logs only: never sent to the client. */
  error: unknown;
}

export interface SluiceErrorHandlerOptions {
  /**
   * Called for every error answered. Default: `console.error` for a 5xx (with the error), `console.warn`
   * otherwise, each line with the route, status and code. `false` logs nothing.
   */
  log?: false | ((entry: ErrorLogEntry) => void);
}

function defaultLog({ route, status, code, error }: ErrorLogEntry): void {
  const detail = isSluiceError(error) ? `${error.kind}${error.responseCode ? ` ${error.responseCode}` : ''}: ${error.message}` : error;
  if (status >= 500) console.error(`${route} -> ${status} ${code}`, detail);
  else console.warn(`${route} -> ${status} ${code}`, detail);
}

/** An error of Express's own body parser and friends (http-errors): a 4xx whose message is meant for the client. */
function clientError(err: unknown): { status: number; message: string } | null {
  const { status, statusCode, expose, message } = (err ?? {}) as { status?: number; statusCode?: number; expose?: boolean; message?: string };
  const code = status ?? statusCode;
  return expose === true && typeof code === 'number' && code >= 400 && code < 500 ? { status: code, message: String(message) } : null;
}

/**
 * The last `app.use()` of an app that sends mail: answers every error in JSON with core's `httpErrorFor`
 * mapping instead of Express's HTML page with a stack trace. A SluiceError gets its status (input 400,
 * refused 422, transient 503 with retry-after, unknown 502, config 500) and
 * `{ error: { code, kind, message, outcome?, responseCode?, enhancedCode?, command? } }`; a bad request
 * body (express.json()) gets its 4xx with `code: 'EINVALID'`; anything else a 500 with `code: 'EINTERNAL'`
 * and a generic message (the details go to the log, never to the client).
 */
export function sluiceErrorHandler(options: SluiceErrorHandlerOptions = {}): ErrorRequestHandler {
  const log = options.log === undefined ? defaultLog : options.log;
  return (err, req, res, next) => {
    // Too late to answer: Express closes the connection.
    if (res.headersSent) return next(err);
    const client = isSluiceError(err) ? null : clientError(err);
    const answer: HttpErrorAnswer = client
      ? { status: client.status, headers: {}, body: { error: { code: 'EINVALID', kind: 'input', message: client.message } } }
      : httpErrorFor(err);
    if (log) log({ route: routeOf(req), status: answer.status, code: answer.body.error.code, error: err });
    res.status(answer.status).set(answer.headers).json(answer.body);
  };
}

function routeOf(req: Request): string {
  return `${req.method} ${req.originalUrl.split('?')[0]}`;
}
