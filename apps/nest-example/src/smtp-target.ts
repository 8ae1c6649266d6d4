import { Module, type OnApplicationShutdown } from '@nestjs/common';
import type { SluiceModuleOptions } from '@sluice/nestjs';
import { type MockServer, startMockServer } from '@sluice/mock-server';

/**
 * Where the app sends: a real SMTP server when SMTP_HOST is set, otherwise sluice's embedded mock
 * server (a real SMTP server on a free port, with a simulated round trip of MOCK_RTT ms).
 */
export class SmtpTarget implements OnApplicationShutdown {
  constructor(
    readonly options: SluiceModuleOptions,
    /** The embedded mock server, or null when sending to SMTP_HOST. */
    readonly mock: MockServer | null,
  ) {}

  /** Runs after SluiceModule drained its pool: Nest shuts down importing modules before the modules they import. */
  async onApplicationShutdown(): Promise<void> {
    await this.mock?.close();
  }
}

export async function createSmtpTarget(env: NodeJS.ProcessEnv = process.env): Promise<SmtpTarget> {
  if (env.SMTP_HOST) {
    const secure = env.SMTP_SECURE === 'true' || env.SMTP_SECURE === '1';
    const options: SluiceModuleOptions = {
      host: env.SMTP_HOST,
      port: Number(env.SMTP_PORT ?? (secure ? 465 : 587)),
      secure,
      verifyOnStart: 'warn',
    };
    if (env.SMTP_USER) options.auth = { user: env.SMTP_USER, pass: env.SMTP_PASS ?? '' };
    return new SmtpTarget(options, null);
  }
  const mock = await startMockServer({ rtt: Number(env.MOCK_RTT ?? 20), extensions: { starttls: false } });
  return new SmtpTarget({ host: mock.host, port: mock.port, verifyOnStart: 'warn' }, mock);
}

@Module({
  providers: [{ provide: SmtpTarget, useFactory: () => createSmtpTarget() }],
  exports: [SmtpTarget],
})
export class SmtpTargetModule {}
