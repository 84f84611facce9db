/**
 * Where a view of the model's memory sits: the model's memories are windows of SharedArrayBuffers,
 * so the physical address of a view is its offset in the buffer behind it.
 */
import { MicError, formatValue } from '@mic/errors';
import type { Memory } from '@mic/memory';

/** Where `mem` starts in `buffer`. @throws MicError EINVAL when it is not a view of `buffer` */
export function viewOffset(mem: Memory, buffer: SharedArrayBuffer, what: string): number {
  const view = (typeof mem === 'object' && mem !== null ? mem : {}) as {
    readonly buffer?: unknown;
    readonly byteOffset?: unknown;
  };
  if (view.buffer !== buffer || typeof view.byteOffset !== 'number') {
    throw new MicError('EINVAL', `memory ${formatValue(mem)} is not a view of ${what}`);
  }
  return view.byteOffset;
}
