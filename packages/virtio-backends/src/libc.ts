/**
 * The few libc calls Node has no API for, through `koffi` (a maintained FFI with prebuilt
 * binaries, no compiler needed): a bare PTY (`posix_openpt`, `grantpt`, `unlockpt`,
 * `ptsname_r`, `cfmakeraw`), a TAP device (`open("/dev/net/tun")` + `ioctl(TUNSETIFF)`), `poll`
 * on a non-socket file descriptor from the thread pool, and `fallocate` to punch holes. koffi is
 * loaded on first use, so the block backend and the switch work where it cannot load.
 */
import { MicError } from '@mic/errors';

interface KoffiFn {
  (...args: unknown[]): number;
  async(...args: unknown[]): void;
}
interface Koffi {
  load(name: string): { func(decl: string): KoffiFn };
  errno(): number;
}

/** The functions this package calls. */
export interface Libc {
  posix_openpt: KoffiFn;
  grantpt: KoffiFn;
  unlockpt: KoffiFn;
  ptsname_r: KoffiFn;
  tcgetattr: KoffiFn;
  tcsetattr: KoffiFn;
  cfmakeraw: KoffiFn;
  open: KoffiFn;
  ioctl: KoffiFn;
  close: KoffiFn;
  poll: KoffiFn;
  fallocate: KoffiFn;
  errno(): number;
}

let libc: Promise<Libc> | null = null;

/**
 * The libc bindings (koffi is imported on the first call). @throws MicError ENOSYS when koffi or
 * libc cannot be loaded (not Linux, no prebuilt binary for this platform)
 */
export function getLibc(): Promise<Libc> {
  libc ??= load();
  return libc;
}

async function load(): Promise<Libc> {
  try {
    const mod = (await import('koffi')) as unknown as { default?: Koffi } & Koffi;
    const koffi: Koffi = mod.default ?? mod;
    const lib = koffi.load('libc.so.6');
    return {
      posix_openpt: lib.func('int posix_openpt(int flags)'),
      grantpt: lib.func('int grantpt(int fd)'),
      unlockpt: lib.func('int unlockpt(int fd)'),
      ptsname_r: lib.func('int ptsname_r(int fd, _Out_ uint8_t *buf, size_t len)'),
      tcgetattr: lib.func('int tcgetattr(int fd, _Out_ uint8_t *termios)'),
      tcsetattr: lib.func('int tcsetattr(int fd, int act, const uint8_t *termios)'),
      cfmakeraw: lib.func('void cfmakeraw(_Inout_ uint8_t *termios)'),
      open: lib.func('int open(const char *path, int flags)'),
      ioctl: lib.func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)'),
      close: lib.func('int close(int fd)'),
      poll: lib.func('int poll(_Inout_ uint8_t *fds, unsigned long n, int timeout)'),
      fallocate: lib.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)'),
      errno: () => koffi.errno(),
    };
  } catch (err) {
    throw new MicError('ENOSYS', 'libc through koffi is not available on this platform', { cause: err });
  }
}

/** Linux errno names this package reports, by number. */
const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  13: 'EACCES',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  95: 'EOPNOTSUPP',
};

/** `strerror`-like name of an errno number (`errno 42` when unknown). */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** `open` flags and constants (Linux x86-64 and arm64). */
export const O_RDWR = 0o2;
export const O_NOCTTY = 0o400;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const POLLIN = 0x1;
export const FALLOC_FL_KEEP_SIZE = 0x1;
export const FALLOC_FL_PUNCH_HOLE = 0x2;
/** Bytes that hold a `struct termios` (60 on glibc) with room to spare. */
export const TERMIOS_BYTES = 64;

/**
 * Waits up to `timeoutMs` for `fd` to be readable, on the thread pool (`poll(2)`; Node watches
 * only sockets, pipes and TTYs itself). @returns true when readable (or in error: the read says)
 */
export async function pollReadable(fd: number, timeoutMs: number): Promise<boolean> {
  const c = await getLibc();
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return new Promise((resolve, reject) => {
    c.poll.async(pfd, 1, timeoutMs, (err: unknown, r: number) => {
      if (err) reject(err as Error);
      else resolve(r > 0 && pfd.readInt16LE(6) !== 0);
    });
  });
}

/**
 * Punches a hole (reads then return zeros, the file keeps its size). @returns false when the
 * file system cannot (the caller writes zeros instead)
 */
export async function punchHole(fd: number, position: number, length: number): Promise<boolean> {
  let c: Libc;
  try {
    c = await getLibc();
  } catch {
    return false;
  }
  return c.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, position, length) === 0;
}
