import { describe, expect, it } from '@jest/globals';
import { CHUNK_ARENA_BYTES, ChunkArena } from '../src/index.js';

describe('ChunkArena', () => {
  it('hands out zeroed arrays of their own from shared chunks, large ones apart', () => {
    const a = new ChunkArena();
    const sizes = Array.from({ length: 100 }, (_, i) => 60 + ((i * 37) % 1500));
    const arrays = sizes.map((n) => a.take(n));
    arrays.forEach((f, i) => {
      expect(f.length).toBe(sizes[i]);
      expect(f.byteOffset % 8).toBe(0);
      expect(f.every((b) => b === 0)).toBe(true);
      f.fill(i + 1);
    });
    // No array overlaps another: each still holds its own fill.
    arrays.forEach((f, i) => expect(f.every((b) => b === i + 1)).toBe(true));
    expect(new Set(arrays.map((f) => f.buffer)).size).toBeLessThan(arrays.length);
    const big = a.take(CHUNK_ARENA_BYTES);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(CHUNK_ARENA_BYTES);
    expect(arrays.some((f) => f.buffer === big.buffer)).toBe(false);
  });

  it('gives each array the byte offset modulo 8 it is asked for', () => {
    const a = new ChunkArena(4096);
    for (let i = 0; i < 200; i++) {
      const phase = (i * 5) % 11;
      const f = a.take(1 + ((i * 13) % 900), phase);
      expect(f.byteOffset % 8).toBe(phase & 7);
    }
  });

  it('replaces a chunk whose buffer was transferred away instead of writing into it', () => {
    const a = new ChunkArena();
    const first = a.take(100);
    structuredClone(first.buffer, { transfer: [first.buffer as ArrayBuffer] });
    expect(first.buffer.byteLength).toBe(0);
    const next = a.take(100);
    expect(next.length).toBe(100);
    next.fill(7);
    expect(next.buffer).not.toBe(first.buffer);
  });

  it('refuses a chunk size below 64 bytes or not an integer, naming it', () => {
    expect(() => new ChunkArena(32)).toThrow(/chunkBytes 32 is not an integer in \[64, /);
    expect(() => new ChunkArena(1500.5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
