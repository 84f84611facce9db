/**
 * RMA transfers (`scif_dma.c`): `readfrom` / `writeto` / `vreadfrom` / `vwriteto`, and `mmap` of
 * a peer window.
 *
 * Engine choice, as `scif_rma_copy`:
 *
 * | condition | path |
 * |---|---|
 * | `SCIF_RMA_USECPU`, a loopback endpoint, no copy-capable DMA channel, or a `v*` buffer | CPU copy |
 * | both addresses at the same offset within a 64-byte line | CPU head up to the line, DMA body, CPU tail |
 * | different offsets within the line | CPU copy (Linux bounces through a buffer and DMA) |
 *
 * DMA transfers are asynchronous unless `SCIF_RMA_SYNC` (wait for the channel) or
 * `SCIF_RMA_ORDERED` (the last byte becomes visible last: the DMA part is drained before the CPU
 * tail, which writes its last byte last). Use fences to wait for asynchronous ones.
 *
 * @see drivers/misc/mic/scif/scif_dma.c
 */
import { MicError, toMicError } from '@mic/errors';
import { asBufferMemory, type Memory } from '@mic/memory';
import { napPoll } from '@mic/notify';
import {
  DMA_PREP_INTERRUPT,
  L1_CACHE_BYTES,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_RMA_ORDERED,
  SCIF_RMA_SYNC,
  SCIF_RMA_USECACHE,
  SCIF_RMA_USECPU,
} from './constants.js';
import type { Endpt } from './endpt.js';
import { checkOffset, putRemoteWindow, verifyEpd } from './rma.js';
import { type RemoteWindow, SCIF_WINDOW, type ScifDmaChan, type Window, queryWindows } from './rma-state.js';
import type { ScifMapping } from './scif.js';

const ALL_RMA_FLAGS = SCIF_RMA_USECPU | SCIF_RMA_USECACHE | SCIF_RMA_SYNC | SCIF_RMA_ORDERED;

/** The local side of a transfer: our registered address space, or a plain buffer (`v*`). */
export type RmaLocal =
  { readonly kind: 'ras'; readonly offset: number } | { readonly kind: 'buf'; readonly buf: Uint8Array };

/** A piece of a range that lies in one contiguous chunk of one window. */
interface Run {
  readonly mem: Memory;
  readonly at: number;
  readonly dmaAddr: number;
  readonly len: number;
}

/** The contiguous runs of `[offset, offset + len)` over `wins` (`scif_off_to_dma_addr` walks). */
export function* runs(wins: readonly Window[], offset: number, len: number): Generator<Run> {
  let p = offset;
  const end = offset + len;
  let i = 0;
  while (p < end) {
    let w = wins[i]!;
    while (p >= w.end) w = wins[++i]!;
    const { chunk, at } = w.locate(p - w.offset);
    const n = Math.min(end - p, chunk.pages * 4096 - at, w.end - p);
    yield { mem: chunk.mem, at, dmaAddr: chunk.dmaAddr + at, len: n };
    p += n;
  }
}

/** Copies `n` bytes from `src` to `dst`; with `ordered`, the last byte is written last. */
function cpuCopy(dst: Uint8Array, src: Uint8Array, ordered: boolean): void {
  if (!ordered || dst.length < 2) {
    dst.set(src);
    return;
  }
  const n = dst.length;
  dst.set(src.subarray(0, n - 1));
  // Everything before it is in memory once the last byte is (Atomics on shared memory order it).
  dst[n - 1] = src[n - 1]!;
}

/** Checks RMA flags (`scif_rma_copy`'s flag test). */
function checkFlags(flags: number): void {
  if (!Number.isInteger(flags) || (flags & ~ALL_RMA_FLAGS) !== 0) {
    throw new MicError(
      'EINVAL',
      `scif RMA flags 0x${Number(flags).toString(16)} are not USECPU|USECACHE|SYNC|ORDERED`,
    );
  }
}

/**
 * `scif_rma_copy`: `len` bytes between the local side and the peer's window at `roffset`
 * (`toRemote`: local → peer). Resolves when the copy is issued (DMA) or done (CPU, `SYNC`).
 */
export async function rmaCopy(
  ep: Endpt,
  local: RmaLocal,
  len: number | undefined,
  roffset: number,
  flags: number,
  toRemote: boolean,
): Promise<void> {
  ep.checkOpen(toRemote ? 'writeto' : 'readfrom');
  checkFlags(flags);
  if (local.kind === 'buf' && !(local.buf instanceof Uint8Array)) {
    throw new MicError('EINVAL', 'scif vreadfrom/vwriteto needs a Uint8Array');
  }
  if (len === undefined || !Number.isSafeInteger(len) || len <= 0) {
    throw new MicError('EINVAL', `scif RMA length ${String(len)} is not a positive integer`);
  }
  checkOffset('RMA remote', roffset, len);
  if (local.kind === 'ras') checkOffset('RMA local', local.offset, len);
  verifyEpd(ep);
  const rma = ep.rma;
  const remote = queryWindows(
    rma.remoteList,
    roffset,
    len,
    toRemote ? SCIF_PROT_WRITE : SCIF_PROT_READ,
    SCIF_WINDOW.PARTIAL,
  );
  const ordered = (flags & SCIF_RMA_ORDERED) !== 0;
  if (local.kind === 'buf') {
    let done = 0;
    const rs = [...runs(remote, roffset, len)];
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      const peer = asBufferMemory(r.mem, 'scif RMA window').bytes(r.at, r.len);
      const mine = local.buf.subarray(done, done + r.len);
      if (toRemote) cpuCopy(peer, mine, ordered && i === rs.length - 1);
      else cpuCopy(mine, peer, ordered && i === rs.length - 1);
      done += r.len;
    }
    return;
  }
  const mine = queryWindows(
    rma.regList,
    local.offset,
    len,
    toRemote ? SCIF_PROT_READ : SCIF_PROT_WRITE,
    SCIF_WINDOW.PARTIAL,
  );
  const chan = flags & SCIF_RMA_USECPU || ep.remoteDev?.ops?.loopback ? undefined : rma.dmaChan;
  // Pair the two sides' runs into pieces contiguous on both.
  const pieces: { src: Run; dst: Run }[] = [];
  const li = runs(mine, local.offset, len);
  const ri = runs(remote, roffset, len);
  let l = li.next();
  let r = ri.next();
  let lOff = 0;
  let rOff = 0;
  while (!l.done && !r.done) {
    const n = Math.min(l.value.len - lOff, r.value.len - rOff);
    const a: Run = { mem: l.value.mem, at: l.value.at + lOff, dmaAddr: l.value.dmaAddr + lOff, len: n };
    const b: Run = { mem: r.value.mem, at: r.value.at + rOff, dmaAddr: r.value.dmaAddr + rOff, len: n };
    pieces.push(toRemote ? { src: a, dst: b } : { src: b, dst: a });
    lOff += n;
    rOff += n;
    if (lOff === l.value.len) {
      l = li.next();
      lOff = 0;
    }
    if (rOff === r.value.len) {
      r = ri.next();
      rOff = 0;
    }
  }
  const align = chan ? 2 ** chan.copyAlign : L1_CACHE_BYTES;
  let cookie = 0;
  const cpuTails: { src: Run; dst: Run }[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const { src, dst } = pieces[i]!;
    const last = i === pieces.length - 1;
    if (!chan || src.dmaAddr % align !== dst.dmaAddr % align || src.len < align) {
      if (cookie !== 0 || (last && ordered)) cpuTails.push({ src, dst });
      else
        cpuCopy(
          asBufferMemory(dst.mem, 'scif RMA window').bytes(dst.at, src.len),
          asBufferMemory(src.mem, 'scif RMA window').bytes(src.at, src.len),
          false,
        );
      continue;
    }
    const head = (align - (src.dmaAddr % align)) % align;
    const body = Math.floor((src.len - head) / align) * align;
    const tail = src.len - head - body;
    if (head > 0)
      cpuCopy(
        asBufferMemory(dst.mem, 'scif RMA window').bytes(dst.at, head),
        asBufferMemory(src.mem, 'scif RMA window').bytes(src.at, head),
        false,
      );
    try {
      cookie = chan.prepMemcpy(dst.dmaAddr + head, src.dmaAddr + head, body).submit();
    } catch (err) {
      throw toMicError(err, 'EIO', 'scif RMA DMA descriptor not accepted');
    }
    if (tail > 0) {
      cpuTails.push({
        src: { ...src, at: src.at + head + body, dmaAddr: src.dmaAddr + head + body, len: tail },
        dst: { ...dst, at: dst.at + head + body, dmaAddr: dst.dmaAddr + head + body, len: tail },
      });
    }
  }
  if (chan && cookie !== 0) {
    chan.issuePending();
    rma.lastCookie = cookie;
  }
  const finish = (): void => {
    for (let i = 0; i < cpuTails.length; i++) {
      const { src, dst } = cpuTails[i]!;
      cpuCopy(
        asBufferMemory(dst.mem, 'scif RMA window').bytes(dst.at, src.len),
        asBufferMemory(src.mem, 'scif RMA window').bytes(src.at, src.len),
        ordered && i === cpuTails.length - 1,
      );
    }
  };
  if (!chan || cookie === 0) {
    finish();
    return;
  }
  const timeoutMs = ep.core.t.nodeAliveTimeoutMs;
  if (flags & (SCIF_RMA_SYNC | SCIF_RMA_ORDERED) || cpuTails.length > 0) {
    if (!(flags & (SCIF_RMA_SYNC | SCIF_RMA_ORDERED))) {
      // Tails after an asynchronous body: written in the background once the body is done, so a
      // fence sees them too. Nobody polls for it: the completion interrupt wakes the wait.
      rma.track(drainIntr(chan, cookie, timeoutMs).then(finish));
      return;
    }
    const st = pollStatus(chan, cookie, len);
    if (st === undefined) await drainIntr(chan, cookie, timeoutMs);
    else checkStatus(st, cookie);
    finish();
  }
}

/**
 * How long a synchronous RMA polls its DMA completion before it sleeps until the completion
 * interrupt: at least {@link SYNC_POLL_MIN_MS} (the engine thread may have to wake up first), plus
 * the copy at {@link SYNC_POLL_BYTES_PER_MS}, at most {@link SYNC_POLL_MAX_MS} (the event loop is
 * held while polling; a longer copy pays one wake-up, small against its own time).
 */
const SYNC_POLL_MIN_MS = 0.25;
const SYNC_POLL_MAX_MS = 1;
/** The copy rate the poll budget assumes (bytes per ms: 2 GB/s, below the engine's). */
const SYNC_POLL_BYTES_PER_MS = 2e6;

/**
 * How long a synchronous RMA spins before it polls with naps in between: {@link SYNC_SPIN_MIN_MS}
 * plus the copy at {@link SYNC_SPIN_BYTES_PER_MS} (when the engine thread runs on another CPU, a
 * copy is done within it and seen at once).
 */
const SYNC_SPIN_MIN_MS = 0.05;
/** The copy rate the spin assumes (bytes per ms: 4 GB/s, the engine's on a hot cache). */
const SYNC_SPIN_BYTES_PER_MS = 4e6;

/**
 * `scif_drain_dma_poll`'s busy wait (`dma_sync_wait`), bounded (see {@link SYNC_POLL_MIN_MS}):
 * polls the channel's status of `cookie`, so a copy that completes soon is seen within
 * microseconds instead of after a sleep. Returns the final status, or undefined while the copy is
 * still in progress (or the channel has no status query): the caller then sleeps. The budget is
 * real time, not the injected clock's: a virtual clock stands still inside a synchronous loop.
 *
 * Past the time the copy should take ({@link SYNC_SPIN_MIN_MS}), the polls are spaced by short
 * naps (`@mic/notify`'s `napPoll`): when the engine's thread shares this thread's CPU (a busy
 * 2-vCPU machine), a plain spin keeps it from running until the scheduler preempts the spinner,
 * and every copy then costs the whole budget, a sleep and the interrupt's wake-up (~0.8 ms for
 * 64 KiB measured); a nap gives it the CPU.
 */
function pollStatus(chan: ScifDmaChan, cookie: number, len: number): string | undefined {
  const status = chan.txStatus?.bind(chan);
  if (!status) return undefined;
  const budgetMs = Math.min(SYNC_POLL_MAX_MS, SYNC_POLL_MIN_MS + len / SYNC_POLL_BYTES_PER_MS);
  const spinMs = Math.min(budgetMs, SYNC_SPIN_MIN_MS + len / SYNC_SPIN_BYTES_PER_MS);
  let st = 'in-progress';
  const done = napPoll(() => (st = status(cookie)) !== 'in-progress', budgetMs * 1e6, {
    spinNs: spinMs * 1e6,
  });
  return done ? st : undefined;
}

/**
 * `scif_drain_dma_intr`: an interrupting descriptor after `cookie` (`DMA_PREP_INTERRUPT`, so the
 * channel's waiter is woken by the completion interrupt, not by its timer), then the channel's
 * wait for `cookie`, at most `timeoutMs`.
 * @throws MicError EIO when the DMA ended in error, ETIMEDOUT when it did not end in time
 */
async function drainIntr(chan: ScifDmaChan, cookie: number, timeoutMs: number): Promise<void> {
  try {
    chan.prepMemcpy(0, 0, 0, DMA_PREP_INTERRUPT).submit();
    chan.issuePending();
  } catch {
    // No room for the interrupting descriptor (a full ring): the wait below still ends, on the
    // channel's own timed polls, and reports what the channel says of `cookie`.
  }
  checkStatus(await chan.syncWait(cookie, { timeoutMs }), cookie);
}

function checkStatus(st: string, cookie: number): void {
  if (st === 'in-progress')
    throw new MicError('ETIMEDOUT', `scif RMA DMA cookie ${cookie} did not complete in time`, {
      details: { cookie },
    });
  if (st !== 'complete') throw new MicError('EIO', `scif RMA DMA ended ${st}`, { details: { cookie } });
}

/** A window range checked for `mmap`. */
export function mmap(ep: Endpt, roffset: number, len: number, prot: number): ScifMapping {
  ep.checkOpen('mmap');
  if (!Number.isInteger(prot) || (prot & ~(SCIF_PROT_READ | SCIF_PROT_WRITE)) !== 0) {
    throw new MicError('EINVAL', `scif mmap prot ${String(prot)} is not READ|WRITE`);
  }
  if (!Number.isSafeInteger(len) || len <= 0)
    throw new MicError('EINVAL', `scif mmap length ${String(len)} is not positive`);
  checkOffset('mmap', roffset, len);
  verifyEpd(ep);
  const wins = queryWindows(ep.rma.remoteList, roffset, len, prot, SCIF_WINDOW.PARTIAL);
  const rs = [...runs(wins, roffset, len)];
  if (rs.length !== 1) {
    throw new MicError(
      'EINVAL',
      `scif mmap of [0x${roffset.toString(16)}, +${len}) spans ${rs.length} chunks; map one at a time`,
    );
  }
  const run = rs[0]!;
  for (const w of wins) w.refCount += 1;
  const live = liveView(ep, wins, run.mem.window(run.at, len));
  return {
    mem: live.mem,
    get valid() {
      return live.valid();
    },
    unmap: () => {
      if (!live.valid()) return;
      live.drop();
      for (const w of wins) putRemoteWindow(w, 1);
    },
  };
}

/**
 * `target` as memory that throws `ENODEV` once dropped or once the node is lost (the endpoint's
 * views are invalidated then, as `zap_vma_ptes` unmaps a vma). The caller holds the windows'
 * references and puts them after {@link drop}.
 */
export function liveView(
  ep: Endpt,
  windows: readonly RemoteWindow[],
  target: Memory,
): { mem: Memory; valid(): boolean; drop(): void } {
  let valid = true;
  const view = {
    invalidate: () => {
      valid = false;
    },
    windows,
  };
  ep.rma.views.add(view);
  const mem = new Proxy(target, {
    get(t, key) {
      if (!valid) throw new MicError('ENODEV', 'scif mapping is gone (unmapped, or its node was lost)');
      const v = Reflect.get(t, key, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  return {
    mem,
    valid: () => valid,
    drop: () => {
      valid = false;
      ep.rma.views.delete(view);
    },
  };
}
