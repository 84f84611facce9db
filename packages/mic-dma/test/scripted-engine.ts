// The other party for the driver on the mock mic bus: a scripted DMA engine over the mock's MMIO
// and RAM. It decodes the ring with @mic/x100's decoder (an implementation independent of the
// driver's encoder), completes descriptors when told to (or on every head write), and records
// every register write the driver makes.
import type { BufferMemory, Memory } from '@mic/memory';
import type { MbusDeviceParams, MockMbusHardware } from '@mic/mic-bus';
import { X100_DMA_BIT, X100_DMA_REG, decodeDmaRing, dmaChanReg, readDmaDesc } from '@mic/x100';
import type { X100DmaDescriptor, X100DmaRing } from '@mic/x100';

export interface RegWrite {
  readonly offset: number;
  readonly value: number;
}

/**
 * A Memory over `mem` that records 32-bit writes and calls `onWrite` after each, and `onRead`
 * before each 32-bit read.
 */
function recording(
  mem: BufferMemory,
  log: RegWrite[],
  onWrite: (w: RegWrite) => void,
  onRead: (offset: number) => void,
): Memory {
  return new Proxy(mem, {
    get(target, prop) {
      if (prop === 'readU32' || prop === 'loadU32') {
        return (offset: number) => {
          onRead(offset);
          return prop === 'readU32' ? target.readU32(offset) : target.loadU32(offset);
        };
      }
      if (prop === 'writeU32' || prop === 'storeU32') {
        return (offset: number, value: number) => {
          target.writeU32(offset, value);
          const w = { offset, value: value >>> 0 };
          log.push(w);
          onWrite(w);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** See the module comment. */
export class ScriptedEngine {
  readonly hw: MockMbusHardware;
  readonly writes: RegWrite[] = [];
  readonly params: MbusDeviceParams;
  /** Complete every channel's descriptors, asynchronously, whenever its head is written. */
  auto = false;
  /** Channels whose descriptors `auto` leaves alone (a stalled engine). */
  readonly stalled = new Set<number>();
  /** Called before every 32-bit register read of the driver, with its MMIO offset. */
  onRead: ((offset: number) => void) | undefined = undefined;

  constructor(hw: MockMbusHardware, index = 0) {
    this.hw = hw;
    const mmioVa = recording(
      hw.mmio,
      this.writes,
      (w) => {
        const ch = Math.floor((w.offset - dmaChanReg(0, 0)) / 0x40);
        if (
          this.auto &&
          Number.isInteger(ch) &&
          ch >= 0 &&
          ch < 8 &&
          w.offset === dmaChanReg(ch, X100_DMA_REG.DHPR)
        ) {
          setImmediate(() => {
            if (!this.stalled.has(ch)) this.complete(ch);
          });
        }
      },
      (offset) => this.onRead?.(offset),
    );
    this.params = { ...hw.params(index), mmioVa };
  }

  reg(ch: number, r: number): number {
    return this.hw.mmio.readU32(dmaChanReg(ch, r));
  }

  setReg(ch: number, r: number, value: number): void {
    this.hw.mmio.writeU32(dmaChanReg(ch, r), value);
  }

  /** Register writes to channel `ch`'s register `r`, in order. */
  writesTo(offset: number): number[] {
    return this.writes.filter((w) => w.offset === offset).map((w) => w.value);
  }

  ring(ch: number): X100DmaRing {
    return decodeDmaRing(this.reg(ch, X100_DMA_REG.DRAR_LO), this.reg(ch, X100_DMA_REG.DRAR_HI));
  }

  /** Where DMA address `addr` is in the mock RAM. */
  ramOffset(addr: number): number {
    return addr - this.hw.dmaOps.base;
  }

  /** Descriptors `from` .. `to` (exclusive, ring order) of channel `ch`. */
  descriptors(ch: number, from: number, to: number): X100DmaDescriptor[] {
    const ring = this.ring(ch);
    const out: X100DmaDescriptor[] = [];
    for (let i = from; i !== to; i = (i + 1) % ring.entries) {
      out.push(readDmaDesc(this.hw.ram, this.ramOffset(ring.addr) + i * 16));
    }
    return out;
  }

  tail(ch: number): number {
    return this.reg(ch, X100_DMA_REG.DSTAT) & X100_DMA_BIT.DSTAT_CMP_CNT_MASK;
  }

  /**
   * Does channel `ch`'s descriptors from the completion count up to the head (or `count` of
   * them): copies within the mock RAM, writes STATUS values, advances DSTAT and DTPR, and raises
   * the channel interrupt when an interrupting STATUS was among them.
   */
  complete(ch: number, count?: number): void {
    const ring = this.ring(ch);
    const head = this.reg(ch, X100_DMA_REG.DHPR);
    let tail = this.tail(ch);
    let raise = false;
    for (let n = 0; tail !== head && (count === undefined || n < count); n++) {
      const d = readDmaDesc(this.hw.ram, this.ramOffset(ring.addr) + tail * 16);
      if (d.type === 'memcpy') {
        const ram = this.hw.ram.bytes(0, this.hw.ram.byteLength);
        ram.copyWithin(this.ramOffset(d.dst), this.ramOffset(d.src), this.ramOffset(d.src) + d.length);
      } else if (d.type === 'status') {
        this.hw.ram.writeBigU64(this.ramOffset(d.dst), d.value);
        if (d.interrupt) raise = true;
      }
      tail = (tail + 1) % ring.entries;
    }
    this.setReg(ch, X100_DMA_REG.DTPR, tail);
    this.setReg(
      ch,
      X100_DMA_REG.DSTAT,
      (this.reg(ch, X100_DMA_REG.DSTAT) & ~X100_DMA_BIT.DSTAT_CMP_CNT_MASK) | tail,
    );
    if (raise) this.hw.hwOps.raiseInterrupt(ch);
  }

  /** Stops channel `ch` with DCHERR `code` and raises its interrupt. */
  fail(ch: number, code: number): void {
    this.setReg(ch, X100_DMA_REG.DCHERR, code);
    this.setReg(ch, X100_DMA_REG.DSTAT, this.reg(ch, X100_DMA_REG.DSTAT) | X100_DMA_BIT.DSTAT_QUIESCE);
    this.hw.hwOps.raiseInterrupt(ch);
  }
}
