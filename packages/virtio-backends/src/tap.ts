/**
 * A TAP device as the card's network, as mpssd makes it (reference §7.7): `open("/dev/net/tun")`,
 * `ioctl(TUNSETIFF, IFF_TAP | IFF_NO_PI)`, link up, host address 172.31.<id+1>.254/24 (the card
 * is .1) through `ip` (iproute2, as mpssd forks `ip`). Needs root (CAP_NET_ADMIN).
 *
 * Decided differently from mpssd: the name must not exist (`IFF_TUN_EXCL`, one clear EEXIST
 * instead of attaching to someone else's TAP); the address is formatted for any card id up to
 * 254 (mpssd's 16-byte buffer truncates it); no vnet header on the TAP (the backend completes
 * partial checksums itself, so frames on the TAP are plain Ethernet); the TAP can be moved into
 * a network namespace (`netns`) so that nothing it carries reaches the host's own networks.
 *
 * Node cannot watch a TAP descriptor (it is neither a socket nor a pipe), so the reader waits in
 * `poll(2)` on the thread pool (koffi), 200 ms at a time so that `close` ends it promptly.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readSync, writeSync } from 'node:fs';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { errnoName, getLibc, pollReadable } from './libc.js';
import type { FrameLink, FrameLinkStats } from './link.js';

/** `TUNSETIFF` = `_IOW('T', 202, int)`. */
export const TUNSETIFF = 0x400454ca;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
/** Fail instead of attaching when the interface exists. */
export const IFF_TUN_EXCL = 0x8000;
/** `IFNAMSIZ`: interface names have at most 15 characters. */
export const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
const POLL_MS = 200;

/** mpssd's addresses for card `id`: host 172.31.<id+1>.254/24, card 172.31.<id+1>.1. */
export function micTapAddresses(cardId: number): { host: string; card: string; prefixLength: 24 } {
  if (!Number.isInteger(cardId) || cardId < 0 || cardId > 254) {
    throw new MicError('EINVAL', `card id ${String(cardId)} is not in [0, 254] (172.31.<id+1>.x)`);
  }
  return { host: `172.31.${cardId + 1}.254`, card: `172.31.${cardId + 1}.1`, prefixLength: 24 };
}

/** Options of {@link TapLink.open}. */
export interface TapOptions {
  /** The card's index: the default name `mic<id>` and addresses {@link micTapAddresses} (default 0). */
  readonly cardId?: number;
  /** Interface name (default `mic<cardId>`), at most 15 characters of `[A-Za-z0-9_.-]`. */
  readonly name?: string;
  /** The host's address with prefix length (default `172.31.<id+1>.254/24`); null: no address. */
  readonly hostAddress?: string | null;
  /** Move the TAP into this existing network namespace (`ip netns add` made it) before configuring it. */
  readonly netns?: string;
  readonly logger?: Logger;
}

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) {
        reject(
          new MicError('EIO', `ip ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`, {
            cause: err,
          }),
        );
      } else resolve();
    });
  });
}

function ipOk(args: string[]): Promise<boolean> {
  return ip(args).then(
    () => true,
    () => false,
  );
}

/** A {@link FrameLink} on a TAP device. */
export class TapLink implements FrameLink {
  readonly name: string;
  /** The interface name. */
  readonly ifname: string;
  readonly netns: string | null;
  readonly #fd: number;
  readonly #log: Logger;
  #receiver: ((frame: Uint8Array) => void) | null = null;
  readonly #stats: FrameLinkStats = { sent: 0, received: 0, dropped: 0 };
  #closed = false;
  readonly #reader: Promise<void>;

  private constructor(ifname: string, netns: string | null, fd: number, log: Logger) {
    this.ifname = ifname;
    this.netns = netns;
    this.name = `tap ${ifname}${netns ? ` (netns ${netns})` : ''}`;
    this.#fd = fd;
    this.#log = log;
    this.#reader = this.#read();
  }

  /**
   * Creates and configures the TAP. One MicError per bad option: EINVAL (a bad name, card id or
   * address), EEXIST (an interface of that name exists, here or in `netns`), ENOENT (no such
   * network namespace, no `/dev/net/tun`), EACCES (not root); EIO when `ip` fails.
   */
  static async open(options: TapOptions = {}): Promise<TapLink> {
    const cardId = options.cardId ?? 0;
    const addrs = micTapAddresses(cardId);
    const ifname = options.name ?? `mic${cardId}`;
    if (
      typeof ifname !== 'string' ||
      !/^[A-Za-z0-9_.-]{1,15}$/.test(ifname) ||
      ifname === '.' ||
      ifname === '..'
    ) {
      throw new MicError(
        'EINVAL',
        `TAP name ${JSON.stringify(ifname)} is not 1-15 characters of [A-Za-z0-9_.-]`,
      );
    }
    const hostAddress =
      options.hostAddress === undefined ? `${addrs.host}/${addrs.prefixLength}` : options.hostAddress;
    if (hostAddress !== null && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(hostAddress)) {
      throw new MicError('EINVAL', `TAP host address ${JSON.stringify(hostAddress)} is not a.b.c.d/prefix`);
    }
    const netns = options.netns ?? null;
    const nsArgs = netns === null ? [] : ['-n', netns];
    if (netns !== null && !existsSync(`/run/netns/${netns}`)) {
      throw new MicError('ENOENT', `network namespace ${netns} does not exist (ip netns add ${netns})`);
    }
    if (
      existsSync(`/sys/class/net/${ifname}`) ||
      (netns !== null && (await ipOk([...nsArgs, 'link', 'show', 'dev', ifname])))
    ) {
      throw new MicError(
        'EEXIST',
        `a network interface named ${ifname} already exists${netns ? ` (netns ${netns})` : ''}`,
      );
    }
    const c = await getLibc();
    let fd: number;
    try {
      fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new MicError('ENOENT', '/dev/net/tun does not exist (no tun driver)', { cause: err });
      throw new MicError(
        'EACCES',
        `/dev/net/tun cannot be opened (${code ?? 'error'}): creating a TAP needs root`,
        { cause: err },
      );
    }
    try {
      const ifr = Buffer.alloc(IFREQ_SIZE);
      ifr.write(ifname, 0, IFNAMSIZ - 1, 'latin1');
      ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL, IFNAMSIZ);
      if (c.ioctl(fd, TUNSETIFF, ifr) !== 0) {
        const errno = c.errno();
        if (errno === 16 || errno === 17)
          throw new MicError('EEXIST', `a network interface named ${ifname} already exists`);
        if (errno === 1) throw new MicError('EACCES', `creating TAP ${ifname} needs CAP_NET_ADMIN (root)`);
        throw new MicError('EIO', `TUNSETIFF for ${ifname} failed: ${errnoName(errno)}`, {
          details: { errno },
        });
      }
      if (netns !== null) await ip(['link', 'set', 'dev', ifname, 'netns', netns]);
      await ip([...nsArgs, 'link', 'set', 'dev', ifname, 'up']);
      if (hostAddress !== null) await ip([...nsArgs, 'addr', 'add', hostAddress, 'dev', ifname]);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const log = options.logger ?? nullLogger;
    log.info(`Created TAP ${ifname}`, { netns, hostAddress });
    return new TapLink(ifname, netns, fd, log);
  }

  async #read(): Promise<void> {
    const buf = Buffer.alloc(65536 + 64);
    while (!this.#closed) {
      try {
        if (!(await pollReadable(this.#fd, POLL_MS))) continue;
      } catch (err) {
        this.#log.error('virtio-net: poll on the TAP failed', { ifname: this.ifname, err });
        return;
      }
      for (;;) {
        if (this.#closed) return;
        let n: number;
        try {
          n = readSync(this.#fd, buf, 0, buf.length, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
            this.#log.warn('virtio-net: TAP read failed', { ifname: this.ifname, err });
          }
          break;
        }
        if (n <= 0) break;
        this.#stats.received++;
        this.#receiver?.(new Uint8Array(buf.subarray(0, n)));
      }
    }
  }

  send(frame: Uint8Array): void {
    if (this.#closed) {
      this.#stats.dropped++;
      return;
    }
    try {
      writeSync(this.#fd, frame);
      this.#stats.sent++;
    } catch (err) {
      this.#stats.dropped++;
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN')
        this.#log.warn('Tun write failed', { ifname: this.ifname, err });
    }
  }

  setReceiver(receiver: ((frame: Uint8Array) => void) | null): void {
    this.#receiver = receiver;
  }

  stats(): FrameLinkStats {
    return { ...this.#stats };
  }

  /** Stops the reader and closes the descriptor: the kernel deletes the (non-persistent) TAP. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reader;
    closeSync(this.#fd);
  }
}
