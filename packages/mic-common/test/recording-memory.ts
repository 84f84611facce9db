import type { Memory } from '@mic/memory';

/** One access seen by a {@link RecordingMemory}. */
export interface Access {
  readonly kind: 'read' | 'write' | 'load' | 'store';
  readonly offset: number;
  readonly length: number;
  /** For writes and stores: the bytes written (little-endian). */
  readonly data?: Uint8Array;
}

const le = (value: number, length: number): Uint8Array =>
  Uint8Array.from({ length }, (_, i) => Math.floor(value / 2 ** (8 * i)) & 0xff);

/** A Memory that forwards to another and records every access, for ordering and bounds tests. */
export class RecordingMemory implements Memory {
  readonly accesses: Access[] = [];
  readonly #inner: Memory;

  constructor(inner: Memory) {
    this.#inner = inner;
  }

  get byteLength(): number {
    return this.#inner.byteLength;
  }
  get shared(): boolean {
    return this.#inner.shared;
  }

  #read(offset: number, length: number, kind: 'read' | 'load' = 'read'): void {
    this.accesses.push({ kind, offset, length });
  }
  #write(offset: number, length: number, value: number, kind: 'write' | 'store' = 'write'): void {
    this.accesses.push({ kind, offset, length, data: le(value, length) });
  }

  readU8(offset: number): number {
    this.#read(offset, 1);
    return this.#inner.readU8(offset);
  }
  readU16(offset: number): number {
    this.#read(offset, 2);
    return this.#inner.readU16(offset);
  }
  readU32(offset: number): number {
    this.#read(offset, 4);
    return this.#inner.readU32(offset);
  }
  readU64(offset: number): number {
    this.#read(offset, 8);
    return this.#inner.readU64(offset);
  }
  readBigU64(offset: number): bigint {
    this.#read(offset, 8);
    return this.#inner.readBigU64(offset);
  }
  writeU8(offset: number, value: number): void {
    this.#write(offset, 1, value);
    this.#inner.writeU8(offset, value);
  }
  writeU16(offset: number, value: number): void {
    this.#write(offset, 2, value);
    this.#inner.writeU16(offset, value);
  }
  writeU32(offset: number, value: number): void {
    this.#write(offset, 4, value);
    this.#inner.writeU32(offset, value);
  }
  writeU64(offset: number, value: number): void {
    this.#write(offset, 8, value);
    this.#inner.writeU64(offset, value);
  }
  writeBigU64(offset: number, value: bigint): void {
    this.accesses.push({ kind: 'write', offset, length: 8 });
    this.#inner.writeBigU64(offset, value);
  }
  loadU8(offset: number): number {
    this.#read(offset, 1, 'load');
    return this.#inner.loadU8(offset);
  }
  storeU8(offset: number, value: number): void {
    this.#write(offset, 1, value, 'store');
    this.#inner.storeU8(offset, value);
  }
  loadU16(offset: number): number {
    this.#read(offset, 2, 'load');
    return this.#inner.loadU16(offset);
  }
  storeU16(offset: number, value: number): void {
    this.#write(offset, 2, value, 'store');
    this.#inner.storeU16(offset, value);
  }
  loadU32(offset: number): number {
    this.#read(offset, 4, 'load');
    return this.#inner.loadU32(offset);
  }
  storeU32(offset: number, value: number): void {
    this.#write(offset, 4, value, 'store');
    this.#inner.storeU32(offset, value);
  }
  read(offset: number, dst: Uint8Array): void {
    this.#read(offset, dst.length);
    this.#inner.read(offset, dst);
  }
  write(offset: number, src: Uint8Array): void {
    this.accesses.push({ kind: 'write', offset, length: src.length, data: src.slice() });
    this.#inner.write(offset, src);
  }
  fill(offset: number, length: number, value: number): void {
    this.accesses.push({ kind: 'write', offset, length, data: new Uint8Array(length).fill(value) });
    this.#inner.fill(offset, length, value);
  }
  window(offset: number, length: number): Memory {
    this.#read(offset, length);
    return this.#inner.window(offset, length);
  }
}
