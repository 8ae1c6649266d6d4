import { describe, expect, it } from 'vitest';
import { utf8Bytes } from '../src/utf8.js';

describe('utf8Bytes (string bodies encoded into shared slabs)', () => {
  it('gives the bytes Buffer.from gives, and earlier bodies stay intact as later ones fill and replace slabs', () => {
    const samples = ['', 'a', 'héllo wörld', '日本語のメール', '😀 emoji 🎉', '\ud800 lone surrogate', 'x'.repeat(4096), 'y'.repeat(4097), 'é'.repeat(3000)];
    const texts: string[] = [];
    for (let i = 0; i < 2000; i++) texts.push(`${samples[i % samples.length]}#${i}\r\n${'z'.repeat(i % 700)}`);
    const out = texts.map((t) => utf8Bytes(t));
    for (let i = 0; i < texts.length; i++) expect(out[i]!.equals(Buffer.from(texts[i]!, 'utf8')), `body ${i}`).toBe(true);
  });

  it('shares 64 KiB slabs between small bodies, and gives a large body an allocation of its own', () => {
    const a = utf8Bytes('small one');
    const b = utf8Bytes('small two');
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer.byteLength).toBe(64 * 1024);
    const big = utf8Bytes('b'.repeat(100_000));
    expect(big.buffer).not.toBe(a.buffer);
    expect(big.toString()).toBe('b'.repeat(100_000));
  });
});
