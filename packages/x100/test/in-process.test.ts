import { afterEach, describe, expect, it } from '@jest/globals';
import { VirtualClock } from '@mic/clock';
import { createMemoryLogger } from '@mic/logger';
import type { InProcessPlatform, X100CardView } from '../src/index.js';
import {
  X100_CARD_STATE,
  X100_REG,
  X100_SMPT,
  cardDmaSrc,
  createInProcessPlatform,
  smptReg,
  smptRegValue,
} from '../src/index.js';
import { flush, hostBuffer, PAGE_SPAD, prepareHost } from './helpers.js';

let platform: InProcessPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

function make(options: Parameters<typeof createInProcessPlatform>[0] = {}): InProcessPlatform {
  platform = createInProcessPlatform(options);
  return platform;
}

/** Boots a card whose code only keeps its view. */
async function bootBare(p: InProcessPlatform): Promise<X100CardView> {
  let view: X100CardView | undefined;
  await p.startCard((card) => {
    view = card;
  });
  return view!;
}

describe('in-process interrupts', () => {
  it('never runs a handler inside the call that rang, and coalesces rings made before delivery', async () => {
    const p = make();
    const card = await bootBare(p);
    const calls: number[] = [];
    card.requestIrq(2, (src) => {
      calls.push(src);
    });
    p.host.sendIntr(2);
    p.host.sendIntr(2);
    p.host.sendIntr(2);
    expect(calls).toEqual([]);
    expect(card.readInterruptStatus()).toBe(1 << 2);
    await flush();
    expect(calls).toEqual([2]);
    expect(card.readInterruptStatus()).toBe(0);
  });

  it('delivers nothing to the host until enableInterrupts, and keeps the source pending meanwhile', async () => {
    const p = make();
    const card = await bootBare(p);
    const calls: number[] = [];
    p.host.requestIrq(1, (src) => {
      calls.push(src);
      p.host.ackInterrupt();
    });
    card.sendIntr(1);
    await flush();
    expect(calls).toEqual([]);
    expect(p.host.readInterruptStatus()).toBe(0b10);
    p.host.enableInterrupts();
    await flush();
    expect(calls).toEqual([1]);
    expect(p.host.readInterruptStatus()).toBe(0);
  });

  it('with auto-clear, a source stays off after delivery until the handler acknowledges', async () => {
    const p = make();
    const card = await bootBare(p);
    p.host.enableInterrupts({ autoClear: true });
    let calls = 0;
    let ack = false;
    p.host.requestIrq(0, () => {
      calls++;
      if (ack) p.host.ackInterrupt();
    });
    card.sendIntr(0);
    await flush();
    expect(calls).toBe(1);
    expect(p.host.interruptEnableMask() & 1).toBe(0);
    expect(p.hardware.mmio.read32(X100_REG.SICE0) & 1).toBe(0);
    card.sendIntr(0);
    await flush();
    expect(calls).toBe(1);
    ack = true;
    p.host.ackInterrupt();
    await flush();
    expect(calls).toBe(2);
    card.sendIntr(0);
    await flush();
    expect(calls).toBe(3);
  });

  it('holds an auto-cleared source off while its handler runs; one raised meanwhile comes once, after the ack', async () => {
    const p = make();
    const card = await bootBare(p);
    p.host.enableInterrupts({ autoClear: true });
    const seen: string[] = [];
    let calls = 0;
    p.host.requestIrq(0, () => {
      calls++;
      seen.push(`in ${calls}: enabled ${p.host.interruptEnableMask() & 1}`);
      if (calls === 1) card.sendIntr(0);
      seen.push(`in ${calls}: pending ${p.host.readInterruptStatus() & 1}`);
      p.host.ackInterrupt();
      seen.push(`in ${calls}: acked, enabled ${p.host.interruptEnableMask() & 1}`);
    });
    card.sendIntr(0);
    await flush();
    expect(calls).toBe(2);
    expect(seen).toEqual([
      'in 1: enabled 0',
      'in 1: pending 1',
      'in 1: acked, enabled 1',
      'in 2: enabled 0',
      'in 2: pending 0',
      'in 2: acked, enabled 1',
    ]);
    expect(p.hardware.mmio.read32(X100_REG.SICE0) & 1).toBe(1);
    expect(p.host.readInterruptStatus()).toBe(0);
  });

  it('an acknowledgement after disableInterrupts does not turn an auto-cleared source back on', async () => {
    const p = make();
    const card = await bootBare(p);
    p.host.enableInterrupts();
    let calls = 0;
    p.host.requestIrq(1, () => {
      calls++;
    });
    card.sendIntr(1);
    await flush();
    expect(calls).toBe(1);
    p.host.disableInterrupts();
    p.host.ackInterrupt();
    card.sendIntr(1);
    await flush();
    expect(calls).toBe(1);
    expect(p.host.interruptEnableMask()).toBe(0);
  });

  it('without auto-clear, every delivery arrives without an acknowledgement', async () => {
    const p = make();
    const card = await bootBare(p);
    p.host.enableInterrupts({ autoClear: false });
    let calls = 0;
    p.host.requestIrq(3, () => {
      calls++;
    });
    for (let i = 0; i < 3; i++) {
      card.sendIntr(3);
      await flush();
    }
    expect(calls).toBe(3);
  });

  it('disableInterrupts holds sources back and writing 1s to SICR0 drops them', async () => {
    const p = make();
    const card = await bootBare(p);
    p.host.enableInterrupts();
    let calls = 0;
    p.host.requestIrq(2, () => {
      calls++;
    });
    p.host.disableInterrupts();
    card.sendIntr(2);
    await flush();
    expect(calls).toBe(0);
    expect(p.host.readInterruptStatus()).toBe(0b100);
    p.host.mmio.write32(X100_REG.SICR0, 0b100);
    expect(p.host.readInterruptStatus()).toBe(0);
    p.host.enableInterrupts();
    await flush();
    expect(calls).toBe(0);
  });

  it('calls every handler sharing a source, stops calling a freed one, and refuses bad sources', async () => {
    const p = make();
    const card = await bootBare(p);
    const calls: string[] = [];
    const a = card.requestIrq(
      4,
      () => {
        calls.push('a');
      },
      'a',
    );
    card.requestIrq(
      4,
      () => {
        calls.push('b');
      },
      'b',
    );
    p.host.sendIntr(4);
    await flush();
    expect(calls).toEqual(['a', 'b']);
    card.freeIrq(a);
    expect(() => card.freeIrq(a)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    p.host.sendIntr(4);
    await flush();
    expect(calls).toEqual(['a', 'b', 'b']);
    expect(card.requestIrq(15, () => {}).src).toBe(15);
    expect(card.requestIrq(cardDmaSrc(7), () => {}).src).toBe(23);
    expect(() => card.requestIrq(24, () => {})).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => p.host.requestIrq(4, () => {})).toThrow('host has no interrupt source 4');
    expect(p.host.requestIrq(30, () => {}).src).toBe(30);
    expect(p.host.requestIrq(15, () => {}).src).toBe(15);
  });

  it('gives card code the card address of its own memory, which the host reaches through the aperture', async () => {
    const p = make();
    const card = await bootBare(p);
    const addr = 0x3000;
    const mem = card.memory.window(addr, 8192);
    expect(card.physAddrOf(mem)).toBe(addr);
    expect(card.physAddrOf(mem.window(100, 4))).toBe(addr + 100);
    mem.writeU32(100, 0xfeed);
    expect(p.host.apertureWindow(addr + 100, 4).readU32(0)).toBe(0xfeed);
    expect(() => card.physAddrOf(hostBuffer(p.host, 8).mem)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('rejects doorbells the other side does not have, -1 ("none" in a device page) among them', async () => {
    const p = make();
    const card = await bootBare(p);
    for (const db of [-1, 16, 1.5]) {
      expect(() => p.host.sendIntr(db)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    for (const db of [-1, 4]) {
      expect(() => card.sendIntr(db)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(p.hardware.cardLine.pending()).toBe(0);
    expect(p.hardware.hostLine.pending()).toBe(0);
  });

  it('logs a handler that throws and keeps delivering', async () => {
    const logger = createMemoryLogger();
    const p = make({ logger });
    const card = await bootBare(p);
    let calls = 0;
    card.requestIrq(
      0,
      () => {
        calls++;
        throw new Error('boom');
      },
      'bad',
    );
    card.requestIrq(
      0,
      async () => {
        calls++;
        await Promise.resolve();
        throw new Error('async boom');
      },
      'bad-async',
    );
    p.host.sendIntr(0);
    await flush();
    p.host.sendIntr(0);
    await flush();
    expect(calls).toBe(4);
    const errors = logger.records.filter((r) => r.msg === 'interrupt handler failed');
    expect(errors.map((r) => r.fields['error'])).toEqual(['boom', 'async boom', 'boom', 'async boom']);
    expect(errors[0]?.component).toBe('card');
  });
});

describe('in-process boot and reset', () => {
  it('refuses to boot without card code or when the card is not ready', async () => {
    const p = make();
    await expect(p.startCard()).rejects.toMatchObject({ code: 'EINVAL' });
    expect(p.cardState).toBe(X100_CARD_STATE.READY);
    await bootBare(p);
    await expect(p.startCard(() => {})).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('ignores the bootstrap interrupt when there is no card code', async () => {
    const logger = createMemoryLogger();
    const p = make({ logger });
    p.host.sendFirmwareIntr();
    expect(p.cardState).toBe(X100_CARD_STATE.READY);
    expect(p.boot).toBeUndefined();
    expect(logger.records.some((r) => r.msg === 'bootstrap interrupt ignored')).toBe(true);
  });

  it('halts the card when its entry throws', async () => {
    const p = make();
    await expect(
      p.startCard(() => {
        throw new Error('card OS panic');
      }),
    ).rejects.toThrow('card OS panic');
    expect(p.cardState).toBe(X100_CARD_STATE.HALTED);
  });

  it('passes cardData to the entry and clones call arguments and results', async () => {
    const p = make({ cardData: { fromOptions: true } });
    const seen: unknown[] = [];
    const card = await p.startCard((_card, data) => {
      seen.push(data);
      const kept: unknown[] = [];
      return {
        keep: (v: unknown) => {
          kept.push(v);
          return kept;
        },
      };
    });
    const arg = { n: 1 };
    const result = (await card.call('keep', arg)) as unknown[];
    expect(result).toEqual([{ n: 1 }]);
    expect(result[0]).not.toBe(arg);
    expect(seen).toEqual([{ fromOptions: true }]);
    await p.close();
    const q = make({ cardData: 'ignored' });
    await q.startCard((_card, data) => {
      seen.push(data);
    }, 'given');
    expect(seen[1]).toBe('given');
  });

  it('kills the card view on reset: its signal aborts and its operations fail with ENODEV', async () => {
    const p = make();
    prepareHost(p);
    const card = await bootBare(p);
    expect(card.alive).toBe(true);
    p.host.reset();
    expect(card.alive).toBe(false);
    expect(card.signal.aborted).toBe(true);
    expect(p.cardView).toBeUndefined();
    expect(() => card.sendIntr(0)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => card.requestIrq(0, () => {})).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => card.readSpad(14)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => card.cardMap(X100_SMPT.BASE, 8)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });

  it('a reset loses the SMPT registers until restore, and takes resetDelayMs of platform time', async () => {
    const clock = new VirtualClock();
    const p = make({ clock, resetDelayMs: 1000 });
    const dp = prepareHost(p);
    const buf = hostBuffer(p.host, 64);
    const micAddr = p.host.smpt.map(buf.dmaAddr + 5 * X100_SMPT.PAGE_SIZE, 64);
    const entry = Math.floor((micAddr - X100_SMPT.BASE) / X100_SMPT.PAGE_SIZE);
    expect(p.host.mmio.read32(smptReg(entry))).toBe(smptRegValue(5 * X100_SMPT.PAGE_SIZE));
    const t0 = clock.now();
    p.host.reset();
    expect(p.host.mmio.read32(smptReg(entry))).toBe(0);
    expect(p.host.mmio.read32(X100_REG.RGCR)).toBe(1);
    await clock.sleep(999);
    expect(p.cardState).toBe(X100_CARD_STATE.RESET);
    await clock.sleep(1);
    expect(p.cardState).toBe(X100_CARD_STATE.READY);
    expect(clock.now() - t0).toBe(1000);
    expect(p.host.mmio.read32(X100_REG.RGCR)).toBe(0);
    p.host.smpt.restore();
    expect(p.host.mmio.read32(smptReg(entry))).toBe(smptRegValue(5 * X100_SMPT.PAGE_SIZE));
    expect(p.host.readSpad(PAGE_SPAD.LO)).toBe(0);
    expect(dp.mem.readU32(0)).toBe(0xc0ffee00);
  });

  it('a reset during boot makes the boot fail with ENODEV', async () => {
    const p = make();
    let release: () => void = () => {};
    const boot = p.startCard(async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await flush();
    expect(p.cardState).toBe(X100_CARD_STATE.BOOTING);
    p.host.reset();
    release();
    await expect(boot).rejects.toMatchObject({ code: 'ENODEV' });
    expect(p.cardState).toBe(X100_CARD_STATE.RESET);
  });

  it('close stops delivery and refuses new boots', async () => {
    const p = make();
    const card = await bootBare(p);
    let calls = 0;
    p.host.enableInterrupts();
    p.host.requestIrq(0, () => {
      calls++;
    });
    await p.close();
    expect(card.alive).toBe(false);
    p.hardware.raiseHostInterrupt(0);
    await flush();
    expect(calls).toBe(0);
    await expect(p.startCard(() => {})).rejects.toMatchObject({ code: 'ENODEV' });
    await p.close();
  });
});
