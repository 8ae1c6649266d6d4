import { Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import type { SluiceModuleOptions } from '@sluice/nestjs';
import { smtpFromEnv } from 'example-env';

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

/** SMTP_HOST, SMTP_PORT, SMTP_SECURE, SMTP_USER, SMTP_PASS, SMTP_TLS_CA, SMTP_TLS_INSECURE (see example-env), or the mock server. */
export async function createSmtpTarget(env: NodeJS.ProcessEnv = process.env): Promise<SmtpTarget> {
  const logger = new Logger('SmtpTarget');
  const options = smtpFromEnv(env, (line) => logger.warn(line));
  if (options) return new SmtpTarget({ ...options, verifyOnStart: 'warn' }, null);
  const mock = await startMockServer({ rtt: Number(env.MOCK_RTT ?? 20), extensions: { starttls: false } });
  return new SmtpTarget({ host: mock.host, port: mock.port, verifyOnStart: 'warn' }, mock);
}

@Module({
  providers: [{ provide: SmtpTarget, useFactory: () => createSmtpTarget() }],
  exports: [SmtpTarget],
})
export class SmtpTargetModule {}
