import 'reflect-metadata';
import { Controller, Get, Inject, Module, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test, type TestingModule } from '@nestjs/testing';
import type { MockServer } from '@sluice/mock-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceModule } from '../src/index.js';
import { SluiceHealthIndicator } from '../src/terminus.js';
import { downServer, startServer } from './helpers.js';

@Controller('health')
class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(SluiceHealthIndicator) private readonly smtp: SluiceHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.smtp.isHealthy('smtp'), () => this.smtp.isHealthy('billing', { name: 'billing' })]);
  }
}

describe('SluiceHealthIndicator', () => {
  let server: MockServer;
  let stalled: MockServer;
  let moduleRef: TestingModule;
  let indicator: SluiceHealthIndicator;
  let closed: number;
  let down: MockServer;

  beforeAll(async () => {
    [server, stalled] = await Promise.all([startServer(), startServer({ faults: [{ command: 'CONNECT', action: 'stall' }] })]);
    down = await downServer();
    closed = down.port;
    @Module({
      imports: [
        TerminusModule.forRoot({ logger: false }),
        SluiceModule.forRoot({ host: server.host, port: server.port }),
        SluiceModule.forRoot({ name: 'billing', host: '127.0.0.1', port: closed }),
        SluiceModule.forRoot({ name: 'stalled', host: stalled.host, port: stalled.port }),
      ],
      controllers: [HealthController],
      providers: [SluiceHealthIndicator],
    })
    class HealthModule {}
    moduleRef = await Test.createTestingModule({ imports: [HealthModule] }).compile();
    indicator = moduleRef.get(SluiceHealthIndicator);
  });
  afterAll(async () => {
    await moduleRef.close();
    await Promise.all([server.close(), stalled.close(), down.close()]);
  });

  it('is up when the server can be verified', async () => {
    expect(await indicator.isHealthy('smtp')).toEqual({ smtp: { status: 'up', encrypted: false, authenticated: false } });
  });

  it('is down with the error code when it cannot', async () => {
    const result = await indicator.isHealthy('billing', { name: 'billing' });
    expect(result.billing).toMatchObject({ status: 'down', code: 'ECONNECTION' });
  });

  it('is down after its timeout', async () => {
    const started = Date.now();
    const result = await indicator.isHealthy('stalled', { name: 'stalled', timeout: 200 });
    expect(result.stalled).toMatchObject({ status: 'down', code: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('works with HealthCheckService', async () => {
    const controller = moduleRef.get(HealthController);
    const error = await controller.check().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    expect((error as ServiceUnavailableException).getResponse()).toMatchObject({
      status: 'error',
      info: { smtp: { status: 'up' } },
      error: { billing: { status: 'down', code: 'ECONNECTION' } },
    });
  });
});
