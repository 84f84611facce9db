/**
 * A bare pseudo-terminal for the console backend, as mpssd makes one (`posix_openpt`, `grantpt`,
 * `unlockpt`, `ptsname`): the host keeps the master, users open the slave path (`/dev/pts/N`)
 * with `screen` or `picocom`. Node has no PTY API and `@lydell/node-pty` only spawns programs on
 * one, so the calls go through koffi (see libc.ts).
 *
 * Unlike mpssd, the line discipline is set raw (`cfmakeraw`): the PTY is a byte pipe between the
 * card's console and the user's terminal, so the host adds no echo and no CR/LF translation (the
 * card's own tty does that). The backend also keeps the slave open itself, so the master never
 * reads EIO while no user is attached and card output waits in the PTY until someone opens it.
 *
 * Output is written by this module, not through the Node stream: libuv cannot reopen a PTY master
 * and falls back to blocking writes on it, so a PTY that nobody reads would stop the whole
 * process. The master is non-blocking; what does not fit waits in a bounded backlog that is
 * retried every 20 ms while it is not empty, and output past the bound is refused.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import tty from 'node:tty';
import { MicError } from '@mic/errors';
import { O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_RDWR, TERMIOS_BYTES, errnoName, getLibc } from './libc.js';

/** How often a backlog of output is retried while the PTY is full. */
const RETRY_MS = 20;

/** An open PTY: the master as a Node stream, the slave path users open. */
export interface Pty {
  /** The slave device, e.g. `/dev/pts/3`. */
  readonly path: string;
  /** What users type, from the master side (pause and resume it for flow control). */
  readonly master: tty.ReadStream;
  /**
   * Writes to the user's side without ever blocking. @returns false when `data` was refused
   * because the backlog already holds `limit` bytes (nobody reads the PTY)
   */
  write(data: Uint8Array): boolean;
  /** Bytes waiting for the PTY to take them. */
  readonly backlog: number;
  /** Closes both ends. Idempotent. */
  close(): void;
}

/**
 * Opens a PTY pair in raw mode. @throws MicError ENOSYS without koffi, or the errno of the
 * failing call (`posix_openpt`, `grantpt`, `unlockpt`, `ptsname_r`, `tcsetattr`)
 */
export async function openPty(limit = 1 << 20): Promise<Pty> {
  const c = await getLibc();
  const fail = (call: string): MicError => {
    const errno = c.errno();
    return new MicError('EIO', `${call} failed for the console PTY: ${errnoName(errno)}`, {
      details: { errno },
    });
  };
  const m = c.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (m < 0) throw fail('posix_openpt');
  let slave = -1;
  try {
    if (c.grantpt(m) !== 0) throw fail('grantpt');
    if (c.unlockpt(m) !== 0) throw fail('unlockpt');
    const name = Buffer.alloc(128);
    if (c.ptsname_r(m, name, name.length) !== 0) throw fail('ptsname_r');
    const path = name.toString('latin1', 0, name.indexOf(0));
    const termios = Buffer.alloc(TERMIOS_BYTES);
    if (c.tcgetattr(m, termios) !== 0) throw fail('tcgetattr');
    c.cfmakeraw(termios);
    if (c.tcsetattr(m, 0, termios) !== 0) throw fail('tcsetattr');
    slave = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
    const master = new tty.ReadStream(m);
    let closed = false;
    const keep = slave;
    const queue: Uint8Array[] = [];
    let backlog = 0;
    let timer: NodeJS.Timeout | null = null;
    const flush = (): void => {
      timer = null;
      while (queue.length > 0 && !closed) {
        const head = queue[0]!;
        let n: number;
        try {
          n = writeSync(m, head);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
            queue.length = 0;
            backlog = 0;
            return;
          }
          n = 0;
        }
        backlog -= n;
        if (n < head.length) {
          queue[0] = head.subarray(n);
          timer = setTimeout(flush, RETRY_MS);
          timer.unref();
          return;
        }
        queue.shift();
      }
    };
    return {
      path,
      master,
      get backlog() {
        return backlog;
      },
      write(data) {
        if (closed) return false;
        if (backlog + data.length > limit) return false;
        queue.push(data);
        backlog += data.length;
        if (timer === null) flush();
        return true;
      },
      close() {
        if (closed) return;
        closed = true;
        if (timer) clearTimeout(timer);
        master.destroy();
        closeSync(keep);
      },
    };
  } catch (err) {
    if (slave >= 0) closeSync(slave);
    c.close(m);
    throw err;
  }
}
