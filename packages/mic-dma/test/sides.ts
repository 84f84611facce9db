// Shared pieces of the x100 platform tests: a region of memory on each side, the random transfer
// model and its check against Uint8Array.set.
import { expect } from '@jest/globals';
import fc from 'fast-check';
import { readBytes, type Memory } from '@mic/memory';
import { DMA_PREP } from '../src/index.js';
import type { Transfer, TransferRun } from './fixtures/transfers.mjs';
import { MIB } from './rigs.js';

/** Bytes of the test region on each side. */
export const REGION = 2 * MIB;

/** A region of memory: its DMA address and the bytes as the host CPU sees them. */
export interface Region {
  readonly addr: number;
  readonly mem: Memory;
}

export type Direction = 'h2c' | 'c2h' | 'c2c';

/** A transfer as the model sees it: offsets in the two regions. */
export interface ModelTransfer {
  readonly dir: Direction;
  readonly src: number;
  readonly dst: number;
  readonly len: number;
  readonly flags: number;
}

const FLAGS = [0, DMA_PREP.FENCE, DMA_PREP.INTERRUPT, DMA_PREP.FENCE | DMA_PREP.INTERRUPT] as const;

/** Random transfers: mostly aligned, some misaligned or empty; some longer than a descriptor. */
export function transferArb(): fc.Arbitrary<ModelTransfer> {
  const len = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 64 }).map((u) => u * 64) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 4096 }).map((u) => u * 64) },
    { weight: 1, arbitrary: fc.integer({ min: 8192, max: 19_000 }).map((u) => u * 64) },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, 63, 100, 4095) },
  );
  const misalign = fc.oneof(
    { weight: 9, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 63 }) },
  );
  return fc
    .record({
      dir: fc.constantFrom<Direction>('h2c', 'c2h', 'c2c'),
      len,
      srcFrac: fc.double({ min: 0, max: 1, noNaN: true }),
      dstFrac: fc.double({ min: 0, max: 1, noNaN: true }),
      srcMis: misalign,
      dstMis: misalign,
      flags: fc.constantFrom(...FLAGS),
    })
    .map((r) => {
      const room = REGION - r.len - 64;
      const at = (frac: number, mis: number) => Math.floor((frac * room) / 64) * 64 + mis;
      return {
        dir: r.dir,
        len: r.len,
        src: at(r.srcFrac, r.srcMis),
        dst: at(r.dstFrac, r.dstMis),
        flags: r.flags,
      };
    })
    .filter((t) => t.dir !== 'c2c' || t.src + t.len <= t.dst || t.dst + t.len <= t.src);
}

/** True when the driver must refuse `t` (EINVAL); an empty transfer's addresses are not used. */
export function invalid(t: ModelTransfer): boolean {
  if (t.len % 64 !== 0) return true;
  if (t.len === 0) return t.flags === 0;
  return t.src % 64 !== 0 || t.dst % 64 !== 0;
}

/** The DMA-address form of `t` over the two regions. */
export function toTransfer(t: ModelTransfer, host: Region, card: Region): Transfer {
  const src = t.dir === 'h2c' ? host.addr : card.addr;
  const dst = t.dir === 'c2h' ? host.addr : card.addr;
  return { src: src + t.src, dst: dst + t.dst, len: t.len, flags: t.flags };
}

/**
 * Snapshot of both regions, to which `apply` plays the transfers with `Uint8Array.set`, and
 * `check` compares the memory against.
 */
export class Shadow {
  readonly host: Uint8Array;
  readonly card: Uint8Array;

  constructor(host: Region, card: Region) {
    this.host = readBytes(host.mem, 0, REGION);
    this.card = readBytes(card.mem, 0, REGION);
  }

  apply(t: ModelTransfer): void {
    if (invalid(t)) return;
    const from = t.dir === 'h2c' ? this.host : this.card;
    const to = t.dir === 'c2h' ? this.host : this.card;
    to.set(from.subarray(t.src, t.src + t.len), t.dst);
  }

  check(host: Region, card: Region): void {
    expect(Buffer.compare(readBytes(host.mem, 0, REGION), this.host)).toBe(0);
    expect(Buffer.compare(readBytes(card.mem, 0, REGION), this.card)).toBe(0);
  }
}

/** Checks a run: refused preps are exactly the invalid ones, callbacks in cookie order, all complete. */
export function checkRun(transfers: readonly ModelTransfer[], run: TransferRun): void {
  const cookies: number[] = [];
  transfers.forEach((t, i) => {
    const r = run.results[i]!;
    if (invalid(t)) {
      expect(r).toEqual({ error: 'EINVAL' });
      expect(run.statuses[i]).toBe('none');
    } else {
      expect('cookie' in r).toBe(true);
      if ('cookie' in r) cookies.push(r.cookie);
      expect(run.statuses[i]).toBe('complete');
    }
  });
  for (let i = 1; i < cookies.length; i++) expect(cookies[i]).toBe(cookies[i - 1]! + 1);
  expect(run.final).toBe(cookies.length > 0 ? 'complete' : 'none');
  expect(run.order).toEqual(cookies.map((c) => [c, 'complete']));
}

/** Fills a region with bytes that differ per position and seed. */
export function fillRegion(r: Region, seed: number): void {
  const bytes = new Uint8Array(REGION);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x;
    bytes[i + 1] = x >>> 8;
    bytes[i + 2] = x >>> 16;
    bytes[i + 3] = x >>> 24;
  }
  r.mem.write(0, bytes);
}
