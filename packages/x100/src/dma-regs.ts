/**
 * What writes to the DMA registers do, in the thread that writes them (the host driver's, the
 * card's). The engine itself runs elsewhere (queued microtasks on `inProcess`, its own thread on
 * `worker`); these handlers store the value, make the state changes a driver must see at once,
 * and wake the engine.
 *
 * - `DCR`: bit 2·ch+1 enables channel ch, bit 2·ch makes it card-owned (clear: host-owned, the
 *   power-on state). Enabling a channel checks its ring (`DRAR`, size 2–0x1ffff, 64-byte aligned,
 *   reachable) and its indices; a bad one stops the channel at once (`DCHERR` RING or HEAD,
 *   `DSTAT` QUIESCE), so a driver that checks right after enabling sees it. Disabling a channel
 *   resets it: descriptors not yet taken are dropped (`DHPR` := `DTPR`), `DCHERR` and QUIESCE are
 *   cleared; the completion count stays. The register is one for both sides: two read-modify-
 *   writes of it at the same time lose one update, as on the hardware.
 * - `DHPR` (the head, written by software): while the channel is enabled and not stopped, a value
 *   beyond the ring, or the current head written again (the hardware reads that as a full ring),
 *   stops the channel with `DCHERR` HEAD. Otherwise the engine goes to work.
 * - `DTPR`, `DSTAT`, `DCHERR`: updated by the engine; software writes are ignored.
 * - `DCAR`, `DRAR_LO`/`DRAR_HI`, `DCHERRMSK`: stored; they take effect when the engine reads them
 *   (`DRAR` when the channel is enabled, the masks when an interrupt is due).
 *
 * @see drivers/dma/mic_x100_dma.h
 * @see drivers/dma/mic_x100_dma.c
 */
import { MicError, checkInt, checkObject, formatValue } from '@mic/errors';
import {
  X100_DMA,
  X100_DMA_BIT,
  X100_DMA_CHERR,
  X100_DMA_DESC,
  X100_DMA_REG,
  X100_REG,
  cardDmaSrc,
  dmaChanReg,
  hostDmaSrc,
} from './constants.js';
import { decodeDmaRing } from './dma-desc.js';
import { DMA_LOCK_OWNER, DmaSharedState, cardLockOwner } from './dma-state.js';
import { checkHardware, type X100Hardware } from './hardware.js';

/**
 * True when a ring of `entries` descriptors at card address `addr` is one the engine can use:
 * 2–0x1ffff entries, 64-byte aligned, all of it in card memory or mapped host memory (through
 * the SMPT and, when on, the host's IOMMU; a refusal of the IOMMU is a fault of channel `ch`).
 */
export function dmaRingUsable(hw: X100Hardware, addr: number, entries: number, ch: number): boolean {
  if (entries < 2 || entries > X100_DMA_DESC.MAX_RING_ENTRIES || addr % X100_DMA_DESC.ALIGN !== 0)
    return false;
  const bytes = entries * X100_DMA_DESC.SIZE;
  if (addr < hw.config.cardMemorySize) return addr + bytes <= hw.config.cardMemorySize;
  const host = hw.smptResolve(addr, bytes);
  return host >= 0 && hw.iommu.check(ch, addr, host, bytes);
}

/**
 * Raises channel `ch`'s interrupt on the side that owns it (`DCR` owner bit set: the card, card
 * source 16 + ch; clear: the host, host source 8 + ch), unless the owner's `DCAR` mask bit is
 * set; for an error, also unless `DCHERRMSK` is non-zero.
 */
export function raiseDmaInterrupt(hw: X100Hardware, ch: number, error: boolean): void {
  const mmio = hw.mmio;
  if (error && mmio.read32(dmaChanReg(ch, X100_DMA_REG.DCHERRMSK)) !== 0) return;
  const cardOwned = ((mmio.read32(X100_REG.DCR) >>> (2 * ch)) & 1) === 1;
  const dcar = mmio.read32(dmaChanReg(ch, X100_DMA_REG.DCAR));
  if (cardOwned) {
    if ((dcar & X100_DMA_BIT.DCAR_IM0) === 0) hw.raiseCardInterrupt(cardDmaSrc(ch));
  } else if ((dcar & X100_DMA_BIT.DCAR_IM1) === 0) {
    hw.raiseHostInterrupt(hostDmaSrc(ch));
  }
}

/** Stops channel `ch` with `code` (hold its lock). */
export function stopDmaChannel(hw: X100Hardware, ch: number, code: number): void {
  hw.mmio.store32(dmaChanReg(ch, X100_DMA_REG.DCHERR), code);
  hw.mmio.or32(dmaChanReg(ch, X100_DMA_REG.DSTAT), X100_DMA_BIT.DSTAT_QUIESCE);
}

/** Options of {@link installDmaRegisterHandlers}. */
export interface DmaRegisterHandlerOptions {
  /**
   * The handlers run the card code of boot `cardGeneration` (the card's thread): their locks
   * carry that boot's owner tag, and once a reset has started another generation, every DMA
   * register write of theirs is dropped (a card in reset writes nothing). Without it the handlers
   * are the host's.
   */
  readonly cardGeneration?: number;
}

/**
 * Clears what a reset clears of the DMA engine: every channel disabled in a new epoch (under its
 * lock, so the engine drops its work), then `DCR` and every channel register 0. The platform
 * runs it when a reset starts, and again once the reset card's thread is gone, so nothing a
 * dying card wrote survives into the next boot.
 */
export function resetDmaEngine(hw: X100Hardware, state: DmaSharedState): void {
  state.resetAll();
  hw.mmio.store32(X100_REG.DCR, 0);
  for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
    for (let r = 0; r < X100_DMA.CHAN_STRIDE; r += 4) hw.mmio.store32(dmaChanReg(ch, r), 0);
  }
}

/**
 * Installs the DMA register write handlers in this thread's {@link X100Hardware} (see the module
 * comment). `kick` wakes the engine; it is called after every write that may give it work.
 * Platforms do this for every thread that runs driver code; a bare `X100Hardware` has no DMA
 * handlers, so its DMA registers only store.
 * @throws MicError EBUSY when this thread's DMA registers already have handlers, EINVAL for a
 * `cardGeneration` that is not a non-negative integer
 */
export function installDmaRegisterHandlers(
  hw: X100Hardware,
  kick: () => void,
  options: DmaRegisterHandlerOptions = {},
): void {
  checkHardware('DMA register handlers', hw);
  if (typeof kick !== 'function') {
    throw new MicError('EINVAL', `DMA register handlers: kick ${formatValue(kick)} is not a function`);
  }
  checkObject('DMA register handler options', options);
  const mmio = hw.mmio;
  const generation = options.cardGeneration;
  if (generation !== undefined) checkInt('card generation', generation, 0, 0xffff_ffff);
  const owner = generation === undefined ? DMA_LOCK_OWNER.HOST : cardLockOwner(generation);
  const state = new DmaSharedState(hw.buffers.wires, owner, () => hw.generation);
  /** False once this thread is card code whose boot a reset ended. */
  const live = (): boolean => generation === undefined || hw.isCurrentGeneration(generation);
  const reg = (ch: number, r: number): number => dmaChanReg(ch, r);

  const enable = (ch: number): number => {
    const ring = decodeDmaRing(
      mmio.read32(reg(ch, X100_DMA_REG.DRAR_LO)),
      mmio.read32(reg(ch, X100_DMA_REG.DRAR_HI)),
    );
    if (!dmaRingUsable(hw, ring.addr, ring.entries, ch)) return X100_DMA_CHERR.RING;
    if (mmio.read32(reg(ch, X100_DMA_REG.DTPR)) >= ring.entries) return X100_DMA_CHERR.RING;
    if (mmio.read32(reg(ch, X100_DMA_REG.DHPR)) >= ring.entries) return X100_DMA_CHERR.HEAD;
    return 0;
  };

  const disable = (ch: number): void => {
    mmio.store32(reg(ch, X100_DMA_REG.DHPR), mmio.read32(reg(ch, X100_DMA_REG.DTPR)));
    mmio.store32(reg(ch, X100_DMA_REG.DCHERR), 0);
    mmio.and32(reg(ch, X100_DMA_REG.DSTAT), ~X100_DMA_BIT.DSTAT_QUIESCE >>> 0);
  };

  mmio.setWriteHandler(X100_REG.DCR, (value) => {
    if (!live()) return;
    mmio.store32(X100_REG.DCR, value);
    let changed = false;
    let failed = 0;
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      const on = ((value >>> (2 * ch + 1)) & 1) === 1;
      state.lock(ch);
      try {
        if (!live() || state.isOn(ch) === on) continue;
        changed = true;
        state.setOn(ch, on);
        state.bumpEpoch(ch);
        if (!on) {
          disable(ch);
          continue;
        }
        const code = enable(ch);
        if (code !== 0) {
          stopDmaChannel(hw, ch, code);
          failed |= 1 << ch;
        }
      } finally {
        state.unlock(ch);
      }
    }
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      if (((failed >>> ch) & 1) === 1) raiseDmaInterrupt(hw, ch, true);
    }
    if (changed) kick();
  });

  for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
    const dhpr = reg(ch, X100_DMA_REG.DHPR);
    const drarHi = reg(ch, X100_DMA_REG.DRAR_HI);
    const cherr = reg(ch, X100_DMA_REG.DCHERR);
    mmio.setWriteHandler(dhpr, (value) => {
      let failed = false;
      state.lock(ch);
      try {
        if (!live()) return;
        const previous = mmio.read32(dhpr);
        mmio.store32(dhpr, value);
        if (state.isOn(ch) && mmio.read32(cherr) === 0) {
          const entries =
            (mmio.read32(drarHi) >>> X100_DMA_BIT.DRAR_HI_SIZE_SHIFT) & X100_DMA_BIT.DRAR_HI_SIZE_MASK;
          if (value >= entries || value === previous) {
            stopDmaChannel(hw, ch, X100_DMA_CHERR.HEAD);
            failed = true;
          }
        }
      } finally {
        state.unlock(ch);
      }
      if (failed) raiseDmaInterrupt(hw, ch, true);
      else kick();
    });
    const ignore = (): void => {};
    mmio.setWriteHandler(reg(ch, X100_DMA_REG.DTPR), ignore);
    mmio.setWriteHandler(reg(ch, X100_DMA_REG.DSTAT), ignore);
    mmio.setWriteHandler(cherr, ignore);
  }
}
