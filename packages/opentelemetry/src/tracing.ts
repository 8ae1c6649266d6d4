/**
 * One CLIENT span per send, from the `sluice:send` TracingChannel: started at `start` (in the caller's
 * context, so it is a child of the caller's active span), ended at `asyncEnd` with the outcome.
 * Without `recordPersonalData` the span carries no address, no message id and no reply text: a
 * failure's status message is its stable code, and the exception is not recorded (its message may
 * quote the server's reply, which often names the recipient).
 */
import { type Span, SpanKind, SpanStatusCode, type Tracer, context } from '@opentelemetry/api';
import { type SendContext, subscribeDiagnostics } from '@sluice/core';
import { ATTR, failure, serverAttributes } from './attributes.js';

export interface TracingOptions {
  tracer: Tracer;
  recordPersonalData: boolean;
}

/** Subscribes; returns the unsubscribe. */
export function traceSends({ tracer, recordPersonalData }: TracingOptions): () => void {
  const spans = new WeakMap<SendContext, Span>();
  return subscribeDiagnostics({
    send: {
      start(ctx) {
        const span = tracer.startSpan(
          'smtp send',
          {
            kind: SpanKind.CLIENT,
            attributes: { ...serverAttributes(ctx.server), [ATTR.networkOperation]: 'send', [ATTR.api]: ctx.operation, [ATTR.recipients]: ctx.recipients },
          },
          context.active(),
        );
        if (recordPersonalData && ctx.envelope) span.setAttributes({ [ATTR.from]: ctx.envelope.from, [ATTR.to]: ctx.envelope.to });
        spans.set(ctx, span);
      },
      asyncEnd(ctx) {
        const span = spans.get(ctx);
        if (!span) return;
        spans.delete(ctx);
        const result = ctx.result;
        if (result) {
          span.setAttributes({
            [ATTR.outcome]: 'delivered',
            [ATTR.responseCode]: result.responseCode,
            [ATTR.accepted]: result.accepted.length,
            [ATTR.rejected]: result.rejected.length,
            [ATTR.pending]: result.pending.length,
            [ATTR.attempts]: result.attempts,
            [ATTR.connectionId]: result.connectionId,
            [ATTR.queueDuration]: Math.max(0, result.timings.started - result.timings.queued) / 1000,
          });
          if (result.enhancedCode) span.setAttribute(ATTR.enhancedCode, result.enhancedCode);
          if (recordPersonalData && result.messageId) span.setAttribute(ATTR.messageId, result.messageId);
        } else {
          const f = failure(ctx.error);
          span.setAttributes({ [ATTR.outcome]: f.outcome, [ATTR.errorType]: f.code });
          if (f.responseCode !== undefined) span.setAttribute(ATTR.responseCode, f.responseCode);
          if (f.enhancedCode) span.setAttribute(ATTR.enhancedCode, f.enhancedCode);
          if (f.command) span.setAttribute(ATTR.command, f.command);
          if (recordPersonalData && ctx.error instanceof Error) span.recordException(ctx.error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: recordPersonalData ? f.message : f.code });
        }
        span.end();
      },
    },
  });
}
