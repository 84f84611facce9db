// The host end of the echo device used by the VOP end-to-end tests (the card end is
// fixtures/echo-driver.mjs): a host backend that copies each chain the card sends back into a receive buffer (as mpssd's
// console thread moves bytes, but to the card itself).
import { isMicError } from '@mic/errors';
import { VIRTIO_CONFIG_S } from '@mic/virtio';
import type { VopVirtioHandle } from '@mic/vop-host';

export { ECHO_RX_BUF, EchoCardDriver } from './fixtures/echo-driver.mjs';

/** What the echo backend did. */
export interface EchoStats {
  chains: number;
  bytes: number;
}

/**
 * The host end: waits for the card (poll), drains vring `from` (default 1, the card's transmit
 * queue) and copies each chain into the next receive buffer of vring `to` (default 0). Runs until
 * `signal` aborts or the device goes away.
 */
export async function echoBackend(
  handle: VopVirtioHandle,
  signal: AbortSignal,
  stats: EchoStats = { chains: 0, bytes: 0 },
  { from = 1, to = 0 }: { from?: number; to?: number } = {},
): Promise<EchoStats> {
  const buf = new Uint8Array(1 << 20);
  try {
    while (!signal.aborted) {
      const ev = await handle.poll({ signal, timeoutMs: 200 });
      if (ev.err) return stats;
      if ((handle.info().status & VIRTIO_CONFIG_S.DRIVER_OK) === 0) continue;
      for (;;) {
        const n = await handle.copyDesc({ iov: [buf], vrIdx: from, updateUsed: true });
        if (n === 0) break;
        stats.chains++;
        stats.bytes += n;
        // Into as many receive buffers as it takes.
        for (let sent = 0; sent < n && !signal.aborted;) {
          const m = await handle.copyDesc({ iov: [buf.subarray(sent, n)], vrIdx: to, updateUsed: true });
          sent += m;
          if (m > 0) continue;
          const again = await handle.poll({ signal, timeoutMs: 200 });
          if (again.err) return stats;
        }
      }
    }
  } catch (err) {
    // The end of the device (card stop, hot-unplug, cancel) ends the backend.
    if (isMicError(err) && ['ENODEV', 'ECANCELED', 'EBADF'].includes(err.code)) return stats;
    throw err;
  }
  return stats;
}
