/**
 * The error path of a multi-step probe: each step that succeeded pushes how to undo it, and a
 * failure (or a remove) undoes them in reverse, as the kernel's `goto err_*` ladders do.
 */
import { MicError, checkFunction, errorMessage, formatValue } from '@mic/errors';
import { checkOps } from './validate.js';
import type { Logger } from '@mic/logger';

/** How to undo one step. */
export type UndoStep = () => void | Promise<void>;

/**
 * Runs the `undo` steps in reverse order, each awaited, and empties the list. A step that fails is
 * logged as `<what>: an unwind step failed` and the others still run: on an error path nothing
 * is left half undone because one step could not be.
 * @throws MicError EINVAL (before running any step) when `undo` is not an array of functions or
 * `logger` has no `error`
 */
export async function unwind(undo: UndoStep[], logger: Logger, what: string): Promise<void> {
  if (!Array.isArray(undo)) {
    throw new MicError('EINVAL', `${what}: undo steps ${formatValue(undo)} are not an array`);
  }
  for (const step of undo) checkFunction(`${what}: undo step`, step);
  checkOps(`${what}: unwind logger`, logger, ['error']);
  while (undo.length > 0) {
    try {
      await undo.pop()!();
    } catch (err) {
      logger.error(`${what}: an unwind step failed`, {
        error: errorMessage(err),
      });
    }
  }
}
