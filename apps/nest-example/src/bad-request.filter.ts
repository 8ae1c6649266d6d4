import { type ArgumentsHost, BadRequestException, Catch, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';

/**
 * Answers a BadRequestException (the controller's checks, and a body that is not JSON) in the shape of
 * every other error of the app, core's httpErrorFor body: `{ error: { code: 'EINVALID', kind: 'input', message } }`.
 */
@Catch(BadRequestException)
export class BadRequestFilter implements ExceptionFilter<BadRequestException> {
  catch(exception: BadRequestException, host: ArgumentsHost): void {
    const answer = exception.getResponse();
    const message = typeof answer === 'object' && answer !== null && 'message' in answer ? String(answer.message) : exception.message;
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(400)
      .json({ error: { code: 'EINVALID', kind: 'input', message } });
  }
}
