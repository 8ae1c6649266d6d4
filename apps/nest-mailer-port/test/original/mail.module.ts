// The same module as src/mail/mail.module.ts, still on @nestjs-modules/mailer: the bridge. Its
// `transport` option takes a nodemailer transport, so sluiceTransport() gives it sluice's pool while
// everything else (templates, defaults, MailerService) stays @nestjs-modules/mailer's.

import { join } from 'node:path';
import { Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { MailerModule, type MailerOptions } from '@nestjs-modules/mailer';
import { HandlebarsAdapter } from '@nestjs-modules/mailer/adapters/handlebars.adapter';
import { sluiceTransport } from '@sluice/nodemailer';

@Global()
@Module({
  imports: [
    MailerModule.forRootAsync({
      imports: [ConfigModule], // its types require `imports`
      // `as MailerOptions`: @nestjs-modules/mailer 2.3's types do not accept `defaults` with nodemailer 10's
      // types (its own README's code does not type-check here either); at run time it takes them.
      useFactory: async (config: ConfigService) =>
        ({
          // The bridge: was `transport: { host, secure, auth }`.
          transport: sluiceTransport({ host: config.getOrThrow<string>('MAIL_HOST'), port: Number(config.get('MAIL_PORT')), secure: false, maxConnections: 2 }),
          defaults: {
            from: `"No Reply" <${config.get('MAIL_FROM')}>`,
          },
          template: {
            dir: join(import.meta.dirname, '../../src/mail/templates'),
            adapter: new HandlebarsAdapter(),
            options: {
              strict: true,
            },
          },
        }) as MailerOptions,
      inject: [ConfigService],
    }),
  ],
})
export class OriginalMailModule {}
