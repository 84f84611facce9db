// The DMA driver under the real hardware drivers, on both x100 platforms: mic-host loads it once
// and starts the card with channels it hands out (SCIF gets channels 0-3, VOP channel 0); the
// card's code probes mic-card the same way on the card's mic bus (channels 4-7). Copies through
// the VOP devices' channels between DMA map ops memory and card memory, and what stop and remove
// give back.
import { afterEach, describe, expect, it } from '@jest/globals';
import { readBytes, type Memory } from '@mic/memory';
import { X100_HOST_SOURCES, X100_REG, X100_SMPT } from '@mic/x100';
import { DMA_PREP, DMA_STATUS, MIC_DMA_CHAN_STATE, MicDmaChan } from '../src/index.js';
import type { DmaTxResult } from '../src/index.js';
import type { CardChannels, CardHeld } from './fixtures/card-os.mjs';
import {
  BOOT,
  KIB,
  MIB,
  type InProcessRig,
  type WorkerRig,
  closeRig,
  hostChannels,
  inProcessRig,
  smptRefs,
  workerRig,
} from './rigs.js';
import { hostRam } from '@mic/mic-host';

type Rig = InProcessRig | WorkerRig;

let current: Rig | undefined;
afterEach(async () => {
  const rig = current;
  current = undefined;
  if (rig) await closeRig(rig);
});

const PLATFORMS = [
  ['inProcess', inProcessRig],
  ['worker', workerRig],
] as const;

/** Bytes of the buffers the copies move between. */
const SIZE = 2 * MIB;

/** Fills the first `length` bytes of `mem` with a pattern that differs per position and seed. */
function fill(mem: Memory, length: number, seed: number): void {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes.length; i++) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    bytes[i] = x >>> 24;
  }
  mem.write(0, bytes);
}

/** Handlers installed on the host's interrupt line (doorbells, DMA channels, error). */
function hostHandlers(rig: Rig): number {
  let n = 0;
  for (let src = 0; src < 32; src++) {
    if ((X100_HOST_SOURCES >>> src) & 1) n += rig.platform.host.handlerCount(src);
  }
  return n;
}

/** Host memory from the VOP device's DMA map ops and card memory from the card's, both as the host sees them. */
interface Buffers {
  readonly host: { readonly addr: number; readonly mem: Memory };
  readonly card: { readonly addr: number; readonly mem: Memory };
  release(): Promise<void>;
}

async function buffers(rig: Rig): Promise<Buffers> {
  const vop = rig.mic.vopDevice!;
  const hostBuf = vop.dmaOps.alloc(SIZE);
  const cardAddr = (await rig.card.call('alloc', SIZE)) as number;
  const cardMem = vop.hwOps.remap(cardAddr, SIZE);
  fill(hostBuf.va, SIZE, 11);
  fill(cardMem, SIZE, 12);
  return {
    host: { addr: hostBuf.dmaAddr, mem: hostBuf.va },
    card: { addr: cardAddr, mem: cardMem },
    async release() {
      vop.hwOps.unmap(cardMem);
      vop.dmaOps.free(hostBuf);
      await rig.card.call('free', cardAddr);
    },
  };
}

/** Copies as [direction, source offset, destination offset, length]: one to several descriptors. */
const COPIES = [
  ['h2c', 0, 0, 64],
  ['c2h', 64, 128, 4 * KIB],
  ['h2c', 4 * KIB, 64 * KIB, 64 * KIB],
  ['c2h', 192, 320 * KIB, 512 * KIB + 64],
  ['h2c', MIB - 64, 0, MIB],
  ['c2h', 0, MIB, MIB],
] as const;

describe.each(PLATFORMS)('the DMA driver under mic-host and mic-card on the %s x100', (_kind, makeRig) => {
  it('is loaded once by each driver and gives SCIF its device channels and VOP the first one, on both sides', async () => {
    const rig = await makeRig();
    current = rig;
    expect(rig.loads()).toBe(1);
    const mbdev = rig.mic.mbusDevice!;
    expect(rig.buses.mbus.driverOf(mbdev)).toBe(rig.dma);
    const chans = hostChannels(rig);
    expect(chans.map((c) => c.chanId)).toEqual([0, 1, 2, 3]);
    for (const ch of chans) {
      expect(ch).toBeInstanceOf(MicDmaChan);
      expect(ch.state).toBe(MIC_DMA_CHAN_STATE.READY);
      expect(rig.dma.deviceOfChannel(ch)).toBe(rig.dma.deviceOf(mbdev));
    }
    expect(rig.dma.deviceOf(mbdev)!.owner).toBe('host');
    const scif = rig.mic.scifDevice!.dmaCh;
    expect(scif).toHaveLength(4);
    scif.forEach((ch, i) => expect(ch).toBe(chans[i]));
    expect(rig.mic.vopDevice!.dmaCh).toBe(chans[0]);
    expect(rig.mic.dmaChannels).toEqual(chans);
    // mic-host took every host channel: none is left to request
    expect(rig.dma.requestChannel()).toBeUndefined();
    // all eight channels enabled, 4-7 card-owned
    expect(rig.platform.hardware.mmio.read32(X100_REG.DCR)).toBe(0xffaa);

    expect(await rig.card.call('loads')).toBe(1);
    expect((await rig.card.call('channels')) as CardChannels).toEqual({
      device: [4, 5, 6, 7],
      vop: 4,
      scif: [4, 5, 6, 7],
      driverChannels: true,
      states: Array(4).fill(MIC_DMA_CHAN_STATE.READY),
      held: 4,
    });
  });

  it('copies host → card and card → host on the host VOP channel, leaving the bytes Uint8Array.set would', async () => {
    const rig = await makeRig();
    current = rig;
    const b = await buffers(rig);
    expect(b.host.addr).toBeGreaterThanOrEqual(X100_SMPT.BASE);
    const shadow = { host: readBytes(b.host.mem, 0, SIZE), card: readBytes(b.card.mem, 0, SIZE) };
    const ch = rig.mic.vopDevice!.dmaCh as MicDmaChan;
    const results: DmaTxResult[] = [];
    for (const [dir, src, dst, len] of COPIES) {
      const from = dir === 'h2c' ? b.host.addr : b.card.addr;
      const to = dir === 'h2c' ? b.card.addr : b.host.addr;
      const tx = ch.prepMemcpy(to + dst, from + src, len, DMA_PREP.INTERRUPT);
      const done = new Promise<DmaTxResult>((resolve) => {
        tx.callback = resolve;
      });
      tx.submit();
      ch.issuePending();
      results.push(await done);
      const [a, z] = dir === 'h2c' ? [shadow.host, shadow.card] : [shadow.card, shadow.host];
      z.set(a.subarray(src, src + len), dst);
    }
    expect(results).toEqual(COPIES.map((_c, i) => ({ cookie: i + 1, status: DMA_STATUS.COMPLETE })));
    expect(Buffer.compare(readBytes(b.host.mem, 0, SIZE), shadow.host)).toBe(0);
    expect(Buffer.compare(readBytes(b.card.mem, 0, SIZE), shadow.card)).toBe(0);
    await b.release();
  });

  it('has the card copy card memory to and from host memory through the SMPT on its VOP channel, interrupt-driven', async () => {
    const rig = await makeRig();
    current = rig;
    const b = await buffers(rig);
    const shadow = { host: readBytes(b.host.mem, 0, SIZE), card: readBytes(b.card.mem, 0, SIZE) };
    for (const [dir, src, dst, len] of COPIES) {
      const from = dir === 'h2c' ? b.host.addr : b.card.addr;
      const to = dir === 'h2c' ? b.card.addr : b.host.addr;
      expect(await rig.card.call('copy', to + dst, from + src, len)).toMatchObject({
        status: DMA_STATUS.COMPLETE,
        chan: 4,
      });
      const [a, z] = dir === 'h2c' ? [shadow.host, shadow.card] : [shadow.card, shadow.host];
      z.set(a.subarray(src, src + len), dst);
    }
    expect(Buffer.compare(readBytes(b.host.mem, 0, SIZE), shadow.host)).toBe(0);
    expect(Buffer.compare(readBytes(b.card.mem, 0, SIZE), shadow.card)).toBe(0);
    await b.release();
  });

  it('gives every channel back before COSM stop resolves, leaving the device page as the only host memory, and starts again with fresh channels', async () => {
    const rig = await makeRig();
    current = rig;
    const chans = hostChannels(rig);
    // a copy in flight when the card stops is drained, not dropped
    const b = await buffers(rig);
    const ch = chans[1]!;
    const cookie = ch.prepMemcpy(b.card.addr, b.host.addr, SIZE).submit();
    ch.issuePending();
    await rig.mic.cosmOps.stop(false);
    expect(ch.txStatus(cookie)).toBe(DMA_STATUS.COMPLETE);
    expect(Buffer.compare(readBytes(b.card.mem, 0, SIZE), readBytes(b.host.mem, 0, SIZE))).toBe(0);
    expect(chans.map((c) => c.state)).toEqual(Array(4).fill(MIC_DMA_CHAN_STATE.FREE));
    await b.release();
    expect(rig.mic.dmaChannels).toEqual([]);
    expect(rig.mic.mbusDevice).toBeUndefined();
    expect(rig.buses.mbus.devices()).toEqual([]);
    expect(rig.dma.devices).toEqual([]);
    expect(rig.mic.dmaOps.liveBuffers).toBe(0);
    expect(rig.mic.dmaOps.liveMappings).toBe(0);
    expect(rig.mic.irqsInUse).toBe(0);
    expect(hostHandlers(rig)).toBe(0);
    expect(hostRam(rig.platform.host).usedBytes).toBe(4096);
    expect(smptRefs(rig)).toBe(4096);

    await rig.mic.cosmOps.reset();
    while (!rig.mic.cosmOps.ready()) await rig.platform.clock.sleep(10);
    await rig.mic.cosmOps.start(rig.mic.cosmDevice!.index, BOOT);
    const card = await rig.platform.boot!;
    const again = hostChannels(rig);
    expect(again.map((c) => c.chanId)).toEqual([0, 1, 2, 3]);
    expect(again.some((c) => chans.includes(c))).toBe(false);
    expect(((await card.call('channels')) as CardChannels).states).toEqual(
      Array(4).fill(MIC_DMA_CHAN_STATE.READY),
    );
    current = { ...rig, card };
    const b2 = await buffers(current);
    const done = again[0]!.prepMemcpy(b2.host.addr, b2.card.addr, 64 * KIB).submit();
    expect(await again[0]!.syncWait(done)).toBe(DMA_STATUS.COMPLETE);
    expect(Buffer.compare(readBytes(b2.host.mem, 0, 64 * KIB), readBytes(b2.card.mem, 0, 64 * KIB))).toBe(0);
    await b2.release();
    expect(rig.loads()).toBe(1);
  });

  it('leaves nothing requested, allocated or mapped on either side after the card driver and the host driver are removed', async () => {
    const rig = await makeRig();
    current = rig;
    const chans = hostChannels(rig);
    const held = (await rig.card.call('remove')) as CardHeld;
    expect(held).toEqual({
      irqs: 0,
      buffers: 0,
      states: Array(4).fill(MIC_DMA_CHAN_STATE.FREE),
      devices: 0,
      dmaDevices: 0,
    });
    await rig.driver.exit();
    expect(chans.map((c) => c.state)).toEqual(Array(4).fill(MIC_DMA_CHAN_STATE.FREE));
    for (const bus of Object.values(rig.buses)) expect(bus.devices()).toEqual([]);
    expect(rig.dma.devices).toEqual([]);
    expect(hostHandlers(rig)).toBe(0);
    expect(hostRam(rig.platform.host).usedBytes).toBe(0);
    expect(smptRefs(rig)).toBe(0);
  });
});
