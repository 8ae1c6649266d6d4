import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createPool, type Pool } from '@sluice/core';
import type { MockServer } from '@sluice/mock-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getMailerToken, InjectMailer, MailerService, SluiceModule, type SluiceModuleOptions, type SluiceOptionsFactory } from '../src/index.js';
import { downServer, mail, RecordingLogger, startServer } from './helpers.js';

let server: MockServer;
let other: MockServer;
let down: MockServer;
let closed: number;

beforeAll(async () => {
  [server, other, down] = await Promise.all([startServer(), startServer(), downServer()]);
  closed = down.port;
});
afterAll(async () => {
  await Promise.all([server.close(), other.close(), down.close()]);
});
afterEach(() => {
  server.clear();
  other.clear();
});

const CONFIG = 'MAIL_CONFIG';

@Injectable()
class SluiceConfig implements SluiceOptionsFactory {
  createSluiceOptions(): SluiceModuleOptions {
    return { host: server.host, port: server.port, maxConnections: 2 };
  }
}

@Module({ providers: [SluiceConfig, { provide: CONFIG, useFactory: () => ({ host: server.host, port: server.port }) }], exports: [SluiceConfig, CONFIG] })
class ConfigModule {}

async function sendOne(mailer: MailerService, i = 1) {
  const result = await mailer.sendMail(mail(i));
  expect(result.outcome).toBe('delivered');
  return result;
}

describe('forRoot', () => {
  it('provides a MailerService that sends through its own pool', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port, ehloName: 'app.example.com' })],
    }).compile();
    await moduleRef.init();
    const mailer = moduleRef.get(MailerService);
    expect(moduleRef.get(getMailerToken())).toBe(mailer);
    expect(moduleRef.get(getMailerToken('default'))).toBe(mailer);
    expect(mailer.name).toBe('default');
    expect(mailer.pool.options.connection.name).toBe('app.example.com');
    const result = await sendOne(mailer);
    const received = server.inbox.messages[0]!;
    expect(received.to).toEqual(['reader1@example.com']);
    expect(received.raw!.toString()).toContain('Subject: Message 1');
    expect(result.messageId).toBeTruthy();
    expect(mailer.stats.delivered).toBe(1);
    expect((await mailer.verify()).capabilities.pipelining).toBe(true);
    await moduleRef.close();
  });

  it('rejects an unknown core option at startup', async () => {
    const options = { host: server.host, port: server.port, bogus: true } as SluiceModuleOptions;
    await expect(Test.createTestingModule({ imports: [SluiceModule.forRoot(options)] }).compile()).rejects.toMatchObject({ code: 'EOPTIONS' });
  });
});

describe('forRootAsync', () => {
  it('useFactory with inject', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        SluiceModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: async (config: { host: string; port: number }) => ({ ...config, maxConnections: 1 }),
        }),
      ],
    }).compile();
    const mailer = moduleRef.get(MailerService);
    expect(mailer.stats.maxConnections).toBe(1);
    await sendOne(mailer);
    expect(server.inbox.messages).toHaveLength(1);
    await moduleRef.close();
  });

  it('useClass', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRootAsync({ useClass: SluiceConfig })] }).compile();
    const mailer = moduleRef.get(MailerService);
    expect(mailer.stats.maxConnections).toBe(2);
    await sendOne(mailer);
    expect(server.inbox.messages).toHaveLength(1);
    await moduleRef.close();
  });

  it('useExisting', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRootAsync({ imports: [ConfigModule], useExisting: SluiceConfig })],
    }).compile();
    await sendOne(moduleRef.get(MailerService));
    expect(server.inbox.messages).toHaveLength(1);
    await moduleRef.close();
  });

  it('takes the name and isGlobal extras', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRootAsync({ name: 'billing', isGlobal: true, useFactory: () => ({ host: other.host, port: other.port }) })],
    }).compile();
    const mailer = moduleRef.get<MailerService>(getMailerToken('billing'));
    expect(mailer.name).toBe('billing');
    await sendOne(mailer);
    expect(other.inbox.messages).toHaveLength(1);
    await moduleRef.close();
  });
});

@Injectable()
class Notifier {
  constructor(@InjectMailer() readonly mailer: MailerService) {}
}

@Module({ providers: [Notifier], exports: [Notifier] })
class FeatureModule {}

describe('isGlobal', () => {
  it('makes the mailer injectable in modules that do not import SluiceModule', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port, isGlobal: true }), FeatureModule],
    }).compile();
    await sendOne(moduleRef.get(Notifier).mailer);
    await moduleRef.close();
  });

  it('is off by default', async () => {
    const build = Test.createTestingModule({ imports: [SluiceModule.forRoot({ host: server.host, port: server.port }), FeatureModule] }).compile();
    await expect(build).rejects.toThrow(/can't resolve dependencies of the Notifier/i);
  });
});

@Injectable()
class TwoPools {
  constructor(
    @InjectMailer() readonly main: MailerService,
    @InjectMailer('billing') readonly billing: MailerService,
    @Inject(MailerService) readonly byClass: MailerService,
  ) {}
}

describe('named pools', () => {
  it('keeps two pools apart', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port }), SluiceModule.forRoot({ name: 'billing', host: other.host, port: other.port })],
      providers: [TwoPools],
    }).compile();
    const { main, billing, byClass } = moduleRef.get(TwoPools);
    expect(byClass).toBe(main);
    expect(billing).not.toBe(main);
    expect(billing.pool).not.toBe(main.pool);
    expect(billing.name).toBe('billing');
    await Promise.all([sendOne(main, 1), sendOne(billing, 2), sendOne(billing, 3)]);
    expect(server.inbox.messages.map((m) => m.to[0])).toEqual(['reader1@example.com']);
    expect(other.inbox.messages.map((m) => m.to[0]).sort()).toEqual(['reader2@example.com', 'reader3@example.com']);
    await moduleRef.close();
    // Both pools were drained and closed by the module.
    await expect(main.sendMail(mail(4))).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(billing.sendMail(mail(5))).rejects.toMatchObject({ code: 'ECLOSED' });
  });
});

describe('verifyOnStart', () => {
  async function start(options: SluiceModuleOptions) {
    const logger = new RecordingLogger();
    const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRoot(options)] })
      .setLogger(logger)
      .compile();
    return { moduleRef, logger, init: () => moduleRef.init() };
  }

  it("'fail' stops the application when the server is down", async () => {
    const { moduleRef, logger, init } = await start({ host: '127.0.0.1', port: closed, verifyOnStart: 'fail' });
    await expect(init()).rejects.toMatchObject({ code: 'ECONNECTION' });
    expect(logger.find('error', `127.0.0.1:${closed}`)?.message).toMatch(/could not be verified \(ECONNECTION\)/);
    await moduleRef.close();
  });

  it("'warn' logs a warning with the error code and starts", async () => {
    const { moduleRef, logger, init } = await start({ host: '127.0.0.1', port: closed, verifyOnStart: 'warn' });
    await init();
    expect(logger.find('warn', 'pool "default"')?.message).toMatch(/could not be verified \(ECONNECTION\)/);
    await moduleRef.close();
  });

  it('logs success as success', async () => {
    for (const verifyOnStart of ['fail', 'warn'] as const) {
      const { moduleRef, logger, init } = await start({ host: server.host, port: server.port, verifyOnStart });
      await init();
      expect(logger.find('log', `${server.host}:${server.port}`)?.message).toMatch(/verified/);
      expect(logger.lines.filter((l) => l.level !== 'log')).toEqual([]);
      await moduleRef.close();
    }
  });

  it('is off by default', async () => {
    const { moduleRef, logger, init } = await start({ host: '127.0.0.1', port: closed });
    await init();
    expect(logger.lines.filter((l) => l.message.includes('verified'))).toEqual([]);
    await moduleRef.close();
  });
});

describe('shutdown', () => {
  it('waits for every queued message before the application closes', async () => {
    server.configure({ rtt: 20 });
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [SluiceModule.forRoot({ host: server.host, port: server.port, maxConnections: 2 })],
      }).compile();
      const logger = new RecordingLogger();
      const app = moduleRef.createNestApplication({ logger });
      await app.init();
      const mailer = app.get(MailerService);
      const sends = Array.from({ length: 60 }, (_, i) => mailer.sendMail(mail(i)));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(mailer.stats.queued + mailer.stats.inFlight).toBeGreaterThan(0);
      expect(server.inbox.messages.length).toBeLessThan(60);
      await app.close();
      // Nothing awaited but app.close(): every message is already in the inbox.
      expect(server.inbox.messages).toHaveLength(60);
      expect(logger.find('log', 'Pool "default": delivering')).toBeTruthy();
      expect(mailer.stats).toMatchObject({ delivered: 60, queued: 0, inFlight: 0, connections: 0 });
      const results = await Promise.allSettled(sends);
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    } finally {
      server.configure({ rtt: 0 });
    }
  });

  it('does not close a pool it was given', async () => {
    const pool: Pool = createPool({ host: server.host, port: server.port });
    try {
      const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRoot({ pool, verifyOnStart: 'fail' })] }).compile();
      await moduleRef.init();
      const mailer = moduleRef.get(MailerService);
      expect(mailer.pool).toBe(pool);
      await sendOne(mailer, 1);
      await moduleRef.close();
      expect((await pool.sendMail(mail(2))).outcome).toBe('delivered');
      expect(server.inbox.messages).toHaveLength(2);
    } finally {
      await pool.close();
    }
  });

  it('takes an existing pool through forRootAsync too', async () => {
    const pool = createPool({ host: server.host, port: server.port });
    try {
      const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRootAsync({ useFactory: () => ({ pool }) })] }).compile();
      await moduleRef.close();
      expect((await pool.sendMail(mail(1))).outcome).toBe('delivered');
    } finally {
      await pool.close();
    }
  });
});
