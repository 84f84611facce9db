import type { Memory } from '@mic/memory';
import type { X100HostView, X100Platform } from '../src/index.js';

/** A zeroed piece of host RAM for a test. */
export interface HostBuffer {
  /** Host DMA address (offset in host RAM), never in the first page. */
  readonly dmaAddr: number;
  readonly size: number;
  readonly mem: Memory;
}

const nextHostAddr = new WeakMap<X100HostView, number>();

/**
 * A zeroed piece of host RAM: the tests' own bump allocator per host view (allocating host RAM is
 * the host OS's business, `@mic/mic-host` does it; the hardware only has the RAM). Pieces are
 * never given back; the first page is never handed out.
 * @throws MicError EFAULT when host RAM is exhausted
 */
export function hostBuffer(host: X100HostView, size: number, align = 64): HostBuffer {
  const dmaAddr = Math.ceil((nextHostAddr.get(host) ?? 4096) / align) * align;
  const mem = host.dmaWindow(dmaAddr, size);
  mem.fill(0, size, 0);
  nextHostAddr.set(host, dmaAddr + size);
  return { dmaAddr, size, mem };
}

/** Where the platform tests' card code lives. */
export const ECHO_CARD = new URL('./fixtures/card-echo.mjs', import.meta.url);

/**
 * The scratchpads the tests publish their shared page's card address in, low and high 32 bits
 * (the drivers use the same pair for the device page: `MIC_DPLO_SPAD`/`MIC_DPHI_SPAD`). The
 * hardware gives scratchpads no meaning; this is the tests' convention, mirrored in card-echo.mjs.
 */
export const PAGE_SPAD = { LO: 14, HI: 15 } as const;

/** The tests' shared page: 4096 bytes, a u32 mark at 0 (stored last), the node id byte at 4. */
export const PAGE = { SIZE: 4096, MARK: 0, NODE_ID: 4 } as const;

/** The mark card-echo.mjs checks before it uses the page. */
export const PAGE_MARK = 0xc0ffee00;

/** A page of host RAM the host shares with the card code. */
export interface SharedPage {
  /** Host DMA address (offset in host RAM). */
  readonly dmaAddr: number;
  /** Card-visible address (through the SMPT). */
  readonly micAddr: number;
  readonly mem: Memory;
}

/** Writes a card address to the page scratchpads. */
export function publishPage(host: X100HostView, micAddr: number): void {
  host.writeSpad(PAGE_SPAD.LO, micAddr % 2 ** 32);
  host.writeSpad(PAGE_SPAD.HI, Math.floor(micAddr / 2 ** 32));
}

/**
 * What a host driver does before a boot, in the tests' terms: interrupts on, a page of host RAM
 * mapped for the card (IOMMU and SMPT), written (node id, then the mark) and published in the page scratchpads.
 */
export function prepareHost(platform: X100Platform, nodeId = 1): SharedPage {
  const { host } = platform;
  host.enableInterrupts();
  const buf = hostBuffer(host, PAGE.SIZE, 4096);
  const micAddr = host.mapSingle(buf.dmaAddr, PAGE.SIZE);
  buf.mem.writeU8(PAGE.NODE_ID, nodeId);
  buf.mem.storeU32(PAGE.MARK, PAGE_MARK);
  publishPage(host, micAddr);
  return { dmaAddr: buf.dmaAddr, micAddr, mem: buf.mem };
}

/** Undoes the mapping of {@link prepareHost}'s page. */
export function unmapPage(host: X100HostView, page: SharedPage): void {
  host.unmapSingle(page.micAddr, PAGE.SIZE);
}

/** Polls `check` (real time) until it holds; fails after `timeoutMs`. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets every queued microtask run (in-process interrupt delivery). */
export async function flush(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}
