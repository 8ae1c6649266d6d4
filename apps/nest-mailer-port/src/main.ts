import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule);
// SIGTERM runs the shutdown hooks: SluiceModule delivers what is queued, then QUITs.
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 3000));
Logger.log(`Listening on ${await app.getUrl()} (pid ${process.pid})`, 'NestMailerPort');
