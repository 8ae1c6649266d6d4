import 'reflect-metadata';
import type { LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { tlsEnvTests } from 'example-env/scenarios';
import { describe } from 'vitest';
import { AppModule } from '../src/app.module.js';

const warnings: string[] = [];
const logger: LoggerService = {
  log() {},
  error: (message: unknown) => warnings.push(String(message)),
  warn: (message: unknown) => warnings.push(String(message)),
};

/** The app with `env` as its environment while it is created, listening on a free port. */
async function start(env: Record<string, string>) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .setLogger(logger)
      .compile();
    const app = moduleRef.createNestApplication({ logger });
    await app.listen(0, '127.0.0.1');
    return { url: await app.getUrl(), close: () => app.close() };
  } finally {
    process.env = saved;
  }
}

describe('SMTP_TLS_CA and SMTP_TLS_INSECURE', () => tlsEnvTests(start, { warnings: () => warnings }));
