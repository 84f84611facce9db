import { describe, expect, it } from '@jest/globals';
import { VirtualClock, pollUntil } from '@mic/clock';
import { MicError } from '@mic/errors';
import { MockCosmHwOps } from '../src/index.js';

const boot = { firmware: 'mic/uos.img', ramdisk: null, cmdline: null, bootmode: 'linux' };

describe('MockCosmHwOps', () => {
  it('is not ready right after a reset and becomes ready after the firmware delay on its clock', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const ops = new MockCosmHwOps({ clock, resetMs: 1000, readyDelayMs: 3000 });
    const resetting = ops.reset();
    expect(ops.ready()).toBe(false);
    clock.advance(1000);
    await resetting;
    expect(ops.ready()).toBe(false);
    clock.advance(2999);
    await Promise.resolve();
    expect(ops.ready()).toBe(false);
    clock.advance(1);
    await Promise.resolve();
    expect(ops.ready()).toBe(true);
    expect(ops.resets).toBe(1);
  });

  it('never becomes ready again when resets are set to fail', async () => {
    const ops = new MockCosmHwOps();
    ops.failResets = true;
    await ops.forceReset();
    expect(await pollUntil(ops.clock, () => ops.ready(), 45_000, 1_000)).toBe(false);
    expect(ops.forceResets).toBe(1);
  });

  it('boots with the given settings, refuses flash, a missing firmware and a double start', async () => {
    const ops = new MockCosmHwOps();
    await expect(ops.start(0, { ...boot, bootmode: 'flash' })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(ops.start(0, { ...boot, firmware: null })).rejects.toMatchObject({ code: 'EINVAL' });
    await ops.start(0, boot);
    await expect(ops.start(0, boot)).rejects.toMatchObject({ code: 'EBUSY' });
    await ops.stop(false);
    expect(ops.started).toBe(false);
    expect(ops.starts).toEqual([{ id: 0, boot }]);
    expect(ops.stops).toEqual([false]);
  });

  it('fails the next start on request', async () => {
    const ops = new MockCosmHwOps();
    ops.failNextStart(new MicError('ENODEV', 'no DMA channels'));
    await expect(ops.start(1, boot)).rejects.toMatchObject({ code: 'ENODEV' });
    await ops.start(1, boot);
    expect(ops.started).toBe(true);
  });

  it('reports family, stepping, aperture and post-reset states', () => {
    const ops = new MockCosmHwOps({ stepping: 'B1', aperSize: 4096 });
    ops.postReset(0);
    expect([ops.family(), ops.stepping(), ops.aper()?.len, ops.postResets]).toEqual([
      'x100',
      'B1',
      4096,
      [0],
    ]);
    expect(new MockCosmHwOps({ aperSize: 0 }).aper()).toBeNull();
  });
});
