import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule);
// SIGTERM/SIGINT run the shutdown hooks: SluiceModule waits for every queued message, then QUITs.
app.enableShutdownHooks();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => Logger.log(`${signal}: draining the mail pool, then exiting`, 'NestExample'));
}
await app.listen(Number(process.env.PORT ?? 3000));
Logger.log(`Listening on ${await app.getUrl()} (pid ${process.pid}) (POST /signup, POST /bulk, GET /health)`, 'NestExample');
