/**
 * Attribute names. OpenTelemetry has no SMTP semantic conventions yet; these follow its general ones
 * (`server.address`, `server.port`, `url.scheme`, `error.type`, `network.operation`) as MailKit's SMTP
 * client does for its `mailkit.net.smtp.client.*` metrics, and put what is sluice's own under `sluice.*`.
 */
import type { Attributes } from '@opentelemetry/api';
import type { DiagnosticsServer } from '@sluice/core';

export const ATTR = {
  serverAddress: 'server.address',
  serverPort: 'server.port',
  urlScheme: 'url.scheme',
  errorType: 'error.type',
  networkOperation: 'network.operation',
  /** The final reply's code (the `.` or BDAT LAST), or the code of the reply that ended the send. */
  responseCode: 'smtp.response.status_code',
  /** Its enhanced status code (RFC 3463), e.g. `5.1.1`. */
  enhancedCode: 'smtp.response.enhanced_status_code',
  /** The command that reply answered (`MAIL`, `RCPT`, `DATA`, `DOT`, `BDAT`, `AUTH`…). */
  command: 'smtp.command',
  outcome: 'sluice.outcome',
  api: 'sluice.api',
  recipients: 'sluice.recipients.count',
  accepted: 'sluice.recipients.accepted',
  rejected: 'sluice.recipients.rejected',
  pending: 'sluice.recipients.pending',
  attempts: 'sluice.attempts',
  connectionId: 'sluice.connection.id',
  queueDuration: 'sluice.queue.duration',
  waitReason: 'sluice.wait.reason',
  phase: 'sluice.connection.phase',
  /** Personal data: only with `recordPersonalData`. */
  from: 'sluice.envelope.from',
  to: 'sluice.envelope.to',
  messageId: 'sluice.message.id',
} as const;

const cache = new WeakMap<DiagnosticsServer, Attributes>();

/** `server.address`, `server.port` and `url.scheme` of a pool's server (one object per server: metric attributes are compared often). */
export function serverAttributes(server: DiagnosticsServer): Attributes {
  let attrs = cache.get(server);
  if (!attrs) {
    attrs = { [ATTR.serverAddress]: server.host, [ATTR.serverPort]: server.port, [ATTR.urlScheme]: server.secure ? 'smtps' : 'smtp' };
    cache.set(server, attrs);
  }
  return attrs;
}

/** What ended a send that was not delivered: the SluiceError's fields (never its message, which may quote addresses). */
export interface Failure {
  code: string;
  outcome: string;
  responseCode: number | undefined;
  enhancedCode: string | undefined;
  command: string | undefined;
  message: string;
}

export function failure(error: unknown): Failure {
  const e = (error ?? {}) as { code?: unknown; outcome?: unknown; responseCode?: unknown; enhancedCode?: unknown; command?: unknown; message?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : 'EINTERNAL',
    outcome: typeof e.outcome === 'string' ? e.outcome : 'failed',
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : undefined,
    enhancedCode: typeof e.enhancedCode === 'string' ? e.enhancedCode : undefined,
    command: typeof e.command === 'string' ? e.command : undefined,
    message: typeof e.message === 'string' ? e.message : String(error),
  };
}
