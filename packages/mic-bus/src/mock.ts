/**
 * Mock mbus hardware: {@link MockMbusHwOps} (interrupt sources with threaded handlers) and
 * {@link MockMbusHardware} (ops plus MMIO and RAM, ready to register a device).
 */
import {
  type IrqHandler,
  MOCK_SMPT_BASE,
  type MicIrq,
  MockDmaMapOps,
  MockIrqLines,
  MOCK_MMIO_LEN,
} from '@mic/bus-core';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory } from '@mic/memory';
import { MBUS_DEV_DMA_HOST, MBUS_DEV_DMA_MIC, type MbusDeviceParams, type MbusHwOps } from './mbus.js';

/** Interrupt sources of the mock by default: the 8 DMA channels of an x100. */
export const MOCK_MBUS_SOURCES = 8;

/** Options of {@link MockMbusHwOps}. */
export interface MockMbusHwOpsOptions {
  /** Interrupt sources, numbered `0..sources-1` (default 8). */
  readonly sources?: number;
  /**
   * A delivered source stays masked until `ackInterrupt` (default false; {@link MockMbusHardware}
   * turns it on for the host, which runs MSI-X with auto-clear on x100).
   */
  readonly autoClear?: boolean;
  readonly logger?: Logger;
}

/**
 * {@link MbusHwOps} with per-instance state. {@link raiseInterrupt} plays the DMA engine raising a
 * channel's interrupt; handlers and thread functions run in later tasks.
 *
 * @example
 * const ops = new MockMbusHwOps();
 * ops.requestThreadedIrq(ackAndWake, cleanup, 'mic dma-channel0', ch, 0);
 * ops.raiseInterrupt(0);
 * await ops.flush(); // ackAndWake ran, then cleanup
 */
export class MockMbusHwOps implements MbusHwOps {
  /** The interrupt sources. */
  readonly lines: MockIrqLines;

  constructor(options: MockMbusHwOpsOptions = {}) {
    this.lines = new MockIrqLines({
      count: options.sources ?? MOCK_MBUS_SOURCES,
      autoClear: options.autoClear ?? false,
      name: 'mbus interrupt sources',
      logger: options.logger ?? nullLogger,
    });
  }

  requestThreadedIrq<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    intrSrc: number,
  ): MicIrq {
    return this.lines.request(handler, threadFn, name, data, intrSrc);
  }

  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.lines.free(cookie, data);
  }

  ackInterrupt(num: number): void {
    this.lines.ack(num);
  }

  // Test helpers.

  /** Raises source `src`, as the DMA engine does when a descriptor with the interrupt bit completes. */
  raiseInterrupt(src: number): void {
    this.lines.raise(src);
  }

  /** Every `ackInterrupt` argument, in order. */
  get acks(): readonly number[] {
    return this.lines.acks;
  }

  /** Requests installed on source `src`. */
  usage(src: number): number {
    return this.lines.usage(src);
  }

  /** Interrupts and thread functions not run yet. */
  get pending(): number {
    return this.lines.pending;
  }

  /** Resolves once every raised interrupt and woken thread function has run. */
  flush(): Promise<void> {
    return this.lines.flush();
  }
}

/** Options of {@link MockMbusHardware}. */
export interface MockMbusHardwareOptions extends MockMbusHwOpsOptions {
  /** Which side: the host's DMA device maps through the SMPT window, the card's directly. */
  readonly role: 'host' | 'card';
  /** Bytes of RAM the DMA ops hand out (default 1 MiB). */
  readonly ramSize?: number;
  /** Back the memories with SharedArrayBuffers (default false). */
  readonly shared?: boolean;
  /** DMA address of RAM offset 0 (default: host {@link MOCK_SMPT_BASE}, card 0). */
  readonly dmaBase?: number;
}

/**
 * Everything a mock mbus device needs: the ops, the SBOX MMIO (128 KiB of zeroed registers) and
 * DMA ops over a RAM pool (host: DMA address `MOCK_SMPT_BASE + offset`; card: the offset; `dmaBase`
 * moves either).
 *
 * @example
 * const hw = new MockMbusHardware({ role: 'host' });
 * const mbdev = await mbusBus.registerDevice(hw.params(0));
 */
export class MockMbusHardware {
  readonly role: 'host' | 'card';
  readonly hwOps: MockMbusHwOps;
  readonly mmio: BufferMemory;
  readonly ram: BufferMemory;
  readonly dmaOps: MockDmaMapOps;

  constructor(options: MockMbusHardwareOptions) {
    if (options.role !== 'host' && options.role !== 'card') {
      throw new MicError('EINVAL', `mock mbus role ${String(options.role)} is not host or card`);
    }
    const shared = options.shared ?? false;
    this.role = options.role;
    this.hwOps = new MockMbusHwOps({ ...options, autoClear: options.autoClear ?? options.role === 'host' });
    this.mmio = BufferMemory.allocate(MOCK_MMIO_LEN, { shared });
    this.ram = BufferMemory.allocate(options.ramSize ?? 1 << 20, { shared });
    this.dmaOps = new MockDmaMapOps({
      pool: this.ram,
      base: options.dmaBase ?? (options.role === 'host' ? MOCK_SMPT_BASE : 0),
      name: `${options.role} mbus dma`,
    });
  }

  /** Registration parameters: `MBUS_DEV_DMA_HOST` on the host, `MBUS_DEV_DMA_MIC` on the card. */
  params(index = 0): MbusDeviceParams {
    return {
      id: this.role === 'host' ? MBUS_DEV_DMA_HOST : MBUS_DEV_DMA_MIC,
      dmaOps: this.dmaOps,
      hwOps: this.hwOps,
      index,
      mmioVa: this.mmio,
    };
  }
}
