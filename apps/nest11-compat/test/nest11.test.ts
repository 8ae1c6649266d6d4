import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Inject, Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { InjectMailer, MailerService, SluiceModule, type SluiceModuleOptions, type SluiceOptionsFactory, getMailerToken } from '@sluice/nestjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// @sluice/nestjs is tested against Nest 12 in its own package; here its BUILT dist (injected by pnpm, see
// package.json and sync-injected.mjs) runs against NestJS 11, the lower end of its peer range.

const require = createRequire(import.meta.url);
const sluiceEntry = require.resolve('@sluice/nestjs');
const fromSluice = createRequire(sluiceEntry);

let server: MockServer;
let other: MockServer;

beforeAll(async () => {
  [server, other] = await Promise.all([startMockServer({ extensions: { starttls: false } }), startMockServer({ extensions: { starttls: false } })]);
});
afterAll(async () => {
  await Promise.all([server.close(), other.close()]);
});
afterEach(() => {
  server.clear();
  other.clear();
});

function mail(i: number) {
  return { from: 'app@example.com', to: `reader${i}@example.com`, subject: `Message ${i}`, text: `Hello ${i}` };
}

async function sendOne(mailer: MailerService, i = 1) {
  const result = await mailer.sendMail(mail(i));
  expect(result.outcome).toBe('delivered');
  return result;
}

describe('the module under test sees NestJS 11', () => {
  it('loads @sluice/nestjs from its injected copy, not from packages/nestjs', () => {
    expect(sluiceEntry).toMatch(
      /[\\/]node_modules[\\/]\.pnpm[\\/]@sluice\+nestjs@file\+packages\+nestjs_[^\\/]*[\\/]node_modules[\\/]@sluice[\\/]nestjs[\\/]dist[\\/]index\.cjs$/,
    );
  });

  it("the import above is that copy's dist/index.js (no @sluice/source condition)", async () => {
    const dist = await import(pathToFileURL(join(dirname(sluiceEntry), 'index.js')).href);
    expect(dist.MailerService).toBe(MailerService);
    expect(dist.SluiceModule).toBe(SluiceModule);
  });

  it('the injected copy is the current build', () => {
    const built = fileURLToPath(new URL('../../../packages/nestjs/dist/', import.meta.url));
    const injected = dirname(sluiceEntry);
    for (const file of ['index.js', 'index.cjs', 'index.d.ts']) {
      expect(readFileSync(join(injected, file)).equals(readFileSync(join(built, file))), `dist/${file} differs from packages/nestjs/dist`).toBe(true);
    }
  });

  it.each(['@nestjs/common', '@nestjs/core'])('%s, resolved from @sluice/nestjs, is 11.x and the one this app uses', (name) => {
    expect(fromSluice(`${name}/package.json`).version).toMatch(/^11\./);
    expect(fromSluice.resolve(name)).toBe(require.resolve(name));
  });

  it('@nestjs/testing is 11.x', () => {
    expect(require('@nestjs/testing/package.json').version).toMatch(/^11\./);
  });
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

describe('forRoot', () => {
  it('provides a MailerService that delivers through its own pool', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port, ehloName: 'app.example.com' })],
    }).compile();
    await moduleRef.init();
    const mailer = moduleRef.get(MailerService);
    expect(moduleRef.get(getMailerToken())).toBe(mailer);
    expect(mailer.pool.options.connection.name).toBe('app.example.com');
    const result = await sendOne(mailer);
    expect(result.messageId).toBeTruthy();
    expect(server.inbox.messages[0]!.to).toEqual(['reader1@example.com']);
    expect(server.inbox.messages[0]!.raw!.toString()).toContain('Subject: Message 1');
    await moduleRef.close();
  });

  it('verifies the server at startup', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port, verifyOnStart: 'fail' })],
    }).compile();
    await moduleRef.init();
    expect((await moduleRef.get(MailerService).verify()).capabilities.pipelining).toBe(true);
    await moduleRef.close();
  });
});

describe('forRootAsync', () => {
  it('useFactory with imports and inject', async () => {
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
    expect(mailer.pool.options.maxConnections).toBe(1);
    await sendOne(mailer);
    expect(server.inbox.messages).toHaveLength(1);
    await moduleRef.close();
  });

  it('useClass', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRootAsync({ imports: [ConfigModule], useClass: SluiceConfig })],
    }).compile();
    const mailer = moduleRef.get(MailerService);
    expect(mailer.pool.options.maxConnections).toBe(2);
    await sendOne(mailer);
    await moduleRef.close();
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
  it('@InjectMailer(name) injects the named pool, kept apart from the default one', async () => {
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
    await expect(main.sendMail(mail(4))).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(billing.sendMail(mail(5))).rejects.toMatchObject({ code: 'ECLOSED' });
  });
});

describe('shutdown', () => {
  it('app.close() waits for every queued message', async () => {
    server.configure({ rtt: 20 });
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [SluiceModule.forRoot({ host: server.host, port: server.port, maxConnections: 2 })],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      await app.init();
      const mailer = app.get(MailerService);
      const sends = Array.from({ length: 60 }, (_, i) => mailer.sendMail(mail(i)));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(mailer.stats.queued + mailer.stats.inFlight).toBeGreaterThan(0);
      expect(server.inbox.messages.length).toBeLessThan(60);
      await app.close();
      // Nothing awaited but app.close(): every message is already in the inbox.
      expect(server.inbox.messages).toHaveLength(60);
      expect(mailer.stats).toMatchObject({ delivered: 60, queued: 0, inFlight: 0, connections: 0 });
      const results = await Promise.allSettled(sends);
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    } finally {
      server.configure({ rtt: 0 });
    }
  });
});
