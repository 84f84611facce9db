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
