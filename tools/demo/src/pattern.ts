/**
 * Bytes both sides can make on their own and compare by hash: the card writes a pattern, the
 * host checks the image (and the other way round).
 */
import { createHash } from 'node:crypto';

/** `length` bytes that differ with `seed` and with the position (also across 512-byte sectors). */
export function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 131 + seed * 7 + (i >>> 9) * 13) & 0xff;
  return b;
}

/** The sha256 of `bytes`, in hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The byte offsets a block burst visits, one per call: sequential `size`-byte steps over `span`
 * bytes (wrapping), or random `size`-aligned ones (a fixed xorshift, so every run and its baseline
 * visit the same offsets). @throws RangeError when not one request fits in `span`
 */
export function burstOffsets(size: number, span: number, random: boolean): () => number {
  const slots = Math.floor(span / size);
  if (slots < 1) throw new RangeError(`a ${size}-byte request does not fit in ${span} bytes`);
  let i = 0;
  let x = 0x9e3779b9;
  return () => {
    if (!random) return (i++ % slots) * size;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) % slots) * size;
  };
}
