import type { Memory } from '@mic/memory';
import type { X100Platform } from '../src/index.js';
import {
  X100_DMA_BIT,
  X100_DMA_DESC,
  X100_DMA_REG,
  X100_REG,
  X100DmaEngine,
  X100Hardware,
  X100HostView,
  dmaChanReg,
  dmaDcrEnableBit,
  dmaDcrOwnerBit,
  encodeDmaRing,
  installDmaRegisterHandlers,
  writeDmaStatusDesc,
} from '../src/index.js';
import { eventually, hostBuffer } from './helpers.js';

/** Raw hardware, a host view, the DMA register handlers and an engine stepped by hand. */
export interface Rig {
  readonly hw: X100Hardware;
  readonly host: X100HostView;
  readonly engine: X100DmaEngine;
  /** Engine wake-ups the register writes asked for. */
  kicks: number;
}

export function makeRig(chunkBytes?: number, iommu = true): Rig {
  const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20, iommu });
  const host = new X100HostView(hw, { delivery: 'microtask' });
  const rig: Rig = {
    hw,
    host,
    engine: new X100DmaEngine(hw, chunkBytes === undefined ? {} : { chunkBytes }),
    kicks: 0,
  };
  installDmaRegisterHandlers(hw, () => {
    rig.kicks++;
  });
  return rig;
}

/** Steps the engine until it is idle; returns the number of steps. */
export function runEngine(engine: X100DmaEngine): number {
  let steps = 0;
  while (engine.step()) steps++;
  return steps;
}

export const reg = (ch: number, r: number): number => dmaChanReg(ch, r);

/** A ring a channel uses: its memory and card address. */
export interface TestRing {
  readonly mem: Memory;
  readonly addr: number;
  readonly entries: number;
}

/** A ring in host RAM, mapped for the card (what the host driver does). */
export function hostRing(rig: Rig, entries: number): TestRing {
  const buf = hostBuffer(rig.host, entries * X100_DMA_DESC.SIZE, 4096);
  return { mem: buf.mem, addr: rig.host.mapSingle(buf.dmaAddr, buf.size), entries };
}

/** A ring in card memory at `addr`. */
export function cardRing(rig: Rig, addr: number, entries: number): TestRing {
  return { mem: rig.hw.cardMemory.window(addr, entries * X100_DMA_DESC.SIZE), addr, entries };
}

/** The kernel's channel setup: owner, disable, mask, DCHERRMSK 0, DRAR, unmask, enable. */
export function setupChannel(rig: Rig, ch: number, ring: TestRing, cardOwned: boolean): void {
  const mmio = rig.hw.mmio;
  let dcr = mmio.read32(X100_REG.DCR);
  dcr = cardOwned ? dcr | dmaDcrOwnerBit(ch) : dcr & ~dmaDcrOwnerBit(ch);
  mmio.write32(X100_REG.DCR, dcr & ~dmaDcrEnableBit(ch));
  mmio.write32(reg(ch, X100_DMA_REG.DCHERRMSK), 0);
  const { drarLo, drarHi } = encodeDmaRing(ring.addr, ring.entries);
  mmio.write32(reg(ch, X100_DMA_REG.DRAR_LO), drarLo);
  mmio.write32(reg(ch, X100_DMA_REG.DRAR_HI), drarHi);
  const im = cardOwned ? X100_DMA_BIT.DCAR_IM0 : X100_DMA_BIT.DCAR_IM1;
  mmio.write32(reg(ch, X100_DMA_REG.DCAR), mmio.read32(reg(ch, X100_DMA_REG.DCAR)) & ~im);
  mmio.write32(X100_REG.DCR, mmio.read32(X100_REG.DCR) | dmaDcrEnableBit(ch));
}

export function dstat(rig: Rig, ch: number): number {
  return rig.hw.mmio.read32(reg(ch, X100_DMA_REG.DSTAT));
}

export function completion(rig: Rig, ch: number): number {
  return dstat(rig, ch) & X100_DMA_BIT.DSTAT_CMP_CNT_MASK;
}

export function cherr(rig: Rig, ch: number): number {
  return rig.hw.mmio.read32(reg(ch, X100_DMA_REG.DCHERR));
}

/** Writes the head register (through its handler). */
export function setHead(rig: Rig, ch: number, head: number): void {
  rig.hw.mmio.write32(reg(ch, X100_DMA_REG.DHPR), head);
}

/** Deterministic bytes. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Runs one STATUS descriptor on channel `ch` of a running platform, programmed from the host
 * (a 256-entry ring at card address 0x80000 up, the target at 0x20000), and checks it landed: the engine thread and the
 * channel work.
 */
export async function statusWorks(p: X100Platform, ch: number): Promise<void> {
  const rig = { hw: p.hardware, host: p.host } as Rig;
  const entries = 256;
  // a channel used before (and not reset since) continues at its tail
  const slot = rig.hw.mmio.read32(reg(ch, X100_DMA_REG.DTPR));
  if (slot >= entries) throw new Error(`channel ${ch}: its tail ${slot} is beyond a test ring`);
  const ring = cardRing(rig, 0x80000 + ch * entries * 16, entries);
  setupChannel(rig, ch, ring, ch >= 4);
  const dst = 0x20000 + ch * 8;
  const value = BigInt(p.hardware.generation) * 16n + BigInt(ch);
  writeDmaStatusDesc(ring.mem, slot * 16, dst, value, false);
  const head = (slot + 1) % entries;
  setHead(rig, ch, head);
  await eventually(() => completion(rig, ch) === head, `a STATUS on channel ${ch}`, 20_000);
  if (p.hardware.cardMemory.readBigU64(dst) !== value || cherr(rig, ch) !== 0) {
    throw new Error(`channel ${ch}: the STATUS did not land (DCHERR ${cherr(rig, ch)})`);
  }
}
