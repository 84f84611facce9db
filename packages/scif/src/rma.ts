/**
 * RMA registration (`scif_rma.c`): `register` / `unregister`, and the registration protocol with
 * the peer:
 *
 * 1. `SCIF_ALLOC_REQ{p1 = pages, p2 = our window}` → the peer allocates a window descriptor and
 *    lookup tables in memory we can reach → `SCIF_ALLOC_GNT{p0 = its handle, p1 = descriptor
 *    address}` (or `SCIF_ALLOC_REJ` → `ENOMEM`);
 * 2. we write our chunk table (DMA address and page count of each contiguous chunk, 512 entries
 *    per lookup page) and the window's offset, protection and chunk count into the descriptor;
 * 3. `SCIF_REGISTER{p0 = peer endpoint, p1 = its handle, p2 = our window}` → the peer reads the
 *    table once, checks it, maps every chunk, inserts its copy into its peer list →
 *    `SCIF_REGISTER_ACK` (or `NACK` → `ENOTCONN`); when we are no longer connected we send
 *    `SCIF_FREE_VIRT` instead.
 *
 * Unregistration: `SCIF_UNREGISTER{p0 = peer's handle, p1 = our window}` → `ACK` (the peer dropped
 * its copy) or `NACK` (it is still mapped; the window stays until `SCIF_MUNMAP`).
 *
 * The window descriptor the owner allocates (this port's layout of the fields of `struct
 * scif_window` the registrant writes):
 *
 * | offset | field | written by |
 * |---|---|---|
 * | 0x00 | `magic` u64 (`SCIFEP_MAGIC`) | owner |
 * | 0x08 | `nr_pages` u64 | owner |
 * | 0x10 | `nr_lookup` u32 | owner |
 * | 0x18 | `dma_addr_lookup.offset` u64: `nr_lookup` page addresses of `dma_addr[]` pages | owner |
 * | 0x20 | `num_pages_lookup.offset` u64: `nr_lookup` page addresses of `num_pages[]` pages | owner |
 * | 0x28 | `peer_window` u64 | registrant |
 * | 0x30 | `offset` u64 | registrant |
 * | 0x38 | `prot` u32 | registrant |
 * | 0x3c | `nr_contig_chunks` u32 | registrant |
 * | 0x40 | `ep` u64 | registrant |
 *
 * Everything read from memory the other side wrote is read once and checked; a peer window's
 * chunks must be memory the link's `remap` reaches (on the host: the card's memory only), so RMA
 * never writes outside what the peer registered on its own side.
 *
 * @see drivers/misc/mic/scif/scif_rma.c
 */
import { MicError, toMicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import {
  OP,
  type OpState,
  PAGE_SIZE,
  SCIFEP,
  SCIFEP_MAGIC,
  SCIF_MAP_FIXED,
  SCIF_MAP_KERNEL,
  SCIF_MSG,
  SCIF_NR_ADDR_IN_PAGE,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_RAS_END,
} from './constants.js';
import type { ScifCore, ScifDev } from './core.js';
import { Endpt } from './endpt.js';
import {
  PendingRemote,
  RemoteWindow,
  SCIF_WINDOW,
  SelfWindow,
  type WindowChunk,
  insertWindow,
  queryWindows,
} from './rma-state.js';
import { waitWhileAlive } from './wait.js';

/** Field offsets of the window descriptor (see the module comment). */
export const SCIF_WINDOW_DESC = {
  magic: 0x00,
  nrPages: 0x08,
  nrLookup: 0x10,
  dmaAddrLookup: 0x18,
  numPagesLookup: 0x20,
  peerWindow: 0x28,
  offset: 0x30,
  prot: 0x38,
  nrContigChunks: 0x3c,
  ep: 0x40,
} as const;
/** Bytes of the window descriptor. */
export const SCIF_WINDOW_DESC_SIZE = 0x48;
/** Most pages one registration may have (4 GiB), and most registrations in flight per node. */
const MAX_WINDOW_PAGES = 1 << 20;
const MAX_PENDING_PER_NODE = 256;

function einval(msg: string, details?: Record<string, unknown>): MicError {
  return new MicError('EINVAL', msg, details ? { details } : {});
}

/**
 * `scif_verify_epd`: `ECONNRESET` when disconnected, `ENOTCONN` in any other state but
 * CONNECTED, `ENODEV` when the peer is gone.
 */
export function verifyEpd(ep: Endpt): void {
  if (ep.state === SCIFEP.DISCONNECTED) throw new MicError('ECONNRESET', 'scif peer closed the connection');
  if (ep.state !== SCIFEP.CONNECTED)
    throw new MicError('ENOTCONN', `scif endpoint is ${ep.stateName}, not connected`);
  if (!ep.peerAlive) throw new MicError('ENODEV', `scif node ${ep.remoteDev?.node} is offline`);
}

/** Checks an offset/length pair of the registered address space. */
export function checkRange(what: string, offset: number, len: number): void {
  if (!Number.isSafeInteger(len) || len <= 0 || len % PAGE_SIZE !== 0) {
    throw einval(`scif ${what} length ${String(len)} is not a positive multiple of ${PAGE_SIZE}`, { len });
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) {
    throw einval(`scif ${what} offset ${String(offset)} is not a non-negative multiple of ${PAGE_SIZE}`, {
      offset,
    });
  }
  if (offset + len > SCIF_RAS_END)
    throw einval(`scif ${what} range wraps the registered address space`, { offset, len });
}

/** Checks an RMA offset (any byte): a non-negative integer with `offset + len` in the address space. */
export function checkOffset(what: string, offset: number, len: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + len > SCIF_RAS_END) {
    throw einval(`scif ${what} offset ${String(offset)} (+${len}) is not in the registered address space`, {
      offset,
      len,
    });
  }
}

/** Maps `mems` for the peer: one chunk per memory, page-aligned. Unmaps what it did on failure. */
function mapChunks(ep: Endpt, mems: readonly Memory[]): { chunks: WindowChunk[]; unmap: () => void } {
  const ops = ep.remoteDev!.ops!;
  const chunks: WindowChunk[] = [];
  const unmap = (): void => {
    for (const c of chunks) ops.unmapSingle(c.dmaAddr, c.pages * PAGE_SIZE);
  };
  let start = 0;
  try {
    for (const mem of mems) {
      const dmaAddr = ops.mapSingle(mem);
      const pages = mem.byteLength / PAGE_SIZE;
      chunks.push({ start, pages, dmaAddr, mem });
      if (dmaAddr % PAGE_SIZE !== 0) throw einval(`scif memory at ${dmaAddr} is not page aligned`);
      start += pages;
    }
  } catch (err) {
    unmap();
    throw err;
  }
  return { chunks, unmap };
}

/**
 * `scif_register`: registers `mem` (one memory or several, each a positive multiple of 4 KiB and
 * page-aligned in the link's address space) at `offset` (`SCIF_MAP_FIXED`) or at an offset the
 * allocator picks (the hint is ignored, as in the kernel). Resolves with the offset.
 * @throws MicError EINVAL (flags, prot, lengths, alignment, wrap), EADDRINUSE (fixed and
 * overlapping), ENOMEM (peer refused), EFAULT (memory the peer cannot reach), ECONNRESET /
 * ENOTCONN / ENODEV
 */
export async function register(
  ep: Endpt,
  mem: Memory | readonly Memory[],
  offset: number,
  prot: number,
  mapFlags: number,
): Promise<number> {
  ep.checkOpen('register');
  if (!Number.isInteger(mapFlags) || (mapFlags & ~(SCIF_MAP_FIXED | SCIF_MAP_KERNEL)) !== 0) {
    throw einval(`scif register flags 0x${Number(mapFlags).toString(16)} are not FIXED|KERNEL`);
  }
  if (!Number.isInteger(prot) || (prot & ~(SCIF_PROT_READ | SCIF_PROT_WRITE)) !== 0) {
    throw einval(`scif register prot ${String(prot)} is not READ|WRITE`);
  }
  const mems: readonly Memory[] = Array.isArray(mem) ? mem : [mem as Memory];
  let len = 0;
  for (const m of mems) {
    const n = (m as Partial<Memory> | null)?.byteLength;
    if (typeof n !== 'number' || n <= 0 || n % PAGE_SIZE !== 0) {
      throw einval(`scif register memory of ${String(n)} bytes is not a positive multiple of ${PAGE_SIZE}`);
    }
    len += n;
  }
  if (len === 0) throw einval('scif register of no memory');
  if (mapFlags & SCIF_MAP_FIXED) checkRange('register', offset, len);
  else if (len > SCIF_RAS_END) throw einval('scif register length exceeds the address space');
  verifyEpd(ep);
  const rma = ep.rma;
  const core = ep.core;
  const off = mapFlags & SCIF_MAP_FIXED ? (rma.ras.reserve(offset, len), offset) : rma.ras.alloc(len);
  let mapped: ReturnType<typeof mapChunks>;
  try {
    mapped = mapChunks(ep, mems);
  } catch (err) {
    rma.ras.free(off);
    throw err;
  }
  const nrPages = len / PAGE_SIZE;
  const win = new SelfWindow(ep, off, nrPages, prot, mapped.chunks, 0);
  const handle = core.handles.add(win);
  win.handle = handle;
  win.unmapChunks = mapped.unmap;
  const undo = (): void => {
    core.handles.remove(handle);
    mapped.unmap();
    win.unmapChunks = undefined;
    rma.ras.free(off);
  };
  try {
    await allocRemote(ep, win);
    await prepRemoteWindow(ep, win);
    await sendRegister(ep, win);
  } catch (err) {
    undo();
    throw err;
  }
  win.refCount = nrPages;
  insertWindow(rma.regList, win);
  return off;
}

/** `scif_send_alloc_request` and the wait for `SCIF_ALLOC_GNT`/`REJ`. */
async function allocRemote(ep: Endpt, win: SelfWindow): Promise<void> {
  const core = ep.core;
  const dev = ep.remoteDev!;
  win.allocState = OP.IN_PROGRESS;
  const m = core.msg(SCIF_MSG.ALLOC_REQ, ep.port.port);
  m.payload[1] = win.nrPages;
  m.payload[2] = win.handle;
  await core.sendRaw(dev, m);
  const ok = await waitWhileAlive(
    ep.rmawq,
    core.clock,
    () => win.allocState !== OP.IN_PROGRESS,
    () => ep.peerAlive,
    core.t.nodeAliveTimeoutMs,
    'scif window allocation',
  );
  if (!ok) throw new MicError('ENODEV', `scif node ${dev.node} died during registration`);
  if ((win.allocState as OpState) === OP.FAILED)
    throw new MicError('ENOMEM', `scif node ${dev.node} refused a ${win.nrPages}-page window`);
}

/** `scif_prep_remote_window`: writes our chunk table into the peer's descriptor. */
async function prepRemoteWindow(ep: Endpt, win: SelfWindow): Promise<void> {
  const core = ep.core;
  const dev = ep.remoteDev!;
  const ops = dev.ops!;
  const maps: Memory[] = [];
  try {
    const desc = ops.remap(win.allocPhys, SCIF_WINDOW_DESC_SIZE);
    maps.push(desc);
    const D = SCIF_WINDOW_DESC;
    if (desc.readBigU64(D.magic) !== SCIFEP_MAGIC || desc.readU64(D.nrPages) !== win.nrPages) {
      throw new MicError(
        'EFAULT',
        `scif node ${dev.node} granted a window descriptor that does not match the request`,
      );
    }
    const nrLookup = desc.readU32(D.nrLookup);
    const chunks = win.chunks.length;
    const need = Math.ceil(chunks / SCIF_NR_ADDR_IN_PAGE);
    if (nrLookup < need || nrLookup > Math.ceil(win.nrPages / SCIF_NR_ADDR_IN_PAGE)) {
      throw new MicError('EFAULT', `scif window descriptor has ${nrLookup} lookup pages, ${need} needed`);
    }
    const dmaLookup = ops.remap(desc.readU64(D.dmaAddrLookup), nrLookup * 8);
    maps.push(dmaLookup);
    const numLookup = ops.remap(desc.readU64(D.numPagesLookup), nrLookup * 8);
    maps.push(numLookup);
    for (let j = 0, i = 0; i < chunks; j++) {
      const n = Math.min(chunks - i, SCIF_NR_ADDR_IN_PAGE);
      const dmaPage = ops.remap(dmaLookup.readU64(j * 8), n * 8);
      maps.push(dmaPage);
      const numPage = ops.remap(numLookup.readU64(j * 8), n * 8);
      maps.push(numPage);
      for (let k = 0; k < n; k++) {
        const c = win.chunks[i + k]!;
        dmaPage.writeU64(k * 8, c.dmaAddr);
        numPage.writeU64(k * 8, c.pages);
      }
      i += n;
    }
    desc.writeU64(D.peerWindow, win.handle);
    desc.writeU64(D.offset, win.offset);
    desc.writeU32(D.prot, win.prot);
    desc.writeU32(D.nrContigChunks, chunks);
    desc.writeU64(D.ep, ep.remoteEp);
  } catch (err) {
    const free = core.msg(SCIF_MSG.FREE_VIRT, ep.port.port);
    free.payload[0] = ep.remoteEp;
    free.payload[1] = win.peerWindow;
    free.payload[2] = win.handle;
    free.payload[3] = SCIF_MSG.REGISTER;
    core.post(dev, free);
    throw toMicError(err, 'EFAULT', 'scif could not write the window table to the peer');
  } finally {
    for (const m of maps) ops.unmap(m);
  }
}

/** `scif_send_scif_register`: `SCIF_REGISTER` (or `SCIF_FREE_VIRT` when no longer connected). */
async function sendRegister(ep: Endpt, win: SelfWindow): Promise<void> {
  const core = ep.core;
  const dev = ep.remoteDev!;
  const m = core.msg(SCIF_MSG.REGISTER, ep.port.port);
  m.payload[0] = ep.remoteEp;
  m.payload[1] = win.peerWindow;
  m.payload[2] = win.handle;
  if (ep.state !== SCIFEP.CONNECTED) {
    m.uop = SCIF_MSG.FREE_VIRT;
    m.payload[3] = SCIF_MSG.REGISTER;
    await core.sendRaw(dev, m);
    throw new MicError('ENOTCONN', 'scif endpoint disconnected during registration');
  }
  win.regState = OP.IN_PROGRESS;
  await core.sendRaw(dev, m);
  const ok = await waitWhileAlive(
    ep.rmawq,
    core.clock,
    () => win.regState !== OP.IN_PROGRESS,
    () => ep.peerAlive,
    core.t.nodeAliveTimeoutMs,
    'scif registration',
  );
  if (!ok) throw new MicError('ENODEV', `scif node ${dev.node} died during registration`);
  if ((win.regState as OpState) === OP.FAILED)
    throw new MicError('ENOTCONN', 'scif peer refused the registration');
}

/**
 * `scif_unregister`: unregisters the windows that exactly make up `[offset, offset + len)`.
 * @throws MicError EINVAL (lengths, alignment, wrap), ENXIO (not whole windows, or one being
 * unregistered), ECONNRESET / ENOTCONN / ENODEV
 */
export async function unregister(ep: Endpt, offset: number, len: number): Promise<void> {
  ep.checkOpen('unregister');
  checkRange('unregister', offset, len);
  verifyEpd(ep);
  const wins = queryWindows(ep.rma.regList, offset, len, 0, SCIF_WINDOW.FULL);
  let first: unknown;
  for (const w of wins) {
    try {
      await unregisterWindow(w);
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}

/** `scif_unregister_window`. */
async function unregisterWindow(w: SelfWindow): Promise<void> {
  const ep = w.ep;
  const core = ep.core;
  let failure: MicError | undefined;
  switch (w.unregState) {
    case OP.IDLE: {
      w.unregState = OP.IN_PROGRESS;
      w.refCount += 1;
      const m = core.msg(SCIF_MSG.UNREGISTER, ep.port.port);
      m.payload[0] = w.peerWindow;
      m.payload[1] = w.handle;
      try {
        await core.send(ep.remoteDev!, m);
        const ok = await waitWhileAlive(
          ep.rmawq,
          core.clock,
          () => w.unregState !== OP.IN_PROGRESS,
          () => ep.peerAlive,
          core.t.nodeAliveTimeoutMs,
          'scif unregistration',
        );
        if (!ok) {
          failure = new MicError('ENODEV', `scif node ${ep.remoteDev?.node} died during unregistration`);
          w.unregState = OP.COMPLETED;
        }
      } catch {
        // The peer is gone: nothing holds the window any more.
        w.unregState = OP.COMPLETED;
      }
      w.refCount -= 1;
      break;
    }
    case OP.IN_PROGRESS:
      throw new MicError('ENXIO', `scif window at 0x${w.offset.toString(16)} is being unregistered`);
    case OP.FAILED:
      if (!ep.peerAlive) {
        failure = new MicError('ENODEV', 'scif peer is gone');
        w.unregState = OP.COMPLETED;
      }
      break;
  }
  if (w.unregState === OP.COMPLETED && w.refCount > 0) w.refCount = Math.max(0, w.refCount - w.nrPages);
  if (w.refCount === 0) await destroySelfWindow(w);
  if (failure) throw failure;
}

/** Unlinks a self window, frees its offset, drains the endpoint's DMA and unmaps the chunks. */
async function destroySelfWindow(w: SelfWindow): Promise<void> {
  const rma = w.ep.rma;
  const at = rma.regList.indexOf(w);
  if (at >= 0) rma.regList.splice(at, 1);
  rma.ras.free(w.offset);
  w.ep.core.handles.remove(w.handle);
  rma.twRefcount++;
  try {
    await rma.drain();
    w.unmapChunks?.();
    w.unmapChunks = undefined;
  } finally {
    rma.twRefcount--;
  }
}

/** `scif_unregister_all_windows` (close). */
async function unregisterAll(ep: Endpt): Promise<void> {
  for (const w of [...ep.rma.regList]) {
    try {
      await unregisterWindow(w);
    } catch (err) {
      ep.core.log.debug('scif unregister at close failed', { error: String(err) });
    }
  }
}

/** Frees a descriptor and its tables. */
function destroyPending(dev: ScifDev, p: PendingRemote): void {
  if (!dev.pendingRemotes.delete(p)) return;
  dev.ops?.free(p.tables);
  dev.ops?.free(p.lookup);
  dev.ops?.free(p.desc);
}

/** A remote window copy goes: unlink, views unmapped, handle dropped. */
function destroyRemoteWindow(w: RemoteWindow): void {
  const list = w.ep.rma.remoteList;
  const at = list.indexOf(w);
  if (at >= 0) list.splice(at, 1);
  w.ep.core.handles.remove(w.handle);
  w.release();
}

/**
 * Reads a registration's descriptor once, checks it and maps every chunk: the peer's copy of the
 * window, or an error saying what was wrong.
 */
function readRemoteWindow(ep: Endpt, dev: ScifDev, p: PendingRemote, peerWindow: number): RemoteWindow {
  const D = SCIF_WINDOW_DESC;
  const desc = p.desc.va;
  const offset = desc.readU64(D.offset);
  const prot = desc.readU32(D.prot);
  const nrChunks = desc.readU32(D.nrContigChunks);
  const len = p.nrPages * PAGE_SIZE;
  if (!Number.isSafeInteger(offset) || offset % PAGE_SIZE !== 0 || offset + len > SCIF_RAS_END) {
    throw new MicError('EINVAL', `peer window offset ${offset} is not a page in the address space`);
  }
  if ((prot & ~(SCIF_PROT_READ | SCIF_PROT_WRITE)) !== 0)
    throw new MicError('EINVAL', `peer window prot ${prot} is invalid`);
  if (nrChunks < 1 || nrChunks > p.nrPages)
    throw new MicError('EINVAL', `peer window has ${nrChunks} chunks for ${p.nrPages} pages`);
  for (const w of ep.rma.remoteList) {
    if (w.offset < offset + len && offset < w.end)
      throw new MicError('EINVAL', 'peer window overlaps another');
  }
  const tables = p.tables.va;
  const nrLookup = Math.ceil(p.nrPages / SCIF_NR_ADDR_IN_PAGE);
  const ops = dev.ops!;
  const chunks: WindowChunk[] = [];
  const release = (): void => {
    for (const c of chunks) ops.unmap(c.mem);
  };
  try {
    let start = 0;
    for (let j = 0; j < nrChunks; j++) {
      const page = Math.floor(j / SCIF_NR_ADDR_IN_PAGE);
      const slot = (j % SCIF_NR_ADDR_IN_PAGE) * 8;
      const dmaAddr = tables.readU64(page * PAGE_SIZE + slot);
      const pages = tables.readU64((nrLookup + page) * PAGE_SIZE + slot);
      if (!Number.isSafeInteger(pages) || pages < 1 || start + pages > p.nrPages) {
        throw new MicError('EINVAL', `peer window chunk ${j} has ${pages} pages`);
      }
      if (!Number.isSafeInteger(dmaAddr) || dmaAddr % PAGE_SIZE !== 0) {
        throw new MicError('EINVAL', `peer window chunk ${j} address ${dmaAddr} is not a page`);
      }
      const mem = ops.remap(dmaAddr, pages * PAGE_SIZE);
      chunks.push({ start, pages, dmaAddr, mem });
      start += pages;
    }
    if (start !== p.nrPages)
      throw new MicError('EINVAL', `peer window chunks cover ${start} of ${p.nrPages} pages`);
  } catch (err) {
    release();
    throw err;
  }
  const w = new RemoteWindow(ep, offset, p.nrPages, prot, chunks, p.handle, peerWindow, release);
  w.refCount = p.nrPages;
  return w;
}

/** The self window named by `h` in a message from `dev`. */
function selfWindowOf(core: ScifCore, dev: ScifDev, h: number): SelfWindow | undefined {
  const w = core.handles.get(h, SelfWindow);
  return w && w.ep.remoteDev === dev ? w : undefined;
}

/** Installs the registration handlers (`scif_alloc_req` .. `scif_recv_munmap`). */
export function installRmaHandlers(core: ScifCore): void {
  core.on(SCIF_MSG.ALLOC_REQ, (dev, msg) => {
    const nrPages = msg.payload[1];
    const reply = msg.clone();
    reply.srcNode = core.nodeid;
    let p: PendingRemote | undefined;
    try {
      if (!Number.isSafeInteger(nrPages) || nrPages < 1 || nrPages > MAX_WINDOW_PAGES) {
        throw new MicError('EINVAL', `peer asked for a ${nrPages}-page window`);
      }
      if (dev.pendingRemotes.size >= MAX_PENDING_PER_NODE || !dev.ops) {
        throw new MicError('ENOMEM', 'too many scif registrations in flight');
      }
      const ops = dev.ops;
      const nrLookup = Math.ceil(nrPages / SCIF_NR_ADDR_IN_PAGE);
      const desc = ops.alloc(SCIF_WINDOW_DESC_SIZE);
      let lookup;
      let tables;
      try {
        lookup = ops.alloc(2 * nrLookup * 8);
        tables = ops.alloc(2 * nrLookup * PAGE_SIZE);
      } catch (err) {
        if (lookup) ops.free(lookup);
        ops.free(desc);
        throw err;
      }
      for (let i = 0; i < nrLookup; i++) {
        lookup.va.writeU64(i * 8, tables.dmaAddr + i * PAGE_SIZE);
        lookup.va.writeU64((nrLookup + i) * 8, tables.dmaAddr + (nrLookup + i) * PAGE_SIZE);
      }
      const D = SCIF_WINDOW_DESC;
      desc.va.writeBigU64(D.magic, SCIFEP_MAGIC);
      desc.va.writeU64(D.nrPages, nrPages);
      desc.va.writeU32(D.nrLookup, nrLookup);
      desc.va.writeU64(D.dmaAddrLookup, lookup.dmaAddr);
      desc.va.writeU64(D.numPagesLookup, lookup.dmaAddr + nrLookup * 8);
      p = new PendingRemote(nrPages, desc, lookup, tables);
      p.handle = core.handles.add(p);
      dev.pendingRemotes.add(p);
      reply.uop = SCIF_MSG.ALLOC_GNT;
      reply.payload[0] = p.handle;
      reply.payload[1] = desc.dmaAddr;
    } catch (err) {
      core.log.debug('scif window allocation refused', { node: dev.node, error: String(err) });
      reply.uop = SCIF_MSG.ALLOC_REJ;
    }
    const pending = p;
    core.send(dev, reply).catch(() => {
      if (pending) {
        core.handles.remove(pending.handle);
        destroyPending(dev, pending);
      }
    });
  });
  const allocResp = (dev: ScifDev, msg: ReturnType<ScifCore['msg']>): void => {
    const w = selfWindowOf(core, dev, msg.payload[2]);
    if (!w || w.allocState !== OP.IN_PROGRESS) return;
    w.peerWindow = msg.payload[0];
    w.allocPhys = msg.payload[1];
    w.allocState = msg.uop === SCIF_MSG.ALLOC_GNT ? OP.COMPLETED : OP.FAILED;
    w.ep.rmawq.wake();
  };
  core.on(SCIF_MSG.ALLOC_GNT, allocResp);
  core.on(SCIF_MSG.ALLOC_REJ, allocResp);
  core.on(SCIF_MSG.FREE_VIRT, (dev, msg) => {
    const p = core.handles.get(msg.payload[1], PendingRemote);
    if (!p || !dev.pendingRemotes.has(p)) return;
    core.handles.remove(p.handle);
    destroyPending(dev, p);
  });
  core.on(SCIF_MSG.REGISTER, (dev, msg) => {
    const ep = core.handles.get(msg.payload[0], Endpt);
    const p = core.handles.get(msg.payload[1], PendingRemote);
    const reply = msg.clone();
    reply.srcNode = core.nodeid;
    reply.uop = SCIF_MSG.REGISTER_NACK;
    if (p && dev.pendingRemotes.has(p)) {
      if (ep && ep.remoteDev === dev && ep.state === SCIFEP.CONNECTED) {
        try {
          const w = readRemoteWindow(ep, dev, p, msg.payload[2]);
          core.handles.replace(p.handle, w);
          insertWindow(ep.rma.remoteList, w);
          reply.uop = SCIF_MSG.REGISTER_ACK;
        } catch (err) {
          core.log.warn('scif peer window refused', { node: dev.node, error: String(err) });
          core.handles.remove(p.handle);
        }
      } else {
        core.handles.remove(p.handle);
      }
      // The page lists are read; the descriptor and its tables go either way.
      destroyPending(dev, p);
    }
    core.post(dev, reply);
  });
  const regResp = (dev: ScifDev, msg: ReturnType<ScifCore['msg']>): void => {
    const w = selfWindowOf(core, dev, msg.payload[2]);
    if (!w || w.regState !== OP.IN_PROGRESS) return;
    w.regState = msg.uop === SCIF_MSG.REGISTER_ACK ? OP.COMPLETED : OP.FAILED;
    w.ep.rmawq.wake();
  };
  core.on(SCIF_MSG.REGISTER_ACK, regResp);
  core.on(SCIF_MSG.REGISTER_NACK, regResp);
  core.on(SCIF_MSG.UNREGISTER, (dev, msg) => {
    const reply = msg.clone();
    reply.srcNode = core.nodeid;
    reply.uop = SCIF_MSG.UNREGISTER_ACK;
    const w = core.handles.get(msg.payload[0], RemoteWindow);
    if (w && w.ep.remoteDev === dev && w.peerWindow === msg.payload[1]) {
      reply.payload[0] = w.ep.remoteEp;
      w.refCount = Math.max(0, w.refCount - w.nrPages);
      w.unregState = OP.COMPLETED;
      if (w.refCount === 0) {
        const rma = w.ep.rma;
        const at = rma.remoteList.indexOf(w);
        if (at >= 0) rma.remoteList.splice(at, 1);
        rma.twRefcount++;
        core.spawn('peer window destruction', async () => {
          try {
            await rma.drain();
            core.post(dev, reply);
            destroyRemoteWindow(w);
          } finally {
            rma.twRefcount--;
          }
        });
        return;
      }
      reply.uop = SCIF_MSG.UNREGISTER_NACK;
    }
    core.post(dev, reply);
  });
  const unregResp = (dev: ScifDev, msg: ReturnType<ScifCore['msg']>): void => {
    const w = selfWindowOf(core, dev, msg.payload[1]);
    if (!w || w.unregState !== OP.IN_PROGRESS) return;
    w.unregState = msg.uop === SCIF_MSG.UNREGISTER_ACK ? OP.COMPLETED : OP.FAILED;
    w.ep.rmawq.wake();
  };
  core.on(SCIF_MSG.UNREGISTER_ACK, unregResp);
  core.on(SCIF_MSG.UNREGISTER_NACK, unregResp);
  core.on(SCIF_MSG.MUNMAP, (dev, msg) => {
    const w = selfWindowOf(core, dev, msg.payload[0]);
    if (!w || w.unregState !== OP.FAILED) return;
    w.refCount = Math.max(0, w.refCount - w.nrPages);
    if (w.refCount === 0) core.spawn('window destruction', () => destroySelfWindow(w));
  });
}

/** Wires `unregisterAll` into the endpoint's RMA state (close calls it). */
export function attachRma(ep: Endpt): void {
  ep.rma.unregisterAll = () => unregisterAll(ep);
}

/** Drops one reference of `w` held by an mmap view or `getPages`; the last sends `SCIF_MUNMAP`. */
export function putRemoteWindow(w: RemoteWindow, pages: number): void {
  w.refCount = Math.max(0, w.refCount - pages);
  if (w.refCount !== 0) return;
  const ep = w.ep;
  const core = ep.core;
  const rma = ep.rma;
  const at = rma.remoteList.indexOf(w);
  if (at >= 0) rma.remoteList.splice(at, 1);
  rma.twRefcount++;
  core.spawn('peer window unmap', async () => {
    try {
      await rma.drain();
      const m = core.msg(SCIF_MSG.MUNMAP, ep.port.port);
      m.payload[0] = w.peerWindow;
      if (ep.remoteDev) core.post(ep.remoteDev, m);
      destroyRemoteWindow(w);
    } finally {
      rma.twRefcount--;
    }
  });
}

/** Frees the window descriptors a node allocated for registrations that never finished. */
export function dropPendingRemotes(core: ScifCore, dev: ScifDev): void {
  for (const p of [...dev.pendingRemotes]) {
    core.handles.remove(p.handle);
    destroyPending(dev, p);
  }
}
