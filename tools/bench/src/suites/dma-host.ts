/**
 * What the `dma` suite needs of a host driver until `@mic/mic-host` exists: the host's DMA device
 * parameters for the mic bus over an x100 host view (mbus hw ops on the host's DMA interrupt
 * sources 8 + ch, DMA map ops through the SMPT, the MMIO BAR as a register memory), as
 * `mic_x100.c` / `mic_boot.c` provide them to `mbus_register_device`.
 */
import { IRQ_RETURN, type IrqHandler, type MicIrq } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import {
  MBUS_DEV_DMA_HOST,
  type DmaBuffer,
  type DmaMapOps,
  type MbusDeviceParams,
  type MbusHwOps,
} from '@mic/mic-bus';
import { MmioMemory, hostDmaSrc, type X100HostView } from '@mic/x100';

interface Cookie extends MicIrq {
  readonly inner: ReturnType<X100HostView['requestIrq']>;
  readonly data: unknown;
}

class HostMbusHwOps implements MbusHwOps {
  readonly #host: X100HostView;
  readonly #live = new Set<Cookie>();

  constructor(host: X100HostView) {
    this.#host = host;
  }

  requestThreadedIrq<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    intrSrc: number,
  ): MicIrq {
    if (!handler && !threadFn)
      throw new MicError('EINVAL', `interrupt '${name}' has neither handler nor thread fn`);
    const box: { cookie?: Cookie } = {};
    const inner = this.#host.requestIrq(
      hostDmaSrc(intrSrc),
      () => {
        if (!box.cookie || !this.#live.has(box.cookie)) return;
        const r = handler ? handler(intrSrc, data) : IRQ_RETURN.WAKE_THREAD;
        if (r === IRQ_RETURN.WAKE_THREAD && threadFn) {
          queueMicrotask(() => {
            if (box.cookie && this.#live.has(box.cookie)) threadFn(intrSrc, data);
          });
        }
      },
      name,
    );
    const cookie: Cookie = { intrSrc, name, inner, data };
    box.cookie = cookie;
    this.#live.add(cookie);
    return cookie;
  }

  freeIrq<D>(cookie: MicIrq, data: D): void {
    const c = cookie as Cookie;
    if (!this.#live.has(c) || c.data !== data)
      throw new MicError('EINVAL', `interrupt '${cookie.name}' is not live`);
    this.#live.delete(c);
    this.#host.freeIrq(c.inner);
  }

  ackInterrupt(): void {
    this.#host.ackInterrupt();
  }
}

function hostDmaOps(host: X100HostView): DmaMapOps {
  return {
    alloc(size: number): DmaBuffer {
      const buf = host.allocDma(size, size >= 4096 ? 4096 : 64);
      return { va: buf.mem, dmaAddr: host.smpt.map(buf.dmaAddr, size), size };
    },
    free(buf: DmaBuffer): void {
      host.smpt.unmap(buf.dmaAddr, buf.size);
      host.freeDma(host.smpt.toDmaAddr(buf.dmaAddr));
    },
    mapSingle(va) {
      return host.smpt.map(host.dmaAddrOf(va), va.byteLength);
    },
    unmapSingle(dmaAddr: number, size: number): void {
      host.smpt.unmap(dmaAddr, size);
    },
  };
}

/** `mbus_register_device(MBUS_DEV_DMA_HOST, ...)` parameters for an x100 host view. */
export function hostDmaDeviceParams(host: X100HostView, index = 0): MbusDeviceParams {
  return {
    id: MBUS_DEV_DMA_HOST,
    dmaOps: hostDmaOps(host),
    hwOps: new HostMbusHwOps(host),
    index,
    mmioVa: new MmioMemory(host.mmio),
  };
}
