import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { SluiceError } from '@sluice/core';
import { type MailerService, getMailerToken } from './mailer.js';

export interface SluiceHealthCheckOptions {
  /** The pool to check (its `name` in `SluiceModule.forRoot`). Default: the default pool. */
  name?: string;
  /** Report down when verification takes longer than this many ms. Default 5000. */
  timeout?: number;
}

/**
 * A @nestjs/terminus health indicator: up when the pool's SMTP server can be verified (connect, EHLO,
 * STARTTLS, AUTH, QUIT), down with the error code otherwise. Provide it next to `TerminusModule`.
 */
@Injectable()
export class SluiceHealthIndicator {
  // Explicit @Inject tokens: the published build (esbuild) emits no design:paramtypes metadata.
  constructor(
    @Inject(HealthIndicatorService) private readonly health: HealthIndicatorService,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
  ) {}

  async isHealthy<const Key extends string>(key: Key, options: SluiceHealthCheckOptions = {}) {
    const indicator = this.health.check(key);
    const mailer = this.moduleRef.get<MailerService>(getMailerToken(options.name), { strict: false });
    try {
      // verify() itself gives up after `timeout` (ETIMEDOUT) and cuts its connection.
      const { encrypted, authenticated } = await mailer.verify({ timeout: options.timeout ?? 5000 });
      return indicator.up({ encrypted, authenticated });
    } catch (err) {
      const { code = 'ERROR', message } = err as SluiceError;
      return indicator.down({ code, message });
    }
  }
}
