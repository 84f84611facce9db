// virtio-console end to end on both x100 platforms: the card program of @mic/demo (the stock
// virtio-console driver of @mic/virtio-drivers as a Duplex on port 0) and the host's
// ConsoleBackend served over VOP by @mic/demo's rig. A terminal opens the reported PTY slave path
// and exchanges bytes with the card both ways; a Unix socket client does the same; the log file
// has everything the card printed.
import { constants, openSync, readFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tty from 'node:tty';
import { describe, expect, it } from '@jest/globals';
import { serveCard } from '@mic/demo';
import { PLATFORMS, bootCard, cleanup, pattern, sha256, tmp, track, until } from './x100-rig.js';

const dec = (b: Uint8Array): string => Buffer.from(b).toString();

describe.each(PLATFORMS)('virtio-console over VOP on the %s platform', (platform) => {
  it('a terminal on the reported PTY slave path and the card exchange bytes both ways; the log has the output', async () => {
    const rig = await bootCard(platform);
    const logPath = join(tmp(), 'console.log');
    const devices = track(await serveCard(rig.control, { console: { logPath, pty: true } }));
    const con = devices.console!;
    await con.waitDriverOk();
    await rig.call('waitDevices', ['console']);
    const ptyPath = con.backend.ptyPath!;
    expect(ptyPath).toMatch(/^\/dev\/pts\/\d+$/);
    const fd = openSync(ptyPath, constants.O_RDWR | constants.O_NOCTTY);
    const term = new tty.ReadStream(fd);
    cleanup(() => void term.destroy());
    let seen = '';
    term.on('data', (d: Buffer) => (seen += d.toString('latin1')));
    await rig.call('consoleWrite', 'mic0 login: ');
    await until(() => seen === 'mic0 login: ', 'card output on the PTY');
    writeSync(fd, 'root\n');
    expect(dec(await rig.call<Uint8Array>('consoleRead', 5))).toBe('root\n');
    // Raw both ways: no echo back to the card, no CR/LF translation, every byte value.
    const bytes = pattern(6000, 3);
    await rig.call('consoleWrite', bytes);
    await until(() => seen.length === 12 + bytes.length, `${bytes.length} bytes on the PTY`);
    expect(sha256(Buffer.from(seen.slice(12), 'latin1'))).toBe(sha256(bytes));
    const typed = pattern(3000, 4).map((b) => (b === 0 || b === 4 ? 0x41 : b)); // no NUL/EOT
    writeSync(fd, typed);
    expect(sha256(await rig.call<Uint8Array>('consoleRead', typed.length))).toBe(sha256(typed));
    await devices.stop();
    expect(sha256(readFileSync(logPath))).toBe(
      sha256(Buffer.concat([Buffer.from('mic0 login: '), Buffer.from(bytes)])),
    );
  });

  it('a Unix socket client attaches and exchanges bytes with the card both ways; the log has the output', async () => {
    const rig = await bootCard(platform);
    const dir = tmp();
    const logPath = join(dir, 'console.log');
    const socketPath = join(dir, 'console.sock');
    const devices = track(await serveCard(rig.control, { console: { logPath, socketPath } }));
    const con = devices.console!;
    await con.waitDriverOk();
    await rig.call('waitDevices', ['console']);
    const client = net.connect(socketPath);
    cleanup(() => void client.destroy());
    await new Promise((res) => client.once('connect', res));
    const got: Buffer[] = [];
    client.on('data', (d: Buffer) => got.push(d));
    await until(() => con.backend.stats().clients === 1, 'the client attached');
    const out = pattern(100_000, 5);
    await rig.call('consoleWrite', 'boot: ok\n');
    await rig.call('consoleWrite', out);
    const want = Buffer.concat([Buffer.from('boot: ok\n'), Buffer.from(out)]);
    await until(() => Buffer.concat(got).length >= want.length, 'card output at the socket');
    expect(sha256(Buffer.concat(got))).toBe(sha256(want));
    const input = pattern(50_000, 6);
    client.write(input);
    expect(sha256(await rig.call<Uint8Array>('consoleRead', input.length))).toBe(sha256(input));
    await devices.stop();
    expect(sha256(readFileSync(logPath))).toBe(sha256(want));
  });
});
