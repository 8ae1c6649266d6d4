import { createServer } from 'node:net';
import type { LoggerService } from '@nestjs/common';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';

/** A mock SMTP server without STARTTLS, on a free port. */
export function startServer(options: MockServerOptions = {}): Promise<MockServer> {
  return startMockServer({ extensions: { starttls: false }, ...options });
}

/** A port nothing listens on (connections are refused). */
export async function downPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function mail(i: number, to = `reader${i}@example.com`) {
  return { from: 'app@example.com', to, subject: `Message ${i}`, text: `Hello ${i}` };
}

/** A Nest logger that keeps what it is given. */
export class RecordingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string }> = [];
  log(message: unknown) {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown) {
    this.lines.push({ level: 'error', message: String(message) });
  }
  warn(message: unknown) {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  debug() {}
  verbose() {}
  find(level: string, text: string) {
    return this.lines.find((line) => line.level === level && line.message.includes(text));
  }
}
