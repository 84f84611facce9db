/**
 * Measured bursts through the devices of a served card, from the host's side: frames card → host
 * and host → card through the userspace switch. The demo prints them; the benchmarks repeat them.
 * (Block and console bursts run on the card: `blkBurst`, `consoleBurst`.)
 */
import { MicError } from '@mic/errors';
import type { NetBackend, SwitchPort } from '@mic/virtio-backends';
import { ETH_P_BURST } from './card-os.js';
import type { CardRig } from './host.js';

/** A burst of frames: how many, their size and the time from the first send to the last arrival. */
export interface FrameBurst {
  readonly frames: number;
  readonly bytes: number;
  readonly ms: number;
}

const isBurst = (f: Uint8Array): boolean =>
  f.length >= 14 && f[12] === ETH_P_BURST >> 8 && f[13] === (ETH_P_BURST & 0xff);

/**
 * The card sends `count` frames of `size` bytes to `port` (its MAC `portMac`); resolves when all
 * arrived. @throws MicError ETIMEDOUT when they did not within `timeoutMs`
 */
export async function framesCardToHost(
  rig: CardRig,
  port: SwitchPort,
  portMac: string,
  count: number,
  size: number,
  timeoutMs = 60_000,
): Promise<FrameBurst> {
  let got = 0;
  let bytes = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => (done = resolve));
  port.setReceiver((f) => {
    if (!isBurst(f)) return;
    got++;
    bytes += f.length;
    if (got === count) done();
  });
  const timer = setTimeout(done, timeoutMs);
  try {
    const t0 = performance.now();
    await rig.call('netBurst', portMac, count, size);
    await all;
    const ms = performance.now() - t0;
    if (got < count) {
      throw new MicError(
        'ETIMEDOUT',
        `${got} of ${count} frames from the card arrived within ${timeoutMs} ms`,
      );
    }
    return { frames: got, bytes, ms };
  } finally {
    clearTimeout(timer);
    port.setReceiver(null);
  }
}

/**
 * `port` (MAC `macs.port`) sends `count` frames of `size` bytes to the card's MAC `macs.card`, never more than `window` ahead
 * of what the backend put into the card's receive buffers (its queue drops beyond its limit, as a
 * NIC does); resolves when the card counted them all.
 */
export async function framesHostToCard(
  rig: CardRig,
  port: SwitchPort,
  net: NetBackend,
  macs: { readonly card: Uint8Array; readonly port: Uint8Array },
  count: number,
  size: number,
  window = 128,
  timeoutMs = 60_000,
): Promise<FrameBurst> {
  const base = (await rig.call<{ counters: { rxPackets: number } }>('netInfo')).counters.rxPackets;
  const frame = new Uint8Array(size);
  frame.set(macs.card, 0);
  frame.set(macs.port, 6);
  frame[12] = ETH_P_BURST >> 8;
  frame[13] = ETH_P_BURST & 0xff;
  const dv = new DataView(frame.buffer);
  const delivered0 = net.stats().rxFrames;
  const t0 = performance.now();
  const end = t0 + timeoutMs;
  for (let sent = 0; sent < count;) {
    while (sent < count && sent - (net.stats().rxFrames - delivered0) < window) {
      dv.setUint32(14, sent);
      port.send(frame.slice());
      sent++;
    }
    if (performance.now() > end)
      throw new MicError('ETIMEDOUT', `the card took ${sent} of ${count} frames within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
  await rig.call('netWaitRx', base + count, timeoutMs);
  return { frames: count, bytes: count * size, ms: performance.now() - t0 };
}
