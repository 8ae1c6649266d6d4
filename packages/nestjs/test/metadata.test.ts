import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailerService, SluiceModule } from '../src/index.js';
import { TestMailer } from '../src/testing.js';
import { startServer } from './helpers.js';

class Clock {
  now() {
    return 42;
  }
}

// No @Inject(): Nest resolves these parameters only from the design:paramtypes metadata that the
// transform emits when tsconfig has emitDecoratorMetadata. If it stops being emitted, these tests fail.
@Injectable()
class Welcome {
  constructor(
    readonly mailer: MailerService,
    readonly clock: Clock,
  ) {}
}

describe('decorator metadata (vitest transform)', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  it('emits design:paramtypes', () => {
    expect(Reflect.getMetadata('design:paramtypes', Welcome)).toEqual([MailerService, Clock]);
  });

  it('lets Nest inject constructor parameters by type', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port })],
      providers: [Welcome, Clock],
    }).compile();
    const welcome = moduleRef.get(Welcome);
    expect(welcome.mailer).toBeInstanceOf(MailerService);
    expect(welcome.clock.now()).toBe(42);
    await moduleRef.close();
  });

  it('injects by type when the testing module stands in', async () => {
    const { SluiceTestingModule } = await import('../src/testing.js');
    const moduleRef = await Test.createTestingModule({ imports: [SluiceTestingModule.forRoot()], providers: [Welcome, Clock] }).compile();
    expect(moduleRef.get(Welcome).mailer).toBeInstanceOf(TestMailer);
    await moduleRef.close();
  });
});
