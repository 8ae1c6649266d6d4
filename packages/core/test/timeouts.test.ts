import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

describe('timeouts', () => {
  it('gives up on a server that never answers MAIL, and retries elsewhere', async () => {
    const s = await server({ faults: [{ command: 'MAIL', action: 'stall', times: 1 }] });
    const p = pool(s, { timeouts: { mail: 200 } });
    const result = await p.send(message(0));
    expect(result.attempts).toBe(2);
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('reports unknown when the reply to the final "." never comes', async () => {
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'DOT', action: 'stall' }] });
    const p = pool(s, { timeouts: { dataEnd: 200 } });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.outcome).toBe('unknown');
    expect(err.code).toBe('EUNKNOWN');
  });

  it('times out a silent greeting with ETIMEDOUT', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    const p = pool(s, { timeouts: { greeting: 150 }, retry: false });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.outcome).toBe('failed');
  });
});
