/**
 * The X100 card as hardware state, shared by the host and the card: card memory (GDDR, the
 * host's aperture), host RAM, the MMIO register file (SMPT, scratchpads, interrupt and doorbell
 * registers, DMA channel registers) and a small "wires" block (card state, the card's interrupt
 * words, SMPT entry validity, the two sides' wake-up words). All of it lives in
 * SharedArrayBuffers, so a worker thread can attach to the same hardware with
 * {@link X100Hardware.attach}.
 *
 * The model needs a little-endian machine (register words are native `Atomics` words).
 *
 * @see drivers/misc/mic/host/mic_x100.c
 * @see drivers/misc/mic/card/mic_x100.c
 */
import { MicError, checkInt, checkObject, formatAddr, formatValue } from '@mic/errors';
import { BufferMemory, LITTLE_ENDIAN_HOST } from '@mic/memory';
import type { Memory } from '@mic/memory';
import { EVENT_WORD_BYTES } from '@mic/notify';
import {
  X100_APICICR_SEND,
  X100_BSP_INTERRUPT_VECTOR,
  X100_CARD_NUM_DOORBELLS,
  X100_HOST_NUM_DOORBELLS,
  X100_INTR,
  X100_MMIO_SIZE,
  X100_PCI_DEVICE_IDS,
  X100_REG,
  X100_RGCR_RESET,
  X100_SDBIC_DBREQ,
  X100_SMPT,
  X100_SPAD,
  X100_STEPPING,
  apicIcrReg,
  encodeSpad2,
  rdmasrReg,
  sdbicReg,
  smptReg,
  spadReg,
} from './constants.js';
import { DMA_LOCK_OWNER, DMA_WIRES_BYTES, DMA_WIRES_OFFSET, DmaSharedState } from './dma-state.js';
import { X100IommuTable, createIommuBuffer } from './iommu.js';
import { X100CardWindowTable, X100_CARD_WINDOWS_BYTES } from './card-windows.js';
import { InterruptLine } from './irq.js';
import { MmioRegisters } from './mmio.js';

/** What the card is doing, as the host can tell. */
export const X100_CARD_STATE = {
  /** Held in reset (`RGCR` bit 0 was written); the firmware is not ready yet. */
  RESET: 'reset',
  /** The firmware waits for an OS: `SPAD2` bit 0 is set. */
  READY: 'ready',
  /** The boot interrupt was sent; the card code is starting. */
  BOOTING: 'booting',
  /** The card code has started (its entry returned). */
  RUNNING: 'running',
  /** The card code failed to start or crashed. */
  HALTED: 'halted',
} as const;

/** One of {@link X100_CARD_STATE}. */
export type X100CardState = (typeof X100_CARD_STATE)[keyof typeof X100_CARD_STATE];

/** Word index of SMPT entry 0 in the register file. */
const SMPT_WORD = X100_REG.SMPT00 >>> 2;

const STATE_CODES: readonly X100CardState[] = ['reset', 'ready', 'booting', 'running', 'halted'];

/** Byte offsets in the wires buffer. */
const W = {
  CARD_STATE: 0,
  GENERATION: 4,
  CARD_STATUS: 8,
  CARD_ENABLE: 12,
  /** 16: unused (the card's interrupt line has no auto-clear). */
  SMPT_VALID: 20,
  HOST_WORD: 24,
  CARD_WORD: 24 + EVENT_WORD_BYTES,
  /** The DMA engine's control block (see `dma-state.ts`) follows at `DMA_WIRES_OFFSET`. */
  SIZE: DMA_WIRES_OFFSET + DMA_WIRES_BYTES,
} as const;

/** The hardware's shared memory, as handed to a worker. */
export interface X100Buffers {
  readonly cardMemory: SharedArrayBuffer;
  readonly hostRam: SharedArrayBuffer;
  readonly mmio: SharedArrayBuffer;
  readonly wires: SharedArrayBuffer;
  /** The host IOMMU's table (see `iommu.ts`): written by the host only. */
  readonly iommu: SharedArrayBuffer;
  /** The card CPU's windows on host memory (see `card-windows.ts`): written by the card only. */
  readonly cardWindows: SharedArrayBuffer;
}

/** Fixed facts of one card (all resolved, see {@link X100HardwareOptions}). */
export interface X100Config {
  readonly cardMemorySize: number;
  readonly hostRamSize: number;
  readonly bootAddr: number;
  readonly apicId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** The host's IOMMU checks the card's accesses to host memory. */
  readonly iommu: boolean;
}

/** Options of {@link X100Hardware.create}. */
export interface X100HardwareOptions {
  /** Card GDDR bytes, the aperture size (a multiple of 4096; default 64 MiB). */
  readonly cardMemorySize?: number;
  /** Host RAM bytes available for DMA buffers (a multiple of 4096; default 64 MiB). */
  readonly hostRamSize?: number;
  /**
   * Where the firmware asks for the OS image (`SPAD2` bits 31:12): 4 KiB aligned, ≤ 2 GiB and
   * inside card memory. Default: 64 MiB or a quarter of card memory, whichever is smaller.
   */
  readonly bootAddr?: number;
  /** The bootstrap processor's APIC id reported in `SPAD2` (default 0). */
  readonly apicId?: number;
  /** PCI device id, one of {@link X100_PCI_DEVICE_IDS} (default 0x2250). */
  readonly deviceId?: number;
  /** PCI revision = stepping (default C0, 0x20). */
  readonly revision?: number;
  /**
   * The host has an IOMMU (default true): the card's CPU and DMA reach only the host ranges the
   * host DMA-mapped (`X100HostView.mapSingle`, `X100Iommu`), not everything behind
   * an SMPT entry. `false` is the bare hardware: whatever a mapped 16 GiB SMPT entry covers.
   */
  readonly iommu?: boolean;
}

/** What the platform does on the two register writes that reach beyond the register file. */
export interface X100HardwareHooks {
  /** `RGCR` was written with bit 0 set. */
  readonly onReset?: () => void;
  /** `APICICR7` was sent with vector 229 while the firmware was ready. */
  readonly onBootInterrupt?: () => void;
}

const MIB = 1024 * 1024;

function checkSize(what: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 16 * 4096 || size % 4096 !== 0) {
    throw new MicError('EINVAL', `${what} ${String(size)} is not a multiple of 4096 of at least 64 KiB`, {
      details: { [what]: size },
    });
  }
}

/** Resolves and checks {@link X100HardwareOptions}. */
export function resolveX100Config(options: X100HardwareOptions = {}): X100Config {
  checkObject('hardware options', options);
  const cardMemorySize = options.cardMemorySize ?? 64 * MIB;
  const hostRamSize = options.hostRamSize ?? 64 * MIB;
  checkSize('card memory size', cardMemorySize);
  checkSize('host RAM size', hostRamSize);
  const bootAddr = options.bootAddr ?? Math.min(64 * MIB, Math.floor(cardMemorySize / 4 / 4096) * 4096);
  if (
    !Number.isSafeInteger(bootAddr) ||
    bootAddr % 4096 !== 0 ||
    bootAddr > 2 ** 31 ||
    bootAddr >= cardMemorySize
  ) {
    throw new MicError(
      'EINVAL',
      `boot address ${String(bootAddr)} is not 4 KiB aligned, ≤ 2 GiB and inside ${cardMemorySize} bytes of card memory`,
      { details: { bootAddr, cardMemorySize } },
    );
  }
  const apicId = options.apicId ?? 0;
  checkInt('APIC id', apicId, 0, 0x1ff);
  const deviceId = options.deviceId ?? 0x2250;
  checkInt('PCI device id', deviceId, 0, 0xffff);
  if (!X100_PCI_DEVICE_IDS.includes(deviceId)) {
    throw new MicError('ENODEV', `PCI device id ${formatAddr(deviceId)} is not an X100`, {
      details: { deviceId },
    });
  }
  const revision = options.revision ?? X100_STEPPING.C0;
  checkInt('PCI revision', revision, 0, 0xff);
  const iommu = options.iommu ?? true;
  if (typeof iommu !== 'boolean') {
    throw new MicError('EINVAL', `iommu ${formatValue(iommu)} is not a boolean`, { details: { iommu } });
  }
  return { cardMemorySize, hostRamSize, bootAddr, apicId, deviceId, revision, iommu };
}

function allocateShared(what: string, size: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(size);
  } catch (err) {
    throw new MicError('ENOMEM', `cannot allocate ${size} bytes of ${what}`, { cause: err });
  }
}

/** Host interrupt sources: doorbells 0–3, DMA 8–15, error 30. */
export const X100_HOST_SOURCES = (0x0f | 0xff00 | (1 << X100_INTR.HOST_ERR)) >>> 0;
/** Card interrupt sources: doorbells 0–15, DMA 16–23. */
export const X100_CARD_SOURCES = 0xffffff;

/**
 * The shared hardware state and this thread's handle on it. Create it once with
 * {@link X100Hardware.create} (power-on state: registers zero, firmware ready), hand
 * {@link buffers} and {@link config} to other threads, which {@link X100Hardware.attach}.
 * Each instance installs the register write handlers in its own thread.
 */
export class X100Hardware {
  /** The shared memory (transferable to a worker). */
  readonly buffers: X100Buffers;
  /** The card's fixed facts. */
  readonly config: X100Config;
  /** Card GDDR (the host sees it through the aperture). */
  readonly cardMemory: BufferMemory;
  /** Host RAM (the card sees it only through SMPT entries). */
  readonly hostRam: BufferMemory;
  /** The MMIO register file (BAR4), with this thread's write handlers. */
  readonly mmio: MmioRegisters;
  /**
   * The host IOMMU's table as this thread checks it: the card's accesses to host memory go
   * through {@link X100IommuTable.check} after the SMPT; faults are recorded there.
   */
  readonly iommu: X100IommuTable;
  /**
   * The windows the card's CPU holds on host memory (published by the card's thread, read by
   * the host's IOMMU when it unmaps; see `card-windows.ts`).
   */
  readonly cardWindows: X100CardWindowTable;
  /** The host's interrupt line: status `SICR0`, enable `SICE0`, auto-clear `SIAC0`. */
  readonly hostLine: InterruptLine;
  /** The card's interrupt line (status and enable in the wires block). */
  readonly cardLine: InterruptLine;
  readonly #wires: Int32Array;
  readonly #hooks: X100HardwareHooks;
  readonly #dma: DmaSharedState;
  /** The register words, for translations on hot paths. */
  readonly #regs: Uint32Array;

  /**
   * Allocates the shared memory of a new card in its power-on state: every register 0, the
   * firmware ready (`SPAD2` = ready | APIC id | boot address), card state `ready`.
   */
  static create(options: X100HardwareOptions = {}, hooks: X100HardwareHooks = {}): X100Hardware {
    const config = resolveX100Config(options);
    checkObject('hardware hooks', hooks);
    const buffers: X100Buffers = {
      cardMemory: allocateShared('card memory', config.cardMemorySize),
      hostRam: allocateShared('host RAM', config.hostRamSize),
      mmio: allocateShared('MMIO registers', X100_MMIO_SIZE),
      wires: allocateShared('hardware wires', W.SIZE),
      iommu: createIommuBuffer(),
      cardWindows: allocateShared('card windows', X100_CARD_WINDOWS_BYTES),
    };
    const hw = new X100Hardware(buffers, config, hooks);
    hw.firmwareReady();
    return hw;
  }

  /** Attaches to hardware another thread created. */
  static attach(buffers: X100Buffers, config: X100Config, hooks: X100HardwareHooks = {}): X100Hardware {
    checkObject('hardware buffers', buffers);
    checkObject('hardware config', config);
    checkObject('hardware hooks', hooks);
    for (const [k, v] of Object.entries(buffers)) {
      if (!(v instanceof SharedArrayBuffer)) {
        throw new MicError('EINVAL', `hardware buffers: ${k} ${formatValue(v)} is not a SharedArrayBuffer`);
      }
    }
    return new X100Hardware(buffers, config, hooks);
  }

  private constructor(buffers: X100Buffers, config: X100Config, hooks: X100HardwareHooks) {
    if (!LITTLE_ENDIAN_HOST) {
      throw new MicError('ENOSYS', 'the X100 model needs a little-endian machine');
    }
    this.buffers = buffers;
    this.config = config;
    this.#hooks = hooks;
    this.cardMemory = new BufferMemory(buffers.cardMemory);
    this.hostRam = new BufferMemory(buffers.hostRam);
    if (
      this.cardMemory.byteLength !== config.cardMemorySize ||
      this.hostRam.byteLength !== config.hostRamSize
    ) {
      throw new MicError('EINVAL', 'hardware buffers do not match the configured memory sizes');
    }
    this.mmio = new MmioRegisters(buffers.mmio);
    this.iommu = new X100IommuTable(buffers.iommu, config.iommu);
    this.cardWindows = new X100CardWindowTable(buffers.cardWindows);
    this.#regs = new Uint32Array(buffers.mmio);
    this.#wires = new Int32Array(buffers.wires);
    if (buffers.wires.byteLength < W.SIZE) {
      throw new MicError(
        'EINVAL',
        `hardware wires buffer of ${buffers.wires.byteLength} bytes is below ${W.SIZE}`,
      );
    }
    // Resets are the host's (the platform's): their locks carry the host's tag.
    this.#dma = new DmaSharedState(buffers.wires, DMA_LOCK_OWNER.HOST, () => this.generation);
    this.hostLine = new InterruptLine('host', {
      sab: buffers.mmio,
      status: X100_REG.SICR0,
      enable: X100_REG.SICE0,
      autoClear: X100_REG.SIAC0,
      wordSab: buffers.wires,
      wordOffset: W.HOST_WORD,
    });
    this.cardLine = new InterruptLine('card', {
      sab: buffers.wires,
      status: W.CARD_STATUS,
      enable: W.CARD_ENABLE,
      wordSab: buffers.wires,
      wordOffset: W.CARD_WORD,
    });
    this.#installWriteHandlers();
  }

  #installWriteHandlers(): void {
    const mmio = this.mmio;
    const host = this.hostLine;
    mmio.setWriteHandler(X100_REG.SICR0, (v) => host.clearPending(v));
    mmio.setWriteHandler(X100_REG.SICE0, (v) => host.setEnabled(v));
    mmio.setWriteHandler(X100_REG.SICC0, (v) => host.disable(v));
    mmio.setWriteHandler(X100_REG.SIAC0, (v) => host.setAutoClear(v));
    for (let db = 0; db < X100_INTR.CARD_NUM_SBOX_DB; db++) {
      mmio.setWriteHandler(apicIcrReg(db), (v, offset) => this.#apicIcrWrite(db, v, offset));
    }
    for (let db = X100_INTR.CARD_NUM_SBOX_DB; db < X100_CARD_NUM_DOORBELLS; db++) {
      const offset = rdmasrReg(db - X100_INTR.CARD_NUM_SBOX_DB + X100_INTR.RDMASR_IRQ_BASE);
      mmio.setWriteHandler(offset, (v) => {
        mmio.settle32(offset, v);
        this.cardLine.raise(db);
      });
    }
    for (let db = 0; db < X100_HOST_NUM_DOORBELLS; db++) {
      const offset = sdbicReg(db);
      mmio.setWriteHandler(offset, (v) => {
        mmio.settle32(offset, v & ~X100_SDBIC_DBREQ);
        if ((v & X100_SDBIC_DBREQ) !== 0) host.raise(db);
      });
    }
    mmio.setWriteHandler(X100_REG.RGCR, (v) => {
      mmio.store32(X100_REG.RGCR, v);
      if ((v & X100_RGCR_RESET) !== 0) this.#hooks.onReset?.();
    });
  }

  #apicIcrWrite(db: number, v: number, offset: number): void {
    this.mmio.settle32(offset, v & ~X100_APICICR_SEND);
    if ((v & X100_APICICR_SEND) === 0) return;
    if (
      db === 7 &&
      (v & 0xff) === X100_BSP_INTERRUPT_VECTOR &&
      this.cardState === X100_CARD_STATE.READY &&
      this.#hooks.onBootInterrupt
    ) {
      this.#hooks.onBootInterrupt();
      return;
    }
    this.cardLine.raise(db);
  }

  /** The card's state. */
  get cardState(): X100CardState {
    return STATE_CODES[Atomics.load(this.#wires, W.CARD_STATE >>> 2)] ?? X100_CARD_STATE.HALTED;
  }

  /** Sets the card's state (platform use). */
  setCardState(state: X100CardState): void {
    if (!STATE_CODES.includes(state)) {
      throw new MicError(
        'EINVAL',
        `card state ${formatValue(state)} is not one of ${STATE_CODES.join(', ')}`,
      );
    }
    Atomics.store(this.#wires, W.CARD_STATE >>> 2, STATE_CODES.indexOf(state));
  }

  /** Bumped at every boot and reset: a card view of an older generation is dead. */
  get generation(): number {
    return Atomics.load(this.#wires, W.GENERATION >>> 2);
  }

  /**
   * True while `generation` is the current one: the liveness check a card view makes on every
   * doorbell it rings or takes. A plain read (an `Atomics.load` costs more on this path): the
   * answer is a snapshot either way, since a reset may follow right after it.
   */
  isCurrentGeneration(generation: number): boolean {
    return this.#wires[W.GENERATION >>> 2] === generation;
  }

  /** Starts a new generation (platform use). @returns the new generation */
  bumpGeneration(): number {
    return Atomics.add(this.#wires, W.GENERATION >>> 2, 1) + 1;
  }

  /** SMPT entries the host has mapped (bit i = entry i has a non-zero reference count). */
  get smptValidMask(): number {
    return Atomics.load(this.#wires, W.SMPT_VALID >>> 2) >>> 0;
  }

  /** Marks SMPT entry `i` mapped or unmapped (the host's SMPT bookkeeping calls this). */
  setSmptValid(i: number, valid: boolean): void {
    checkInt('SMPT entry', i, 0, X100_SMPT.NUM_REG - 1);
    if (valid) Atomics.or(this.#wires, W.SMPT_VALID >>> 2, 1 << i);
    else Atomics.and(this.#wires, W.SMPT_VALID >>> 2, ~(1 << i));
  }

  /** Raises host interrupt source `src` (for hardware models such as a DMA engine). */
  raiseHostInterrupt(src: number): void {
    checkInt('host interrupt source', src, 0, 31);
    this.hostLine.raise(src);
  }

  /** Raises card interrupt source `src` (for hardware models such as a DMA engine). */
  raiseCardInterrupt(src: number): void {
    checkInt('card interrupt source', src, 0, 31);
    this.cardLine.raise(src);
  }

  /**
   * Translates a card address in the SMPT window into a host-physical address (a host DMA
   * address), checking that every SMPT entry the range touches is mapped, that the entries are
   * contiguous in host memory and that the range lies in host RAM.
   * @throws MicError EFAULT otherwise
   * @see drivers/misc/mic/host/mic_smpt.c
   */
  smptTranslate(micAddr: number, length: number): number {
    const { BASE, PAGE_SIZE, NUM_REG } = X100_SMPT;
    if (!Number.isSafeInteger(micAddr) || !Number.isSafeInteger(length) || length < 0) {
      throw new MicError(
        'EINVAL',
        `card range ${String(micAddr)} +${String(length)} is not a pair of integers`,
      );
    }
    const hex = micAddr.toString(16);
    const end = BASE + NUM_REG * PAGE_SIZE;
    // A range starts inside the window, also an empty one: the end of the window is outside.
    if (micAddr < BASE || micAddr >= end || micAddr + length > end) {
      throw new MicError(
        'EFAULT',
        `card address 0x${hex} +${length} is outside the SMPT window [0x${BASE.toString(16)}, +512 GiB)`,
        { details: { micAddr, length } },
      );
    }
    const first = Math.floor((micAddr - BASE) / PAGE_SIZE);
    const last = length === 0 ? first : Math.floor((micAddr + length - 1 - BASE) / PAGE_SIZE);
    const valid = this.smptValidMask;
    const firstBase = this.#smptEntryAddr(first);
    for (let i = first; i <= last; i++) {
      if (((valid >>> i) & 1) === 0) {
        throw new MicError('EFAULT', `card address 0x${hex} is not mapped by any SMPT entry (entry ${i})`, {
          details: { micAddr, length, entry: i },
        });
      }
      if (this.#smptEntryAddr(i) !== firstBase + (i - first) * PAGE_SIZE) {
        throw new MicError(
          'EFAULT',
          `card range 0x${hex} +${length} spans SMPT entries that are not contiguous`,
          {
            details: { micAddr, length, entry: i },
          },
        );
      }
    }
    const hostAddr = firstBase + ((micAddr - BASE) % PAGE_SIZE);
    if (hostAddr + length > this.config.hostRamSize) {
      throw new MicError(
        'EFAULT',
        `card address 0x${hex} maps to host address 0x${hostAddr.toString(16)} +${length}, beyond ${this.config.hostRamSize} bytes of host RAM`,
        { details: { micAddr, length, hostAddr } },
      );
    }
    return hostAddr;
  }

  /**
   * {@link smptTranslate} without exceptions, for hardware models on a hot path (a DMA engine):
   * the host-physical address, or -1 when the range is not a pair of safe integers, leaves the
   * SMPT window, touches an unmapped entry, spans entries that are not contiguous or leaves host
   * RAM.
   */
  smptResolve(micAddr: number, length: number): number {
    const { BASE, PAGE_SIZE, NUM_REG } = X100_SMPT;
    if (!Number.isSafeInteger(micAddr) || !Number.isSafeInteger(length) || length < 0) return -1;
    const rel = micAddr - BASE;
    // A range starts inside the window, also an empty one: the end of the window is outside.
    if (rel < 0 || rel >= NUM_REG * PAGE_SIZE || rel + length > NUM_REG * PAGE_SIZE) return -1;
    const first = Math.floor(rel / PAGE_SIZE);
    const last = length === 0 ? first : Math.floor((rel + length - 1) / PAGE_SIZE);
    const valid = this.smptValidMask;
    const regs = this.#regs;
    const page0 = Atomics.load(regs, SMPT_WORD + first) >>> 2;
    for (let i = first; i <= last; i++) {
      if (((valid >>> i) & 1) === 0) return -1;
      if (i !== first && Atomics.load(regs, SMPT_WORD + i) >>> 2 !== page0 + (i - first)) return -1;
    }
    const hostAddr = page0 * PAGE_SIZE + (rel - first * PAGE_SIZE);
    return hostAddr + length > this.config.hostRamSize ? -1 : hostAddr;
  }

  #smptEntryAddr(i: number): number {
    return (this.mmio.read32(smptReg(i)) >>> 2) * X100_SMPT.PAGE_SIZE;
  }

  /**
   * A window of what a card physical address reaches: card memory below its size, host RAM
   * through the SMPT in the system window (see {@link smptTranslate}). For hardware models that
   * take card addresses (a DMA engine).
   * @throws MicError EFAULT for an address that reaches nothing
   */
  cardAddressWindow(addr: number, length: number): Memory {
    if (Number.isSafeInteger(addr) && addr >= 0 && addr < X100_SMPT.BASE) {
      if (!Number.isSafeInteger(length) || length < 0 || addr + length > this.config.cardMemorySize) {
        throw new MicError(
          'EFAULT',
          `card address 0x${addr.toString(16)} +${String(length)} is outside ${this.config.cardMemorySize} bytes of card memory`,
          { details: { addr, length } },
        );
      }
      return this.cardMemory.window(addr, length);
    }
    return this.hostRam.window(this.hostTranslate(addr, length), length);
  }

  /**
   * What an access of the card's CPU to host memory reaches: {@link smptTranslate}, then the
   * host's IOMMU (when on), which must have `[hostAddr, +length)` inside one range the host
   * DMA-mapped; a refusal is an IOMMU fault (recorded and logged, see `iommu.ts`).
   * @returns the host-physical address
   * @throws MicError EFAULT when the SMPT or the IOMMU refuses the range
   */
  hostTranslate(micAddr: number, length: number): number {
    const hostAddr = this.smptTranslate(micAddr, length);
    if (!this.iommu.check(-1, micAddr, hostAddr, length)) {
      throw new MicError(
        'EFAULT',
        `card address 0x${micAddr.toString(16)} +${length} maps to host address 0x${hostAddr.toString(16)}, which the host did not DMA-map (IOMMU fault)`,
        { details: { micAddr, length, hostAddr } },
      );
    }
    return hostAddr;
  }

  /** Sets `SPAD2` to what the firmware reports when it waits for an OS, and the state to `ready`. */
  firmwareReady(): void {
    const { bootAddr, apicId } = this.config;
    this.mmio.store32(spadReg(X100_SPAD.DOWNLOAD_INFO), encodeSpad2({ ready: true, apicId, bootAddr }));
    this.setCardState(X100_CARD_STATE.READY);
  }

  /**
   * What a reset does to the registers: every MMIO register (SMPT, scratchpads, interrupt
   * enables, DMA channels) and the card's interrupt words become 0; every DMA channel is
   * disabled in a new epoch, so the engine drops what it was doing.
   */
  clearRegisters(): void {
    this.#dma.resetAll();
    this.mmio.clear();
    this.hostLine.reset();
    this.cardLine.reset();
  }
}

/** Throws EINVAL naming `what` unless `hw` is an {@link X100Hardware}. */
export function checkHardware(what: string, hw: unknown): asserts hw is X100Hardware {
  if (!(hw instanceof X100Hardware)) {
    throw new MicError('EINVAL', `${what}: hardware ${formatValue(hw)} is not an X100Hardware`);
  }
}
