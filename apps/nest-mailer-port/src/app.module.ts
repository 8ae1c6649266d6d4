import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_FILTER } from '@nestjs/core';
import { SluiceExceptionFilter } from '@sluice/nestjs';
import { AuthController } from './auth.controller.js';
import { MailModule } from './mail/mail.module.js';

@Module({
  imports: [ConfigModule.forRoot({ isGlobal: true }), MailModule],
  controllers: [AuthController],
  providers: [{ provide: APP_FILTER, useClass: SluiceExceptionFilter }],
})
export class AppModule {}
