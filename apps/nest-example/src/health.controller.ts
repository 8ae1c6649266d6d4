import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { SluiceHealthIndicator } from '@sluice/nestjs/terminus';

@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(SluiceHealthIndicator) private readonly smtp: SluiceHealthIndicator,
  ) {}

  /** 200 when the SMTP server answers (connect, EHLO, STARTTLS, AUTH), 503 otherwise. */
  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.smtp.isHealthy('smtp', { timeout: 3000 })]);
  }
}
