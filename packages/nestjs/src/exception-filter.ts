import { type ArgumentsHost, Catch, type ExceptionFilter, Inject, Logger, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { httpErrorFor, SluiceError } from '@sluice/core';

/** The response methods of Express (`status`/`set`/`json`) and Fastify (`code`/`header`/`send`), for a filter made without DI. */
interface AnyResponse {
  status?(code: number): AnyResponse;
  code?(code: number): AnyResponse;
  setHeader?(name: string, value: string): unknown;
  header?(name: string, value: string): unknown;
  json?(body: unknown): unknown;
  send?(body: unknown): unknown;
}

/**
 * Answers a SluiceError that reaches Nest with core's `httpErrorFor` mapping instead of Nest's 500:
 * input 400, refused 422, transient 503 (with retry-after), unknown 502, config 500; the body is
 * `{ error: { code, kind, message, outcome?, responseCode?, enhancedCode?, command? } }`. Opt in with
 * `app.useGlobalFilters(new SluiceExceptionFilter())` or `{ provide: APP_FILTER, useClass: SluiceExceptionFilter }`.
 * Each error is logged with its code (server errors as errors, the client's as warnings).
 */
@Catch(SluiceError)
export class SluiceExceptionFilter implements ExceptionFilter<SluiceError> {
  private readonly logger = new Logger('SluiceExceptionFilter');

  constructor(@Optional() @Inject(HttpAdapterHost) private readonly adapterHost?: HttpAdapterHost) {}

  catch(error: SluiceError, host: ArgumentsHost): void {
    // Only HTTP has a status to map to; in other contexts (microservices, websockets) the error goes on.
    if (host.getType() !== 'http') throw error;
    const { status, headers, body } = httpErrorFor(error);
    const line = `Mail failed (${error.code}, ${error.kind}${error.responseCode ? `, ${error.responseCode}` : ''}): ${error.message}`;
    if (status >= 500) this.logger.error(line);
    else this.logger.warn(line);
    const response = host.switchToHttp().getResponse<AnyResponse>();
    const adapter = this.adapterHost?.httpAdapter;
    if (adapter) {
      for (const [name, value] of Object.entries(headers)) adapter.setHeader(response, name, value);
      adapter.reply(response, body, status);
      return;
    }
    for (const [name, value] of Object.entries(headers)) (response.setHeader ?? response.header)?.call(response, name, value);
    const withStatus = response.status ? response.status(status) : response.code!(status);
    if (withStatus.json) withStatus.json(body);
    else withStatus.send!(body);
  }
}
