// The host's half of the device page handshake (mic_dp_init / mic_dp_uninit and SPAD14/15) on the
// bare x100 host view.
import { describe, expect, it } from '@jest/globals';
import { MIC_DP_SIZE, MIC_DPHI_SPAD, MIC_DPLO_SPAD, MIC_MAGIC, readBootparam } from '@mic/mic-common';
import { X100_SMPT } from '@mic/x100';
import { hostDpInit, hostDpUninit, writeDpAddress, hostRam } from '../src/index.js';
import { bareHost } from './helpers.js';

describe('the host device page', () => {
  it('is a page of host RAM mapped through the SMPT with mic_bootparam initialised, and goes away again', () => {
    const host = bareHost();
    const dp = hostDpInit(host, 3);
    expect(dp.dmaAddr % 4096).toBe(0);
    expect(dp.dmaAddr).toBeGreaterThan(0);
    expect(dp.mem.byteLength).toBe(MIC_DP_SIZE);
    expect(host.smpt.toDmaAddr(dp.micAddr)).toBe(dp.dmaAddr);
    expect(host.dmaWindow(dp.dmaAddr, 4).loadU32(0)).toBe(MIC_MAGIC);
    expect(readBootparam(dp.mem)).toMatchObject({ magic: MIC_MAGIC, nodeId: 3, h2cConfigDb: -1 });
    hostDpUninit(host, dp);
    expect(hostRam(host).usedBytes).toBe(0);
    expect(host.smpt.entries().every((e) => e.refCount === 0)).toBe(true);
  });

  it('refuses node ids outside 1-255 and leaves nothing allocated when no SMPT entry is free', () => {
    const host = bareHost();
    for (const nodeId of [0, 256, 1.5]) {
      expect(() => hostDpInit(host, nodeId)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    // Every SMPT entry taken by a 16 GiB page the device page is not in.
    for (let i = 1; i <= X100_SMPT.NUM_REG; i++) host.smpt.map(i * X100_SMPT.PAGE_SIZE, 64);
    expect(() => hostDpInit(host, 1)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(hostRam(host).usedBytes).toBe(0);
  });

  it('publishes its card address in SPAD14 (low 32 bits) and SPAD15 (high)', () => {
    const host = bareHost();
    writeDpAddress(host, 0x81_2345_6000);
    expect([host.readSpad(MIC_DPLO_SPAD), host.readSpad(MIC_DPHI_SPAD)]).toEqual([0x2345_6000, 0x81]);
    expect(() => writeDpAddress(host, -4096)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
