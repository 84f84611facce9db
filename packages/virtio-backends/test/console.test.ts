// The console backend on the in-process adapter against a driver double: a PTY opened by its
// reported slave path, a Unix socket client, the log file, host code, input never larger than
// the card's receive buffer, and the options' errors.
import { execFileSync } from 'node:child_process';
import {
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tty from 'node:tty';
import { afterEach, describe, expect, it } from '@jest/globals';
import { VIRTIO_CONSOLE_F, decodeConsoleConfig, hasFeature } from '@mic/virtio';
import {
  CONSOLE_RECEIVEQ,
  CONSOLE_TRANSMITQ,
  ConsoleBackend,
  type ConsoleBackendOptions,
} from '../src/index.js';
import { type Rig, type Used, rig, until, errorCode } from './driver-double.js';

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'con-'));
  dirs.push(d);
  return d;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function start(
  options: Partial<ConsoleBackendOptions> = {},
): Promise<{ r: Rig; con: ConsoleBackend; dir: string }> {
  const dir = tmp();
  const con = await ConsoleBackend.open({ logPath: join(dir, 'console.log'), ...options });
  const r = await rig(con, [VIRTIO_CONSOLE_F.SIZE]);
  cleanups.push(() => r.stop());
  return { r, con, dir };
}

/** Keeps `count` receive buffers of `size` posted on the card side and collects what arrives. */
function receiver(r: Rig, count: number, size: number): { text(): string; used: Used[] } {
  const used: Used[] = [];
  const post = (): void => {
    void r.driver.post(CONSOLE_RECEIVEQ, [], [size]).then((u) => {
      used.push(u);
      post();
    });
  };
  for (let i = 0; i < count; i++) post();
  return { used, text: () => used.map((u) => dec(u.written[0]!.subarray(0, u.len))).join('') };
}

/** The card prints `s` (one transmit buffer). */
const print = (r: Rig, s: string): Promise<Used> => r.driver.post(CONSOLE_TRANSMITQ, [enc(s)], []);

describe('ConsoleBackend on the in-process transport', () => {
  it('exchanges bytes both ways with a terminal on the reported PTY slave path', async () => {
    const { r, con } = await start({ pty: true });
    expect(con.ptyPath).toMatch(/^\/dev\/pts\/\d+$/);
    const fd = openSync(con.ptyPath!, constants.O_RDWR | constants.O_NOCTTY);
    const term = new tty.ReadStream(fd);
    cleanups.push(() => void term.destroy());
    let seen = '';
    term.on('data', (d: Buffer) => (seen += d.toString()));
    await print(r, 'login: ');
    await until(() => seen === 'login: ', 'card output on the PTY');
    const rx = receiver(r, 4, 4096);
    writeSync(fd, 'root\n');
    await until(() => rx.text() === 'root\n', 'terminal input at the card');
    // Raw: no echo back to the card, no CR/LF translation.
    await print(r, 'a\nb');
    await until(() => seen === 'login: a\nb', 'second output');
    expect(rx.text()).toBe('root\n');
  });

  it('serves Unix socket clients both ways, a PTY at the same time, and keeps everything in the log', async () => {
    const dir = tmp();
    const socketPath = join(dir, 'console.sock');
    const { r, con } = await start({ socketPath, pty: true });
    const fd = openSync(con.ptyPath!, constants.O_RDWR | constants.O_NOCTTY);
    const term = new tty.ReadStream(fd);
    cleanups.push(() => void term.destroy());
    let onPty = '';
    term.on('data', (d: Buffer) => (onPty += d.toString()));
    const client = net.connect(socketPath);
    cleanups.push(() => void client.destroy());
    await new Promise((res) => client.once('connect', res));
    let seen = '';
    client.on('data', (d) => (seen += d.toString()));
    await until(() => con.stats().clients === 1, 'the client attached');
    for (const line of ['boot: ok\n', 'mic0 login: ']) await print(r, line);
    await until(() => seen === 'boot: ok\nmic0 login: ', 'output at the socket');
    await until(() => onPty === 'boot: ok\nmic0 login: ', 'output at the PTY');
    const rx = receiver(r, 2, 4096);
    client.write('hello card');
    await until(() => rx.text() === 'hello card', 'socket input at the card');
    await r.stop();
    expect(readFileSync(con.logPath, 'utf8')).toBe('boot: ok\nmic0 login: ');
  });

  it('appends to an existing log and tells host listeners what the card printed', async () => {
    const dir = tmp();
    const logPath = join(dir, 'console.log');
    writeFileSync(logPath, 'earlier boot\n');
    const con = await ConsoleBackend.open({ logPath });
    const r = await rig(con, []);
    cleanups.push(() => r.stop());
    const heard: string[] = [];
    con.onOutput((d) => heard.push(dec(d)));
    await print(r, 'Linux version 5.10\n');
    expect(heard).toEqual(['Linux version 5.10\n']);
    await r.stop();
    expect(readFileSync(logPath, 'utf8')).toBe('earlier boot\nLinux version 5.10\n');
  });

  it('never puts more into a receive buffer than it holds, and keeps the rest in order', async () => {
    const { r, con } = await start();
    const text = Array.from({ length: 200 }, (_, i) => `line ${i}\n`).join('');
    con.write(text); // before the card posts any buffer: kept
    const rx = receiver(r, 3, 16);
    await until(() => rx.text() === text, 'all input in 16-byte buffers');
    expect(rx.used.every((u) => u.len <= 16 && u.len > 0)).toBe(true);
    expect(con.stats().inputBytes).toBe(text.length);
  });

  it('pauses a fast typist past inputLimit and loses nothing', async () => {
    const dir = tmp();
    const socketPath = join(dir, 'console.sock');
    const { r } = await start({ socketPath, inputLimit: 1024 });
    const client = net.connect(socketPath);
    cleanups.push(() => void client.destroy());
    await new Promise((res) => client.once('connect', res));
    const text = Array.from({ length: 20_000 }, (_, i) => `${i},`).join('');
    client.write(text);
    await new Promise((res) => setTimeout(res, 50)); // the card has no buffers yet: input waits, paused
    const rx = receiver(r, 2, 512);
    await until(() => rx.text().length === text.length, 'all input at the card');
    expect(rx.text()).toBe(text);
  });

  it('logs a card buffer larger than the read chunk whole, in order', async () => {
    const { r, con } = await start();
    const big = Array.from({ length: 20_000 }, (_, i) => `${i % 10}`)
      .join('')
      .repeat(10);
    await print(r, big);
    await r.stop();
    expect(readFileSync(con.logPath, 'utf8')).toBe(big);
  });

  it('offers the console size (F_SIZE) and changes it with a config change', async () => {
    const { r, con } = await start({ size: { cols: 80, rows: 25 } });
    expect(hasFeature(r.transport.negotiatedFeatures(), VIRTIO_CONSOLE_F.SIZE)).toBe(true);
    expect(decodeConsoleConfig(r.transport.config())).toMatchObject({ cols: 80, rows: 25 });
    await con.resize(132, 43);
    expect(decodeConsoleConfig(r.driver.vdev!.readConfig(0, 12))).toMatchObject({ cols: 132, rows: 43 });
  });

  it('drops PTY output nobody reads past the limit, but the log keeps it all', async () => {
    const { r, con } = await start({ pty: true, outputLimit: 8192 });
    const big = 'x'.repeat(1000);
    for (let i = 0; i < 100; i++) await print(r, big);
    await until(() => con.stats().outputDropped > 0, 'PTY output dropped');
    await r.stop();
    expect(readFileSync(con.logPath, 'utf8').length).toBe(100 * 1000);
  });
});

describe('ConsoleBackend options', () => {
  const code = errorCode;

  it('gives one clear error per bad option', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'sub'));
    const log = join(dir, 'c.log');
    expect(await code(ConsoleBackend.open({ logPath: join(dir, 'no', 'c.log') }))).toBe('ENOENT');
    expect(await code(ConsoleBackend.open({ logPath: join(dir, 'sub') }))).toBe('EISDIR');
    expect(await code(ConsoleBackend.open({ logPath: '' }))).toBe('EINVAL');
    expect(await code(ConsoleBackend.open({ logPath: log, size: { cols: 70000, rows: 1 } }))).toBe('EINVAL');
    const sock = join(dir, 'in-use.sock');
    const other = net.createServer().listen(sock);
    await new Promise((res) => other.once('listening', res));
    expect(await code(ConsoleBackend.open({ logPath: log, socketPath: sock }))).toBe('EADDRINUSE');
    await new Promise((res) => other.close(res));
    const plain = join(dir, 'plain');
    writeFileSync(plain, 'x');
    expect(await code(ConsoleBackend.open({ logPath: log, socketPath: plain }))).toBe('EEXIST');
    expect(await code(ConsoleBackend.open({ logPath: log, socketPath: join(dir, 'no', 's.sock') }))).toBe(
      'ENOENT',
    );
    // A stale socket file (bound, nobody listening: a dead server's) is taken over.
    const stale = join(dir, 'stale.sock');
    execFileSync('python3', [
      '-c',
      'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      stale,
    ]);
    const con = await ConsoleBackend.open({ logPath: log, socketPath: stale });
    const c = net.connect(stale);
    await new Promise((res, rej) => c.once('connect', res).once('error', rej));
    c.destroy();
    await con.close();
  });
});
