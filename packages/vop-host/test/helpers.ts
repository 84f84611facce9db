// Rigs for the vop-host tests: a MockVopLink, the host driver probed on its host side, the card
// double on its card side, device templates as mpssd adds them, and a mock DMA channel.
import type { DmaChannel } from '@mic/bus-core';
import { type Clock, VirtualClock } from '@mic/clock';
import { MicError } from '@mic/errors';
import type { BufferMemory } from '@mic/memory';
import {
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_NET,
  bootparamInit,
  encodeDescBlock,
  featureBitsToBytes,
} from '@mic/mic-common';
import { MOCK_SMPT_BASE } from '@mic/bus-core';
import { MockVopLink, VopBus } from '@mic/vop-bus';
import { type VopHostControl, VopHostDriver, type VopHostOptions } from '../src/index.js';
import { CardDouble } from './card-double.js';

/** mpssd's console template: type 3, 2 × 128, feature_len 4, 12-byte config. */
export function consoleBlock(num = 128): Uint8Array {
  return encodeDescBlock({
    type: VIRTIO_ID_CONSOLE,
    vqconfigs: [0, 1].map(() => ({ address: 0, usedAddress: 0, num })),
    hostFeatures: featureBitsToBytes(0n, 4),
    config: new Uint8Array(12),
  });
}

/** mpssd's net template: type 1, 2 × 128, features 0x3C1, 24-byte config. */
export function netBlock(): Uint8Array {
  return encodeDescBlock({
    type: VIRTIO_ID_NET,
    vqconfigs: [0, 1].map(() => ({ address: 0, usedAddress: 0, num: 128 })),
    hostFeatures: featureBitsToBytes(0x3c1n, 4),
    config: new Uint8Array(24),
  });
}

/** mpssd's block template: type 2, 1 × 128, SEG_MAX, 60-byte config with seg_max 126. */
export function blockBlock(capacity = 2048n): Uint8Array {
  const config = new Uint8Array(60);
  const dv = new DataView(config.buffer);
  dv.setBigUint64(0, capacity, true);
  dv.setUint32(12, 126, true);
  return encodeDescBlock({
    type: VIRTIO_ID_BLOCK,
    vqconfigs: [{ address: 0, usedAddress: 0, num: 128 }],
    hostFeatures: featureBitsToBytes(0x4n, 4),
    config,
  });
}

/**
 * A DMA channel over the mock link's memories, with the x100 rules: 64-byte aligned addresses and
 * lengths, host RAM at `MOCK_SMPT_BASE + offset`, card RAM at its offset. It completes each copy
 * at the next wait; `failAfter` makes copies fail after that many.
 */
export class MockDmaChannel implements DmaChannel {
  readonly chanId = 0;
  readonly name = 'mockdma0chan0';
  readonly copyAlign = 6;
  copies = 0;
  failAfter = Infinity;
  /** The length of every copy submitted, in order. */
  readonly lengths: number[] = [];
  /** Copies submitted and not waited for yet, and the most there were at once. */
  inFlight = 0;
  maxInFlight = 0;
  readonly #link: MockVopLink;
  readonly #status = new Map<number, string>();
  #cookie = 0;

  constructor(link: MockVopLink) {
    this.#link = link;
  }

  #mem(addr: number, len: number): [BufferMemory, number] {
    if (addr >= MOCK_SMPT_BASE) return [this.#link.hostRam, addr - MOCK_SMPT_BASE];
    if (addr + len > this.#link.cardRam.byteLength) {
      throw new MicError(
        'EFAULT',
        `mock DMA: card range 0x${addr.toString(16)}+${len} is outside card memory`,
      );
    }
    return [this.#link.cardRam, addr];
  }

  prepMemcpy(dst: number, src: number, len: number): { submit(): number } {
    for (const v of [dst, src, len]) {
      if (v % 64 !== 0) throw new MicError('EINVAL', `mock DMA: ${v} is not 64-byte aligned`);
    }
    const [dm, doff] = this.#mem(dst, len);
    const [sm, soff] = this.#mem(src, len);
    return {
      submit: () => {
        const cookie = ++this.#cookie;
        this.lengths.push(len);
        this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
        if (this.copies >= this.failAfter) {
          this.#status.set(cookie, 'error');
        } else {
          const tmp = new Uint8Array(len);
          sm.read(soff, tmp);
          dm.write(doff, tmp);
          this.copies++;
          this.#status.set(cookie, 'complete');
        }
        return cookie;
      },
    };
  }

  issuePending(): void {}

  syncWait(cookie: number): Promise<string> {
    this.inFlight--;
    return Promise.resolve(this.#status.get(cookie) ?? 'error');
  }
}

export interface Rig {
  readonly link: MockVopLink;
  readonly bus: VopBus;
  readonly driver: VopHostDriver;
  readonly control: VopHostControl;
  readonly card: CardDouble;
  readonly clock: Clock;
  readonly dma: MockDmaChannel | null;
}

/** A host driver probed on a mock link, with the card double on the other end. */
export async function rig(
  options: VopHostOptions & { readonly dma?: boolean; readonly virtualClock?: boolean } = {},
): Promise<Rig> {
  const link = new MockVopLink({ hostRamSize: 4 << 20, cardRamSize: 4 << 20 });
  bootparamInit(link.dp.va, 1);
  const clock = options.clock ?? (options.virtualClock === false ? undefined : new VirtualClock());
  const dma = options.dma ? new MockDmaChannel(link) : null;
  const bus = new VopBus();
  const driver = new VopHostDriver({ ...options, ...(clock ? { clock } : {}) });
  await bus.registerDriver(driver);
  await bus.registerDevice(link.hostParams(dma));
  const control = driver.control(0)!;
  return { link, bus, driver, control, card: new CardDouble(link), clock: clock!, dma };
}
