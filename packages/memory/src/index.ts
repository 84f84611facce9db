/**
 * `@mic/memory`: the memory seam of the MIC stack. See `memory.ts` for {@link Memory} and
 * {@link BufferMemory}, `checked-view.ts` for the checked-once views of hot paths.
 */
export {
  LITTLE_ENDIAN_HOST,
  BufferMemory,
  asBufferMemory,
  checkMemory,
  checkRange,
  copyMemory,
  readBytes,
  type Memory,
} from './memory.js';
export { CheckedView } from './checked-view.js';
export { CHUNK_ARENA_BYTES, ChunkArena } from './chunk-arena.js';
