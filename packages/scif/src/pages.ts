/**
 * `scif_get_pages` / `scif_put_pages`: the addresses of the peer's registered pages, for a kernel
 * client that programs a device with them, with a reference on the window held until they are
 * put back (the peer's `unregister` waits for it: `UNREGISTER_NACK` while held).
 *
 * @see drivers/misc/mic/scif/scif_rma.c `scif_get_pages`, `scif_put_pages`
 */
import { MicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { PAGE_SIZE, SCIFEP } from './constants.js';
import type { Endpt } from './endpt.js';
import { checkRange, putRemoteWindow, verifyEpd } from './rma.js';
import { liveView } from './rma-copy.js';
import { type RemoteWindow, SCIF_WINDOW, queryWindows } from './rma-state.js';

/** What `ScifEndpoint.getPages` hands out (`struct scif_range`). */
export interface ScifRange {
  /** The endpoint's handle (`cookie`). */
  readonly cookie: number;
  /** 4 KiB pages in the range. */
  readonly nrPages: number;
  /** The window's protection (`SCIF_PROT_READ | SCIF_PROT_WRITE` bits). */
  readonly protFlags: number;
  /**
   * Per page, the address a device on this node uses for it (`phys_addr[]`): the peer's DMA
   * address, plus the card's aperture base when this is the host and the peer a card.
   */
  readonly physAddr: readonly number[];
  /**
   * Per page, the page as memory (`va[]`): only on the management node for a card's window
   * (through the aperture). Throws `ENODEV` once put back or once the node is lost.
   */
  readonly va: readonly Memory[] | undefined;
}

interface Held {
  readonly ep: Endpt;
  readonly windows: readonly RemoteWindow[];
  readonly drop: (() => void) | undefined;
  put: boolean;
}

/** Ranges handed out and not yet put back (the kernel checks `scif_range.magic`). */
const held = new WeakMap<ScifRange, Held>();

/**
 * `scif_get_pages`: the pages of `[offset, offset + len)` of the peer's address space, which must
 * lie in one remote window; adds `nrPages` references to it.
 * @throws MicError EINVAL (not page-aligned, zero length, wraps), ENXIO (no single window covers
 *   it), `scif_verify_epd` errors (ECONNRESET, ENOTCONN, ENODEV)
 */
export function getPages(ep: Endpt, offset: number, len: number): ScifRange {
  ep.checkOpen('getPages');
  checkRange('getPages', offset, len);
  verifyEpd(ep);
  const [w] = queryWindows(ep.rma.remoteList, offset, len, 0, SCIF_WINDOW.SINGLE);
  const win = w!;
  const nrPages = len / PAGE_SIZE;
  const core = ep.core;
  const dev = ep.remoteDev!;
  // On the management node a card's pages are reached through its aperture: phys_addr[] gets the
  // aperture base, and va[] exists (views that die with the node).
  const viaAperture = core.isMgmt && !core.isSelf(dev);
  const aperBase = viaAperture ? (dev.sdev?.aper?.pa ?? 0) : 0;
  const physAddr: number[] = [];
  const pages: Memory[] = [];
  for (let i = 0; i < nrPages; i++) {
    const { chunk, at } = win.locate(offset - win.offset + i * PAGE_SIZE);
    physAddr.push(chunk.dmaAddr + at + aperBase);
    if (viaAperture) pages.push(chunk.mem.window(at, PAGE_SIZE));
  }
  win.refCount += nrPages;
  const views = pages.map((p) => liveView(ep, [win], p));
  const drop = viaAperture
    ? () => {
        for (const v of views) v.drop();
      }
    : undefined;
  const range: ScifRange = Object.freeze({
    cookie: ep.handle,
    nrPages,
    protFlags: win.prot,
    physAddr: Object.freeze(physAddr),
    va: viaAperture ? Object.freeze(views.map((v) => v.mem)) : undefined,
  });
  held.set(range, { ep, windows: [win], drop, put: false });
  return range;
}

/**
 * `scif_put_pages`: drops the references of `range`; the last reference of a window the peer is
 * unregistering sends `SCIF_MUNMAP` and frees our copy.
 * @throws MicError EINVAL (not a range from `getPages`, or put already), ENOTCONN (the
 *   endpoint is neither connected nor disconnected)
 */
export function putPages(ep: Endpt, range: ScifRange): void {
  const h = typeof range === 'object' && range !== null ? held.get(range) : undefined;
  if (!h || h.put || h.ep !== ep)
    throw new MicError(
      'EINVAL',
      'scif putPages: not a range getPages of this endpoint returned (or put already)',
    );
  const st = h.ep.state;
  if (st !== SCIFEP.CONNECTED && st !== SCIFEP.DISCONNECTED)
    throw new MicError('ENOTCONN', `scif putPages on an endpoint that is ${h.ep.stateName}`);
  h.put = true;
  h.drop?.();
  for (const w of h.windows) putRemoteWindow(w, range.nrPages);
}
