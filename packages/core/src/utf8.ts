/**
 * String bodies to bytes, through slabs of our own.
 *
 * `Buffer.from(string)` copies a string under 4 KiB into Node's shared 8 KiB pool, so a stream of 2 KiB
 * messages allocates a new ArrayBuffer every three or four of them, and each is external memory the
 * garbage collector tracks and frees one by one: measured at RTT 0, that was about a tenth of the CPU
 * per message. A 64 KiB slab takes some thirty such bodies. The cost is what any pool costs: a body
 * kept (a message held for a retry) keeps its slab alive, at most 64 KiB per held message, and only
 * for bodies under SLAB_MAX; larger ones get their own allocation as before.
 */
const SLAB_SIZE = 64 * 1024;
/** Bodies up to this many UTF-16 units go to a slab (at most 3 bytes each in UTF-8). */
const SLAB_MAX = 4096;

let slab: Buffer | null = null;
let used = 0;

export function utf8Bytes(text: string): Buffer {
  if (text.length > SLAB_MAX) return Buffer.from(text, 'utf8');
  if (slab === null || used + text.length * 3 > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    used = 0;
  }
  const start = used;
  const written = slab.write(text, start, 'utf8');
  // Each body starts 8-byte aligned, as Node's own pool does.
  used = (start + written + 7) & ~7;
  return slab.subarray(start, start + written);
}
