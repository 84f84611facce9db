/**
 * The node queue-pair message (`struct scifmsg`, packed, 44 bytes):
 *
 * | offset | field |
 * |---|---|
 * | 0 | `src.node` u16, `src.port` u16 |
 * | 4 | `dst.node` u16, `dst.port` u16 |
 * | 8 | `uop` u32 |
 * | 12 | `payload[4]` u64 |
 *
 * All little-endian. Endpoint, window and request pointers travel in the payload as opaque 64-bit
 * handles (see `HandleTable`).
 *
 * @see drivers/misc/mic/scif/scif_nodeqp.h `struct scifmsg`
 */
import { MicError } from '@mic/errors';

/** `sizeof(struct scifmsg)`. */
export const SCIF_MSG_SIZE = 44;

/** A SCIF port address (`struct scif_port_id`). */
export interface ScifPortId {
  readonly node: number;
  readonly port: number;
}

const TWO32 = 4294967296;
const TWO64 = 18446744073709551616;
const U64_MAX = (1n << 64n) - 1n;

/**
 * A decoded or outgoing `scifmsg`. Payload words are numbers (exact below 2^53; a larger u64 decodes
 * to a number of at least 2^53, which every range check rejects); {@link payloadBig} reads a word
 * exactly (a fence signal's value).
 */
export class ScifMsg {
  srcNode = 0;
  srcPort = 0;
  dstNode = 0;
  dstPort = 0;
  uop = 0;
  readonly payload: [number, number, number, number] = [0, 0, 0, 0];
  /** Exact payload words where a u64 does not fit a number (outgoing), or the decoded ones. */
  readonly big: (bigint | undefined)[] = [undefined, undefined, undefined, undefined];

  constructor(uop = 0) {
    this.uop = uop;
  }

  /** A copy (handlers reply by editing one). */
  clone(): ScifMsg {
    const m = new ScifMsg(this.uop);
    m.srcNode = this.srcNode;
    m.srcPort = this.srcPort;
    m.dstNode = this.dstNode;
    m.dstPort = this.dstPort;
    for (let i = 0; i < 4; i++) {
      m.payload[i] = this.payload[i]!;
      m.big[i] = this.big[i];
    }
    return m;
  }

  /** Payload word `i` exactly. */
  payloadBig(i: number): bigint {
    return this.big[i] ?? BigInt(this.payload[i]!);
  }

  /** Sets payload word `i` to a u64 given exactly. */
  setPayloadBig(i: number, v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.big[i] = u;
    this.payload[i] = Number(u);
  }

  /** Encodes into `out` (at least 44 bytes). */
  encode(out: Uint8Array): void {
    if (out.length < SCIF_MSG_SIZE) throw new MicError('EINVAL', 'scifmsg buffer is shorter than 44 bytes');
    const dv = new DataView(out.buffer, out.byteOffset, SCIF_MSG_SIZE);
    dv.setUint16(0, this.srcNode & 0xffff, true);
    dv.setUint16(2, this.srcPort & 0xffff, true);
    dv.setUint16(4, this.dstNode & 0xffff, true);
    dv.setUint16(6, this.dstPort & 0xffff, true);
    dv.setUint32(8, this.uop >>> 0, true);
    for (let i = 0; i < 4; i++) {
      const b = this.big[i];
      if (b !== undefined) {
        dv.setBigUint64(12 + 8 * i, b, true);
      } else {
        const v = this.payload[i]!;
        if (Number.isSafeInteger(v) && v >= 0) {
          dv.setUint32(12 + 8 * i, v % TWO32, true);
          dv.setUint32(16 + 8 * i, Math.floor(v / TWO32), true);
        } else if (Number.isInteger(v) && v > 0 && v <= TWO64) {
          // A peer's word of 2^53 or more, copied into a reply as a number without its exact
          // `big` (a handler echoing an unknown handle): written as that number (2^64, what
          // 2^64 - 1 decodes to, as 2^64 - 1). Handles of this implementation stay below 2^44,
          // so only a value no live object has is rounded.
          dv.setBigUint64(12 + 8 * i, v === TWO64 ? U64_MAX : BigInt(v), true);
        } else {
          throw new MicError('EINVAL', `scifmsg payload[${i}] ${String(v)} is not a u64 number`);
        }
      }
    }
  }

  /** Decodes 44 bytes (fields as they are; handlers check them). */
  static decode(bytes: Uint8Array): ScifMsg {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, SCIF_MSG_SIZE);
    const m = new ScifMsg(dv.getUint32(8, true));
    m.srcNode = dv.getUint16(0, true);
    m.srcPort = dv.getUint16(2, true);
    m.dstNode = dv.getUint16(4, true);
    m.dstPort = dv.getUint16(6, true);
    for (let i = 0; i < 4; i++) {
      const lo = dv.getUint32(12 + 8 * i, true);
      const hi = dv.getUint32(16 + 8 * i, true);
      m.payload[i] = lo + hi * TWO32;
      if (hi >= 0x200000) m.big[i] = dv.getBigUint64(12 + 8 * i, true);
    }
    return m;
  }
}
