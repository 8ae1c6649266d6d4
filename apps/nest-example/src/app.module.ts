import { Inject, Injectable, Logger, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { MailerService, SluiceExceptionFilter, SluiceModule } from '@sluice/nestjs';
import { SluiceHealthIndicator } from '@sluice/nestjs/terminus';
import { logSendFailures } from 'example-env';
import { BadRequestFilter } from './bad-request.filter.js';
import { HealthController } from './health.controller.js';
import { MailController } from './mail.controller.js';
import { SmtpTarget, SmtpTargetModule } from './smtp-target.js';

/** Logs every message that is not delivered, with its code. */
@Injectable()
export class SendFailureLog {
  constructor(@Inject(MailerService) mailer: MailerService) {
    const logger = new Logger('Mail');
    // A TestMailer standing in for MailerService (tests) has no pool.
    if (mailer.pool) logSendFailures(mailer.pool, (line) => logger.warn(line));
  }
}

@Module({
  imports: [
    SluiceModule.forRootAsync({
      imports: [SmtpTargetModule],
      inject: [SmtpTarget],
      useFactory: (target: SmtpTarget) => target.options,
    }),
    TerminusModule,
  ],
  controllers: [MailController, HealthController],
  // SluiceExceptionFilter: a SluiceError becomes core's httpErrorFor answer (422, 503…), not Nest's 500;
  // BadRequestFilter gives bad input the same shape.
  providers: [
    SluiceHealthIndicator,
    SendFailureLog,
    { provide: APP_FILTER, useClass: SluiceExceptionFilter },
    { provide: APP_FILTER, useClass: BadRequestFilter },
  ],
})
export class AppModule {}
