import { join } from 'node:path';
import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
// Ported: these two imports were '@nestjs-modules/mailer' and '@nestjs-modules/mailer/adapters/handlebars.adapter'.
import { SluiceModule } from '@sluice/nestjs';
import { HandlebarsAdapter } from '@sluice/nestjs/handlebars';
import { MailService } from './mail.service.js';

@Global()
@Module({
  imports: [
    SluiceModule.forRootAsync({
      // imports: [ConfigModule], // import module if not enabled globally
      useFactory: async (config: ConfigService) => ({
        // Ported: `transport: { host, secure, auth }` is flat here (sluice's pool options); host and the
        // credentials are required (getOrThrow), and `auth` is given only with a user.
        host: config.getOrThrow<string>('MAIL_HOST'),
        port: Number(config.get('MAIL_PORT') ?? 587),
        secure: false,
        auth: config.get('MAIL_USER') ? { user: config.getOrThrow<string>('MAIL_USER'), pass: config.getOrThrow<string>('MAIL_PASSWORD') } : undefined,
        defaults: {
          from: `"No Reply" <${config.get('MAIL_FROM')}>`,
        },
        template: {
          // Nest 12 is ESM: import.meta.dirname is __dirname. The templates are copied next to the
          // compiled file (nest-cli.json "assets", here copy-assets.mjs).
          dir: join(import.meta.dirname, 'templates'),
          // Ported: Handlebars options go to the adapter.
          adapter: new HandlebarsAdapter({ compileOptions: { strict: true } }),
        },
      }),
      inject: [ConfigService],
    }),
  ],
  providers: [MailService],
  exports: [MailService],
})
export class MailModule {}
