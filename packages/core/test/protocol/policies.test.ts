import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeForCommand, ErrorCodes, isSluiceError, SluiceError, SmtpReplyError } from '../../src/errors.js';
import { ConcurrencyLimit } from '../../src/policies/concurrency.js';
import { TokenBucket } from '../../src/policies/rate-limit.js';
import { DEFAULT_RETRY, type RetryOptions, retryDelay } from '../../src/policies/retry.js';
import Denque from 'denque';
import type { Reply } from '../../src/protocol/reply.js';

/** A manual clock. */
function clock(start = 0) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

// ---------------------------------------------------------------------------------------------------

describe('retryDelay', () => {
  const noJitter: RetryOptions = { ...DEFAULT_RETRY, jitter: 0 };
  const mid = () => 0.5; // random() * 2 - 1 === 0: no spread

  it('has the documented defaults', () => {
    expect(DEFAULT_RETRY).toEqual({ retries: 3, minDelay: 1000, maxDelay: 30_000, factor: 2, jitter: 0.2 });
  });

  it('grows exponentially from minDelay', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(n, noJitter))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect([1, 2, 3].map((n) => retryDelay(n, { ...noJitter, minDelay: 100, factor: 3 }))).toEqual([100, 300, 900]);
  });

  it('is bounded by maxDelay', () => {
    expect(retryDelay(6, noJitter)).toBe(30_000);
    expect(retryDelay(50, noJitter)).toBe(30_000);
    expect(retryDelay(10_000, noJitter)).toBe(30_000); // factor ** n overflows to Infinity
  });

  it('treats retry 0 (or less) like the first retry', () => {
    expect(retryDelay(0, noJitter)).toBe(1000);
    expect(retryDelay(-3, noJitter)).toBe(1000);
  });

  it('uses the injected random source for jitter', () => {
    expect(retryDelay(1, DEFAULT_RETRY, mid)).toBe(1000);
    expect(retryDelay(1, DEFAULT_RETRY, () => 0)).toBe(800); // -20 %
    expect(retryDelay(1, DEFAULT_RETRY, () => 0.75)).toBe(1100); // +10 %
    expect(retryDelay(6, DEFAULT_RETRY, () => 0)).toBe(24_000);
  });

  it('is never negative, even with jitter 1', () => {
    expect(retryDelay(1, { ...DEFAULT_RETRY, jitter: 1 }, () => 0)).toBe(0);
  });

  it('property: within ±jitter of the bounded exponential base, an integer, monotonic without jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (retry, minDelay, extra, factor, jitter, r) => {
          const options: RetryOptions = { retries: 3, minDelay, maxDelay: minDelay + extra, factor, jitter };
          const base = Math.min(options.maxDelay, minDelay * factor ** (retry - 1));
          const d = retryDelay(retry, options, () => r);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(Math.max(0, Math.floor(base * (1 - jitter))));
          expect(d).toBeLessThanOrEqual(Math.ceil(base * (1 + jitter)));
          // The un-jittered delay never exceeds maxDelay and never decreases.
          const plain = retryDelay(retry, options, mid);
          expect(plain).toBeLessThanOrEqual(options.maxDelay);
          expect(retryDelay(retry + 1, options, mid)).toBeGreaterThanOrEqual(plain);
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------

describe('TokenBucket', () => {
  it('refuses a non-positive rate or interval', () => {
    expect(() => new TokenBucket({ messages: 0, per: 1000 })).toThrow(RangeError);
    expect(() => new TokenBucket({ messages: -1, per: 1000 })).toThrow(RangeError);
    expect(() => new TokenBucket({ messages: Number.NaN, per: 1000 })).toThrow(RangeError);
    expect(() => new TokenBucket({ messages: 1, per: 0 })).toThrow(RangeError);
    expect(() => new TokenBucket({ messages: 1, per: -1 })).toThrow(RangeError);
  });

  it('allows a burst of `messages` by default, then refuses', () => {
    const c = clock();
    const bucket = new TokenBucket({ messages: 10, per: 'second' }, c.now);
    for (let i = 0; i < 10; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
  });

  it('honours an explicit burst (at least 1)', () => {
    const c = clock();
    const bucket = new TokenBucket({ messages: 100, per: 'minute', burst: 3 }, c.now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    const one = new TokenBucket({ messages: 100, per: 'minute', burst: 0 }, c.now);
    expect([one.take(), one.take()]).toEqual([true, false]);
  });

  it('refills at the configured rate', () => {
    const c = clock(5000);
    const bucket = new TokenBucket({ messages: 10, per: 1000 }, c.now); // one token per 100 ms
    while (bucket.take()) {}
    c.advance(99);
    expect(bucket.take()).toBe(false);
    c.advance(1);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    c.advance(350);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });

  it('never holds more than the burst after a long idle time', () => {
    const c = clock();
    const bucket = new TokenBucket({ messages: 10, per: 'second', burst: 2 }, c.now);
    c.advance(3_600_000);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
  });

  it('understands second, minute and hour', () => {
    for (const [per, ms] of [
      ['second', 1000],
      ['minute', 60_000],
      ['hour', 3_600_000],
    ] as const) {
      const c = clock();
      const bucket = new TokenBucket({ messages: 1, per }, c.now);
      expect(bucket.take()).toBe(true);
      // Floating point may round the rate so that wait() says one ms more (1 / (1 / 3600000) > 3600000).
      const wait = bucket.wait();
      expect(wait).toBeGreaterThanOrEqual(ms);
      expect(wait).toBeLessThanOrEqual(ms + 1);
      c.advance(ms - 1);
      expect(bucket.take()).toBe(false);
      c.advance(wait - ms + 1);
      expect(bucket.take()).toBe(true);
    }
  });

  it('wait() is 0 with a token available and counts down otherwise', () => {
    const c = clock();
    const bucket = new TokenBucket({ messages: 10, per: 1000, burst: 1 }, c.now);
    expect(bucket.wait()).toBe(0);
    expect(bucket.take()).toBe(true);
    expect(bucket.wait()).toBe(100);
    c.advance(30);
    expect(bucket.wait()).toBe(70);
    c.advance(70);
    expect(bucket.wait()).toBe(0);
    expect(bucket.take()).toBe(true);
  });

  it('wait() does not consume a token', () => {
    const c = clock();
    const bucket = new TokenBucket({ messages: 1, per: 1000 }, c.now);
    expect(bucket.wait()).toBe(0);
    expect(bucket.wait()).toBe(0);
    expect(bucket.take()).toBe(true);
  });

  it('property: after waiting wait() ms, take() succeeds (give or take 1 ms of rounding)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 30 }),
        (messages, per, burst, gaps) => {
          const c = clock(1_000_000);
          const bucket = new TokenBucket({ messages, per, burst }, c.now);
          for (const gap of gaps) {
            c.advance(gap);
            bucket.take();
          }
          c.advance(bucket.wait());
          if (!bucket.take()) {
            // Floating-point rounding of the refill can leave the bucket a hair short of a token after
            // exactly wait() ms (see the report); it must then be at most one more millisecond.
            const again = bucket.wait();
            expect(again).toBeLessThanOrEqual(1);
            c.advance(again);
            expect(bucket.take()).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: takes over any period never exceed burst + rate × elapsed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
        fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 200 }),
        (messages, per, burst, gaps) => {
          const c = clock();
          const bucket = new TokenBucket({ messages, per, burst }, c.now);
          let taken = 0;
          for (const gap of gaps) {
            c.advance(gap);
            if (bucket.take()) taken++;
          }
          const capacity = Math.max(1, burst ?? messages);
          expect(taken).toBeLessThanOrEqual(capacity + (c.now() * messages) / per + 1e-9);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------

describe('ConcurrencyLimit', () => {
  it('starts at max', () => {
    const c = clock();
    expect(new ConcurrencyLimit(10, 1000, c.now).limit).toBe(10);
  });

  it('refused(open) lowers the limit to the open count', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(10, 60_000, c.now);
    limit.refused(3);
    expect(limit.limit).toBe(3);
  });

  it('refused(open) lowers the limit by at least one', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(10, 60_000, c.now);
    limit.refused(10);
    expect(limit.limit).toBe(9);
    limit.refused(50);
    expect(limit.limit).toBe(8);
  });

  it('never goes below 1', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(10, 60_000, c.now);
    limit.refused(0);
    expect(limit.limit).toBe(1);
    limit.refused(0);
    expect(limit.limit).toBe(1);
    const one = new ConcurrencyLimit(1, 60_000, c.now);
    one.refused(5);
    expect(one.limit).toBe(1);
  });

  it('probes back up one connection per interval without a refusal, up to max', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(4, 1000, c.now);
    limit.refused(1);
    expect(limit.limit).toBe(1);
    c.advance(999);
    expect(limit.limit).toBe(1);
    c.advance(1);
    expect(limit.limit).toBe(2);
    expect(limit.limit).toBe(2); // reading again does not probe again
    c.advance(1000);
    expect(limit.limit).toBe(3);
    c.advance(1000);
    expect(limit.limit).toBe(4);
    c.advance(1000);
    expect(limit.limit).toBe(4);
  });

  it('grows by one per read even after several intervals (one probe at a time)', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(10, 1000, c.now);
    limit.refused(2);
    c.advance(10_000);
    expect(limit.limit).toBe(3);
    expect(limit.limit).toBe(3);
  });

  it('a refusal restarts the probe interval', () => {
    const c = clock();
    const limit = new ConcurrencyLimit(10, 1000, c.now);
    limit.refused(5);
    c.advance(900);
    limit.refused(5);
    expect(limit.limit).toBe(4);
    c.advance(900);
    expect(limit.limit).toBe(4);
    c.advance(100);
    expect(limit.limit).toBe(5);
  });

  it('isTooMany recognises 421 and 432', () => {
    expect(ConcurrencyLimit.isTooMany(421)).toBe(true);
    expect(ConcurrencyLimit.isTooMany(432)).toBe(true);
    expect(ConcurrencyLimit.isTooMany(450)).toBe(false);
    expect(ConcurrencyLimit.isTooMany(220)).toBe(false);
    expect(ConcurrencyLimit.isTooMany(undefined)).toBe(false);
  });

  it('property: the limit always stays within [1, max]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.oneof(fc.record({ refused: fc.integer({ min: 0, max: 60 }) }), fc.record({ advance: fc.integer({ min: 0, max: 3000 }) })), {
          maxLength: 60,
        }),
        (max, ops) => {
          const c = clock();
          const limit = new ConcurrencyLimit(max, 1000, c.now);
          for (const op of ops) {
            if ('refused' in op) limit.refused(op.refused);
            else c.advance(op.advance);
            const l = limit.limit;
            expect(l).toBeGreaterThanOrEqual(1);
            expect(l).toBeLessThanOrEqual(max);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------

/**
 * The FIFO the pool and the connection rely on is denque's (the hand-written ring buffer is gone): these
 * tests pin the behaviour we use — push, unshift, shift, peekFront, and emptying in order.
 */
class Deque<T> {
  private readonly d = new Denque<T>();
  get length(): number {
    return this.d.length;
  }
  push(item: T): void {
    this.d.push(item);
  }
  unshift(item: T): void {
    this.d.unshift(item);
  }
  shift(): T | undefined {
    return this.d.shift();
  }
  peek(): T | undefined {
    return this.d.peekFront();
  }
  drain(): T[] {
    const all = this.d.toArray();
    this.d.clear();
    return all;
  }
}

describe('Deque (denque)', () => {
  it('is FIFO with push/shift', () => {
    const d = new Deque<number>();
    expect(d.length).toBe(0);
    expect(d.shift()).toBeUndefined();
    expect(d.peek()).toBeUndefined();
    d.push(1);
    d.push(2);
    d.push(3);
    expect(d.length).toBe(3);
    expect(d.peek()).toBe(1);
    expect([d.shift(), d.shift(), d.shift(), d.shift()]).toEqual([1, 2, 3, undefined]);
    expect(d.length).toBe(0);
  });

  it('unshift puts an item back at the front', () => {
    const d = new Deque<string>();
    d.push('b');
    d.push('c');
    d.unshift('a');
    expect(d.peek()).toBe('a');
    expect(d.drain()).toEqual(['a', 'b', 'c']);
    expect(d.length).toBe(0);
  });

  it('unshift on an empty deque wraps around the ring', () => {
    const d = new Deque<number>();
    d.unshift(2);
    d.unshift(1);
    d.push(3);
    expect(d.drain()).toEqual([1, 2, 3]);
  });

  it('keeps the order when it grows past its initial capacity (with a wrapped head)', () => {
    const d = new Deque<number>();
    for (let i = 0; i < 10; i++) d.push(i);
    for (let i = 0; i < 10; i++) d.shift(); // head in the middle of the ring
    for (let i = 0; i < 40; i++) d.push(i); // wraps, then grows twice
    d.unshift(-1);
    expect(d.length).toBe(41);
    expect(d.drain()).toEqual([-1, ...Array.from({ length: 40 }, (_, i) => i)]);
  });

  it('grows when full through unshift', () => {
    const d = new Deque<number>();
    for (let i = 0; i < 100; i++) d.unshift(i);
    expect(d.drain()).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i));
  });

  it('property: behaves like an array', () => {
    type Op = { push: number } | { unshift: number } | { shift: true } | { drain: true };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ push: fc.integer() }) },
      { weight: 2, arbitrary: fc.record({ unshift: fc.integer() }) },
      { weight: 4, arbitrary: fc.record({ shift: fc.constant(true as const) }) },
      { weight: 1, arbitrary: fc.record({ drain: fc.constant(true as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const d = new Deque<number>();
        const model: number[] = [];
        for (const o of ops) {
          if ('push' in o) {
            d.push(o.push);
            model.push(o.push);
          } else if ('unshift' in o) {
            d.unshift(o.unshift);
            model.unshift(o.unshift);
          } else if ('shift' in o) {
            expect(d.shift()).toBe(model.shift());
          } else {
            expect(d.drain()).toEqual(model.splice(0));
          }
          expect(d.length).toBe(model.length);
          expect(d.peek()).toBe(model[0]);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------

describe('SluiceError / SmtpReplyError', () => {
  const reply550: Reply = { code: 550, enhanced: '5.1.1', lines: ['550-5.1.1 no such user', '550 5.1.1 really'], text: 'no such user\nreally' };
  const reply450: Reply = { code: 450, enhanced: '4.2.0', lines: ['450 4.2.0 try later'], text: 'try later' };
  const brand = Symbol.for('sluice.error');

  it('a SluiceError is an Error and a SluiceError', () => {
    const err = new SluiceError(ErrorCodes.ECONNECTION, 'boom');
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(SluiceError);
    expect(err).not.toBeInstanceOf(SmtpReplyError);
    expect(err.name).toBe('SluiceError');
    expect(err.code).toBe('ECONNECTION');
    expect(err.permanent).toBe(false);
    expect(err.responseCode).toBeUndefined();
    expect(err.enhancedCode).toBeUndefined();
    expect(err.response).toBeUndefined();
    expect(err.outcome).toBeUndefined();
    expect(isSluiceError(err)).toBe(true);
  });

  it('keeps the cause, command and outcome', () => {
    const cause = new Error('ECONNRESET');
    const err = new SluiceError(ErrorCodes.EUNKNOWN, 'lost', { cause, command: 'DOT', outcome: 'unknown' });
    expect(err.cause).toBe(cause);
    expect(err.command).toBe('DOT');
    expect(err.outcome).toBe('unknown');
    expect('cause' in new SluiceError(ErrorCodes.EUNKNOWN, 'no cause')).toBe(false);
  });

  it('derives the reply fields and permanence from a reply', () => {
    const err = new SluiceError(ErrorCodes.EENVELOPE, 'refused', { reply: reply550 });
    expect(err.responseCode).toBe(550);
    expect(err.enhancedCode).toBe('5.1.1');
    expect(err.response).toBe('550-5.1.1 no such user\n550 5.1.1 really');
    expect(err.permanent).toBe(true);
    expect(new SluiceError(ErrorCodes.EENVELOPE, 'later', { reply: reply450 }).permanent).toBe(false);
    expect(new SluiceError(ErrorCodes.EENVELOPE, 'forced', { reply: reply450, permanent: true }).permanent).toBe(true);
    expect(new SluiceError(ErrorCodes.EENVELOPE, 'x', { reply: { ...reply450, enhanced: null } }).enhancedCode).toBeUndefined();
  });

  it('instanceof SluiceError holds for an error from a second copy of the package (same Symbol.for brand)', () => {
    // What a second copy of errors.ts would define: an unrelated class with the same branded getter.
    class OtherCopySluiceError extends Error {
      get [brand](): true {
        return true;
      }
    }
    const foreign = new OtherCopySluiceError('from the other copy');
    expect(foreign instanceof SluiceError).toBe(true);
    expect(isSluiceError(foreign)).toBe(true);
    // Subclasses use the ordinary prototype check.
    expect(foreign instanceof SmtpReplyError).toBe(false);
  });

  it('instanceof SluiceError holds for an object whose prototype carries the brand getter', () => {
    const proto = Object.defineProperty({}, brand, { get: () => true });
    expect(Object.create(proto) instanceof SluiceError).toBe(true);
  });

  it('instanceof SluiceError holds for a plain object carrying the brand', () => {
    expect({ [brand]: true } instanceof SluiceError).toBe(true);
  });

  it('instanceof SluiceError is false without the exact brand', () => {
    expect(new Error('x') instanceof SluiceError).toBe(false);
    expect({} instanceof SluiceError).toBe(false);
    expect({ [brand]: 'true' } instanceof SluiceError).toBe(false);
    expect({ [brand]: 1 } instanceof SluiceError).toBe(false);
    expect({ [Symbol('sluice.error')]: true } instanceof SluiceError).toBe(false);
    expect({ 'sluice.error': true } instanceof SluiceError).toBe(false);
    expect((null as unknown) instanceof SluiceError).toBe(false);
    expect((undefined as unknown) instanceof SluiceError).toBe(false);
    expect(('SluiceError' as unknown) instanceof SluiceError).toBe(false);
    expect(isSluiceError(new TypeError('x'))).toBe(false);
  });

  it('the brand is a prototype getter, not an own enumerable property', () => {
    const err = new SluiceError(ErrorCodes.EPROTOCOL, 'x');
    expect(Object.getOwnPropertySymbols(err)).not.toContain(brand);
    expect((err as unknown as Record<symbol, unknown>)[brand]).toBe(true);
  });

  it('SmtpReplyError: instanceof is the normal prototype check', () => {
    const err = new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply550);
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err).toBeInstanceOf(SluiceError);
    expect(err).toBeInstanceOf(Error);
    // An object with the right prototype is one, whatever its fields...
    expect(Object.create(SmtpReplyError.prototype) instanceof SmtpReplyError).toBe(true);
    // ...and a branded object without that prototype is not.
    expect({ [brand]: true } instanceof SmtpReplyError).toBe(false);
    expect(new SluiceError(ErrorCodes.EENVELOPE, 'x') instanceof SmtpReplyError).toBe(false);
  });

  it('a user subclass of SluiceError also uses the normal prototype check', () => {
    class MyError extends SluiceError {}
    expect(new MyError(ErrorCodes.EOPTIONS, 'x')).toBeInstanceOf(MyError);
    expect(new MyError(ErrorCodes.EOPTIONS, 'x')).toBeInstanceOf(SluiceError);
    expect(new SluiceError(ErrorCodes.EOPTIONS, 'x') instanceof MyError).toBe(false);
    expect({ [brand]: true } instanceof MyError).toBe(false);
  });

  it('SmtpReplyError fields and default message', () => {
    const err = new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply550);
    expect(err.name).toBe('SmtpReplyError');
    expect(err.code).toBe('EENVELOPE');
    expect(err.command).toBe('RCPT');
    expect(err.responseCode).toBe(550);
    expect(err.enhancedCode).toBe('5.1.1');
    expect(err.permanent).toBe(true);
    expect(err.message).toBe('RCPT failed: 550-5.1.1 no such user 550 5.1.1 really');
    const transient = new SmtpReplyError(ErrorCodes.EMESSAGE, 'DATA', reply450, 'custom');
    expect(transient.message).toBe('custom');
    expect(transient.permanent).toBe(false);
  });

  it('copy() has the same fields, as a new object', () => {
    const cause = new Error('root');
    const err = new SluiceError(ErrorCodes.EENVELOPE, 'refused', { reply: reply550, command: 'RCPT', cause });
    const copy = err.copy();
    expect(copy).not.toBe(err);
    expect(copy).toBeInstanceOf(SluiceError);
    expect(copy.code).toBe(err.code);
    expect(copy.message).toBe(err.message);
    expect(copy.command).toBe('RCPT');
    expect(copy.cause).toBe(cause);
    expect(copy.permanent).toBe(true);
    expect(copy.responseCode).toBe(550);
    expect(copy.enhancedCode).toBe('5.1.1');
    expect(copy.response).toBe(err.response);
    expect(copy.name).toBe('SluiceError');
  });

  it('copy() of an SmtpReplyError keeps its fields and name', () => {
    const err = new SmtpReplyError(ErrorCodes.ECONNECTION, 'CONNECTION', { code: 421, enhanced: '4.3.2', lines: ['421 4.3.2 closing'], text: 'closing' });
    const copy = err.copy();
    expect(copy.name).toBe('SmtpReplyError');
    expect(copy.responseCode).toBe(421);
    expect(copy.enhancedCode).toBe('4.3.2');
    expect(copy.permanent).toBe(false);
    expect(copy).toBeInstanceOf(SluiceError);
  });

  // BUG (see report): the pool hands the second and later messages ended by one error a copy(); the copy
  // of an SmtpReplyError says name === 'SmtpReplyError' but is a plain SluiceError, so `instanceof
  // SmtpReplyError` depends on the message's position in the batch.
  it('copy() of an SmtpReplyError is still instanceof SmtpReplyError', () => {
    const err = new SmtpReplyError(ErrorCodes.ECONNECTION, 'CONNECTION', { code: 421, enhanced: '4.3.2', lines: ['421 4.3.2 closing'], text: 'closing' });
    expect(err.copy()).toBeInstanceOf(SmtpReplyError);
  });

  it('codeForCommand maps commands to error codes', () => {
    expect(codeForCommand('MAIL')).toBe('EENVELOPE');
    expect(codeForCommand('RCPT')).toBe('EENVELOPE');
    expect(codeForCommand('DATA')).toBe('EMESSAGE');
    expect(codeForCommand('DOT')).toBe('EMESSAGE');
    expect(codeForCommand('BDAT')).toBe('EMESSAGE');
    expect(codeForCommand('AUTH')).toBe('EAUTH');
    expect(codeForCommand('STARTTLS')).toBe('ETLS');
    expect(codeForCommand('EHLO')).toBe('EPROTOCOL');
    expect(codeForCommand('WHATEVER')).toBe('EPROTOCOL');
  });
});
