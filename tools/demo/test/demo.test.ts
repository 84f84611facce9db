// The demo as a library call on the worker platform, at a small scale: the steps in the order the
// README promises, and the result's checks (the CLI prints the same object with --json).
import { existsSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { runDemo } from '../src/demo.js';

describe('runDemo (x100 worker platform)', () => {
  it('reports each step as it happens and ends clean: devices, drivers, console line, ping, block sha256, throughput', async () => {
    const lines: string[] = [];
    const r = await runDemo({ report: (l) => lines.push(l), scale: 0.05, imageBytes: 16 << 20 });
    const at = (re: RegExp): number => {
      const i = lines.findIndex((l) => re.test(l));
      if (i < 0) throw new Error(`no step ${re} in:\n${lines.join('\n')}`);
      return i;
    };
    const order = [
      at(/^card booted on the x100 worker platform/),
      at(/^added VIRTIO_ID_CONSOLE/),
      at(/^added VIRTIO_ID_BLOCK/),
      at(/^DRIVER_OK: block/),
      at(/^card drivers bound: virtio_console/),
      at(/^console: the card wrote "mic0: hello/),
      at(/^ping 172\.31\.1\.1 from switch endpoint .*3 echo replies/),
      at(/^block: the card wrote 1 MiB .*\(same\)$/),
      at(/^ {2}net card -> host/),
      at(/^devices removed/),
      at(/^card stopped and reset/),
    ];
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(r.ok).toBe(true);
    expect(r.devices.map((d) => d.kind).sort()).toEqual(['block', 'console', 'net']);
    expect(r.card.block).toMatchObject({
      capacity: String((16 << 20) / 512),
      readOnly: false,
      canFlush: true,
    });
    expect(r.console.ptyPath).toMatch(/^\/dev\/pts\/\d+$/);
    expect(r.console.inLog).toBe(true);
    expect(r.ping.rttMs).toHaveLength(3);
    expect(r.ping.mac).toBe(r.card.net!.mac);
    expect(r.block.hostSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.block.hostSha256).toBe(r.block.cardSha256);
    expect(r.throughput.map((t) => t.what.split(' ')[0])).toEqual([
      'block',
      'block',
      'net',
      'net',
      'console',
    ]);
    expect(r.throughput.every((t) => t.bytes > 0 && t.bytesPerSecond > 0)).toBe(true);
    expect(r.shutdown).toEqual({ hostRamBytes: 4096, tempDirRemoved: true });
    expect(existsSync(r.tempDir)).toBe(false);
  });
});
