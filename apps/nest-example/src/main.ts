import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule);
// SIGTERM/SIGINT run the shutdown hooks: SluiceModule waits for every queued message, then QUITs.
app.enableShutdownHooks();
const port = Number(process.env.PORT ?? 3000);
await app.listen(port);
Logger.log(`Listening on http://localhost:${port} (POST /signup, POST /bulk, GET /health)`, 'NestExample');
