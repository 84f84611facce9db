/**
 * Small arrays of their own carved out of larger chunks: one `ArrayBuffer` allocation per chunk
 * instead of one per array (a new ArrayBuffer costs microseconds in V8; a view of a chunk a
 * fraction of that). Used for frames a receiver keeps (`@mic/virtio-drivers`' net driver,
 * `@mic/virtio-backends`' net backend).
 */
import { checkInt } from '@mic/errors';

/** Bytes of a chunk by default (64 KiB). */
export const CHUNK_ARENA_BYTES = 64 * 1024;

/**
 * Hands out zeroed `Uint8Array`s that never overlap, each with its own `byteOffset` into a shared
 * chunk; a chunk lives as long as any array in it is referenced. Arrays larger than a quarter
 * chunk get a buffer of their own. Transferring an array's `buffer` (`postMessage`) detaches its
 * neighbours too, so a consumer copies an array before transferring it; the arena itself replaces
 * a detached chunk rather than writing into it.
 *
 * @example
 * const arena = new ChunkArena();
 * const frame = arena.take(1514, 4); // byteOffset % 8 === 4
 */
export class ChunkArena {
  readonly #chunkBytes: number;
  #chunk: ArrayBuffer | null = null;
  #at = 0;

  /**
   * @param chunkBytes - bytes of each chunk (default {@link CHUNK_ARENA_BYTES}; 64 to 2^30)
   * @throws MicError EINVAL naming `chunkBytes` when it is not such an integer
   */
  constructor(chunkBytes = CHUNK_ARENA_BYTES) {
    checkInt('ChunkArena chunkBytes', chunkBytes, 64, 2 ** 30);
    this.#chunkBytes = chunkBytes;
  }

  /**
   * A zeroed array of `n` bytes whose `byteOffset` is `phase` modulo 8 (arrays of their own:
   * offset 0). A copy between shared and plain memory runs word by word only when both ends have
   * the same alignment, so an array that is copied into from `phase`-aligned bytes takes it.
   * @param n - bytes, 0 to 2^31
   * @param phase - an integer from 0 to 2^32 - 1 (a source's byte offset will do); only
   *   `phase % 8` counts
   * @throws MicError EINVAL naming the length or the phase when it is not such an integer
   */
  take(n: number, phase = 0): Uint8Array {
    checkInt('ChunkArena take length', n, 0, 2 ** 31);
    checkInt('ChunkArena take phase', phase, 0, 0xffff_ffff);
    if (n > this.#chunkBytes / 4) return new Uint8Array(n);
    let at = (this.#at & ~7) + (phase & 7);
    if (at < this.#at) at += 8;
    if (this.#chunk === null || this.#chunk.byteLength === 0 || at + n > this.#chunkBytes) {
      this.#chunk = new ArrayBuffer(this.#chunkBytes);
      at = phase & 7;
    }
    const v = new Uint8Array(this.#chunk, at, n);
    this.#at = at + n;
    return v;
  }
}
