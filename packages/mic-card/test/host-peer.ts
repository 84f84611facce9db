// The host end of the link for the mic-card tests, written directly on the raw x100 host view,
// since mic-card may not import mic-host (as mic-host's tests have a card peer on the raw card
// view). It does what the host driver does for a boot (interrupts on, the device page in host RAM
// mapped through the SMPT with mic_bootparam initialised, its address in SPAD14/15, the bootstrap
// interrupt) and offers the host's side of the hwops-compliance LinkPeer: host doorbells handed out
// round robin (mic_next_db), host RAM mapped through the SMPT, card memory through the aperture.
import { HostDoorbellAllocator, MemoryPool } from '@mic/bus-core';
import type { ClosableLinkPeer, PeerBuffer, PeerDoorbell } from '@mic/hwops-compliance';
import type { Memory } from '@mic/memory';
import { MIC_DP_SIZE, MIC_DPHI_SPAD, MIC_DPLO_SPAD, bootparamInit, encodeDpAddress } from '@mic/mic-common';
import { X100_HOST_NUM_DOORBELLS, type X100HostView, type X100Platform } from '@mic/x100';

/** The host's device page: host DMA address, card-visible address, the bytes. */
export interface HostPage {
  readonly dmaAddr: number;
  readonly micAddr: number;
  readonly mem: Memory;
}

/** The host side of one platform, on its raw host view. */
export class HostPeer {
  readonly host: X100HostView;
  /** The SCIF node id the host gives the card (`mic_bootparam.node_id`). */
  readonly nodeId: number;
  /** Host RAM, as the host OS hands it out. */
  readonly ram: MemoryPool;
  /** `mic_next_db`, shared by every link peer of this host. */
  readonly doorbells = new HostDoorbellAllocator(X100_HOST_NUM_DOORBELLS);
  readonly dp: HostPage;
  readonly #peers = new Set<ClosableLinkPeer>();

  /** What the host driver's probe and start do before the bootstrap interrupt. */
  constructor(platform: X100Platform, nodeId = 1) {
    this.host = platform.host;
    this.nodeId = nodeId;
    this.ram = new MemoryPool(this.host.ram, { name: 'host RAM' });
    const page = this.ram.alloc(MIC_DP_SIZE, 4096);
    const micAddr = this.host.mapSingle(page.offset, MIC_DP_SIZE);
    bootparamInit(page.mem, nodeId);
    this.dp = { dmaAddr: page.offset, micAddr, mem: page.mem };
    this.host.enableInterrupts();
    this.publish();
  }

  /** Writes the device page address to SPAD14/15 (again after a reset, as `_mic_start` does). */
  publish(): void {
    const { lo, hi } = encodeDpAddress(this.dp.micAddr);
    this.host.writeSpad(MIC_DPLO_SPAD, lo);
    this.host.writeSpad(MIC_DPHI_SPAD, hi);
  }

  /** The host end of one link (one host device's ops, as the card's VOP or SCIF device sees it). */
  linkPeer(): ClosableLinkPeer {
    const { host, ram } = this;
    const doors = new Set<PeerDoorbell>();
    const buffers = new Set<PeerBuffer>();
    const peer: ClosableLinkPeer = {
      ring: async (db) => {
        host.sendIntr(db);
      },
      listen: async () => {
        const db = this.doorbells.next();
        const state = { count: 0 };
        const cookie = host.requestIrq(
          db,
          () => {
            host.ackInterrupt();
            state.count++;
          },
          'compliance peer',
        );
        const door: PeerDoorbell = {
          db,
          received: async () => state.count,
          close: async () => {
            if (doors.delete(door)) host.freeIrq(cookie);
          },
        };
        doors.add(door);
        return door;
      },
      alloc: async (size) => {
        const piece = ram.alloc(size, size >= 4096 ? 4096 : 64);
        const dmaAddr = host.mapSingle(piece.offset, size);
        const buf: PeerBuffer = {
          dmaAddr,
          view: piece.mem,
          free: async () => {
            if (!buffers.delete(buf)) return;
            host.unmapSingle(dmaAddr, size);
            ram.free(piece.offset);
          },
        };
        buffers.add(buf);
        return buf;
      },
      // The card's DMA addresses are card physical addresses: the host reaches them through its aperture.
      view: async (dmaAddr, size) => host.apertureWindow(dmaAddr, size),
      devicePage: async () => this.dp.mem,
      close: async () => {
        for (const door of [...doors]) await door.close();
        for (const buf of [...buffers]) await buf.free();
      },
    };
    this.#peers.add(peer);
    return peer;
  }

  /** Releases every link peer's doorbells and buffers, then the device page. */
  async close(): Promise<void> {
    for (const peer of [...this.#peers]) await peer.close();
    this.host.unmapSingle(this.dp.micAddr, MIC_DP_SIZE);
    this.ram.free(this.dp.dmaAddr);
  }
}
