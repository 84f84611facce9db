// The DMA engine in its own thread on the worker platform.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { WorkerPlatform } from '../src/index.js';
import {
  X100_DMA_REG,
  X100_REG,
  createWorkerPlatform,
  hostDmaSrc,
  writeDmaMemcpyDesc,
  writeDmaStatusDesc,
} from '../src/index.js';
import { completion, hostRing, pattern, reg, setHead, setupChannel, type Rig } from './dma-helpers.js';
import { ECHO_CARD, eventually, hostBuffer } from './helpers.js';

let platform: WorkerPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

describe('the DMA engine on the worker platform', () => {
  it('copies concurrently with the host in its own thread and interrupts the host', async () => {
    const p = createWorkerPlatform({ cardModule: ECHO_CARD, cardMemorySize: 4 << 20, hostRamSize: 4 << 20 });
    platform = p;
    const rig = { hw: p.hardware, host: p.host } as Rig;
    p.host.enableInterrupts();
    let irqs = 0;
    p.host.requestIrq(hostDmaSrc(0), () => {
      irqs++;
      p.host.ackInterrupt();
    });
    const ring = hostRing(rig, 64);
    setupChannel(rig, 0, ring, false);
    const size = 1 << 20;
    const src = hostBuffer(p.host, size, 4096);
    const data = pattern(size, 21);
    src.mem.write(0, data);
    const srcMic = p.host.mapSingle(src.dmaAddr, size);
    writeDmaMemcpyDesc(ring.mem, 0, srcMic, 0x10_0000, size);
    writeDmaStatusDesc(ring.mem, 16, 0x8000, 77n, true);
    setHead(rig, 0, 2);
    await eventually(() => irqs === 1, 'the DMA interrupt');
    expect(completion(rig, 0)).toBe(2);
    expect(p.hardware.cardMemory.readBigU64(0x8000)).toBe(77n);
    expect(Buffer.compare(p.hardware.cardMemory.bytes(0x10_0000, size), data)).toBe(0);
    expect(await p.dmaEngineTid).not.toBe(0);
  });

  it('leaves every DMA register zero after a reset of the card', async () => {
    const p = createWorkerPlatform({ cardModule: ECHO_CARD, cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    platform = p;
    const rig = { hw: p.hardware, host: p.host } as Rig;
    const ring = hostRing(rig, 8);
    setupChannel(rig, 1, ring, false);
    writeDmaStatusDesc(ring.mem, 0, 0x8000, 1n, false);
    setHead(rig, 1, 1);
    await eventually(() => completion(rig, 1) === 1, 'the status descriptor');
    p.host.reset();
    expect(p.hardware.mmio.read32(reg(1, X100_DMA_REG.DSTAT))).toBe(0);
    expect(p.hardware.mmio.read32(X100_REG.DCR)).toBe(0);
    expect(p.hardware.mmio.read32(reg(1, X100_DMA_REG.DTPR))).toBe(0);
  });

  it('refuses a chunk size that is not a multiple of 64 before starting anything', () => {
    expect(() => createWorkerPlatform({ cardModule: ECHO_CARD, dmaChunkBytes: 96 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/chunk of 96 bytes/) }),
    );
  });

  it('has no engine thread with dmaEngine: false', async () => {
    const p = createWorkerPlatform({
      cardModule: ECHO_CARD,
      dmaEngine: false,
      cardMemorySize: 1 << 20,
      hostRamSize: 1 << 20,
    });
    platform = p;
    expect(await p.dmaEngineTid).toBe(-1);
    p.host.mmio.write32(reg(0, X100_DMA_REG.DTPR), 3);
    expect(p.host.mmio.read32(reg(0, X100_DMA_REG.DTPR))).toBe(3);
  });
});
