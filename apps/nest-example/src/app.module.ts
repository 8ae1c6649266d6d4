import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SluiceModule } from '@sluice/nestjs';
import { SluiceHealthIndicator } from '@sluice/nestjs/terminus';
import { HealthController } from './health.controller.js';
import { MailController } from './mail.controller.js';
import { SmtpTarget, SmtpTargetModule } from './smtp-target.js';

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
  providers: [SluiceHealthIndicator],
})
export class AppModule {}
