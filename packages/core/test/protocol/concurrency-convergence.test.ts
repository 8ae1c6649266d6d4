import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../../src/policies/concurrency.js';

// The convergence rule of ConcurrencyLimit (issue 16, finding 2), on a controlled clock. The pool-level
// proof against real servers with a cap is test/pool-connection-cap.test.ts.

function clock() {
  let t = 0;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

describe('ConcurrencyLimit convergence', () => {
  it('a burst of 20 attempts against a cap of 5 ends at exactly 5, whatever the order of refusals and greetings', () => {
    // Orders: the 15 refusals first (smtp-server refuses at once and greets after 100 ms), greetings
    // first, and interleaved.
    const orders = [
      [...Array(15).fill('refused'), ...Array(5).fill('connected')],
      [...Array(5).fill('connected'), ...Array(15).fill('refused')],
      Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? 'connected' : 'refused')),
    ];
    for (const order of orders) {
      const c = clock();
      const limit = new ConcurrencyLimit(20, 1000, c.now);
      let open = 0;
      let connecting = 20;
      for (const event of order) {
        connecting--;
        if (event === 'connected') limit.connected(++open);
        else limit.refused(open + connecting);
      }
      expect(limit.value).toBe(5);
      expect(limit.limit).toBe(5);
    }
  });

  it('a refusal below what the server accepted from us is first put down to its lag: a pause, the limit unchanged', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(20, 1000, c.now);
    for (let open = 1; open <= 5; open++) limit.connected(open);
    limit.refused(5); // the 6th is refused: the cap is 5
    expect(limit.value).toBe(5);
    // One of ours closed; its replacement is refused while the server still counts the old one.
    expect(limit.refused(4)).toBe(1000);
    c.advance(300);
    expect(limit.refused(4)).toBe(700); // the same pause, not a second verdict
    expect(limit.value).toBe(5);
    // After the pause the replacement is accepted.
    c.advance(700);
    limit.connected(5);
    expect(limit.value).toBe(5);
  });

  it('a refusal after the pause, with no connection set up since, is believed', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(20, 1000, c.now);
    for (let open = 1; open <= 5; open++) limit.connected(open);
    expect(limit.refused(4)).toBe(1000);
    c.advance(1000);
    expect(limit.refused(4)).toBe(0);
    expect(limit.value).toBe(4);
  });

  it('probes one more per interval while a probe is refused, doubling the interval up to 30 s', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(20, 1000, c.now);
    for (let open = 1; open <= 5; open++) limit.connected(open);
    limit.refused(5);
    const waits: number[] = [];
    for (let probe = 0; probe < 8; probe++) {
      const wait = limit.nextProbeIn();
      waits.push(wait);
      c.advance(wait);
      expect(limit.limit).toBe(6); // the probe
      expect(limit.value).toBe(5); // not counted until answered
      limit.refused(5);
      expect(limit.value).toBe(5);
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('a probe that is answered by a connection raises the limit and resets the interval', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(20, 1000, c.now);
    for (let open = 1; open <= 5; open++) limit.connected(open);
    limit.refused(5);
    c.advance(1000);
    expect(limit.limit).toBe(6);
    limit.refused(5);
    c.advance(2000);
    expect(limit.limit).toBe(6);
    limit.connected(6); // the server now takes 6
    expect(limit.value).toBe(6);
    expect(limit.nextProbeIn()).toBe(1000);
  });

  it('reading the limit for stats does not probe', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(20, 1000, c.now);
    limit.refused(3);
    c.advance(60_000);
    expect(limit.value).toBe(3);
    expect(limit.nextProbeIn()).toBe(0);
    expect(limit.limit).toBe(4);
  });

  it('nextProbeIn is Infinity at max', () => {
    expect(new ConcurrencyLimit(5, 1000).nextProbeIn()).toBe(Number.POSITIVE_INFINITY);
  });
});
