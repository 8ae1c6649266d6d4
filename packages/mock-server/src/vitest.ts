import { afterAll, beforeAll, beforeEach } from 'vitest';
import { MockServerError } from './errors.js';
import { startMockServer } from './server.js';
import type { ConnectionStats, Inbox, MockServer, MockServerOptions } from './types.js';

export interface MockServerHandle {
  /** The running server (throws outside the lifetime set up by useMockServer). */
  readonly server: MockServer;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly ca: string;
  readonly inbox: Inbox;
  readonly connections: ConnectionStats[];
}

/**
 * One mock server per test file: started in `beforeAll`, reset in `beforeEach` (options and faults
 * back to these, inbox and counters emptied), closed in `afterAll`.
 *
 * ```ts
 * const smtp = useMockServer({ rtt: 20 });
 * it('sends', async () => {
 *   await send({ port: smtp.port });
 *   expect(smtp.inbox.messages).toHaveLength(1);
 * });
 * ```
 */
export function useMockServer(options: MockServerOptions = {}): MockServerHandle {
  let running: MockServer | null = null;

  beforeAll(async () => {
    running = await startMockServer(options);
  });
  beforeEach(() => {
    if (!running) return;
    if (running.reset) running.reset();
    else running.clear();
  });
  afterAll(async () => {
    const server = running;
    running = null;
    await server?.close();
  });

  const current = (): MockServer => {
    if (!running) throw new MockServerError('EMOCKSTATE', 'useMockServer(): the server runs from beforeAll to afterAll; read it inside hooks and tests');
    return running;
  };

  return {
    get server() {
      return current();
    },
    get host() {
      return current().host;
    },
    get port() {
      return current().port;
    },
    get url() {
      return current().url;
    },
    get ca() {
      return current().ca;
    },
    get inbox() {
      return current().inbox;
    },
    get connections() {
      return current().connections;
    },
  };
}

export type { MockServer, MockServerOptions } from './types.js';
