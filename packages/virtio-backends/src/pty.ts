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
 */
import { closeSync, constants, openSync } from 'node:fs';
import tty from 'node:tty';
import { MicError } from '@mic/errors';
import { O_CLOEXEC, O_NOCTTY, O_RDWR, TERMIOS_BYTES, errnoName, getLibc } from './libc.js';

/** An open PTY: the master as a Node stream, the slave path users open. */
export interface Pty {
  /** The slave device, e.g. `/dev/pts/3`. */
  readonly path: string;
  /** The master side (a `tty.ReadStream`, readable and writable). */
  readonly master: tty.ReadStream;
  /** Closes both ends. Idempotent. */
  close(): void;
}

/**
 * Opens a PTY pair in raw mode. @throws MicError ENOSYS without koffi, or the errno of the
 * failing call (`posix_openpt`, `grantpt`, `unlockpt`, `ptsname_r`, `tcsetattr`)
 */
export async function openPty(): Promise<Pty> {
  const c = await getLibc();
  const fail = (call: string): MicError => {
    const errno = c.errno();
    return new MicError('EIO', `${call} failed for the console PTY: ${errnoName(errno)}`, {
      details: { errno },
    });
  };
  const m = c.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
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
    return {
      path,
      master,
      close() {
        if (closed) return;
        closed = true;
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
