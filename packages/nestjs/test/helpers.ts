import type { LoggerService } from '@nestjs/common';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';

/** A mock SMTP server without STARTTLS, on a free port. */
export function startServer(options: MockServerOptions = {}): Promise<MockServer> {
  return startMockServer({ extensions: { starttls: false }, ...options });
}

/**
 * A server that cannot be reached: the mock server drops every connection before its greeting. (A port
 * closed after listening could be taken again by a server of a test running in parallel.)
 */
export function downServer(): Promise<MockServer> {
  return startServer({ faults: [{ command: 'CONNECT', action: 'drop' }] });
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
