/**
 * The demo: one card on the x100 `worker` platform with console, net and block over VOP, served
 * by the host backends (console on a PTY and a log file, net on the userspace switch, block on a
 * 64 MiB image in a temporary directory). Each step is reported as it happens; the result is one
 * object (the CLI prints it with `--json`). Everything it made is freed at the end.
 */
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { parseMac } from '@mic/virtio-backends';
import { type FrameBurst, framesCardToHost, framesHostToCard } from './bursts.js';
import type { BurstResult, CardDeviceSummary } from './card-os.js';
import { CARD_DEFAULT_IPV4 } from './card-os.js';
import { type CardDevices, CardRig, type ServedDevice, serveCard } from './host.js';
import { sha256 } from './pattern.js';
import { ping, type PingResult } from './ping.js';

const MIB = 1 << 20;
const VIRTIO_NAMES: Record<number, string> = {
  1: 'VIRTIO_ID_NET',
  2: 'VIRTIO_ID_BLOCK',
  3: 'VIRTIO_ID_CONSOLE',
};

/** The switch endpoint the demo pings from: the host side of the card's subnet. */
export const HOST_PORT = Object.freeze({ mac: '02:00:00:00:00:fe', ipv4: '172.31.1.254' });

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Gets each step as a line, as it happens. */
  readonly report?: (line: string) => void;
  /** Where library log records go (default nowhere). */
  readonly logger?: Logger;
  /** The image size (default 64 MiB). */
  readonly imageBytes?: number;
  /** Scales the measured bursts (default 1). */
  readonly scale?: number;
}

/** One added device as the demo reports it. */
export interface DemoDevice {
  readonly kind: 'console' | 'net' | 'block';
  readonly type: string;
  readonly offset: number;
  /** Feature bits the card's driver accepted (hex). */
  readonly features: string;
  /** Milliseconds from the add to DRIVER_OK. */
  readonly driverOkMs: number;
}

/** A throughput figure of one burst. */
export interface DemoThroughput {
  readonly what: string;
  readonly bytes: number;
  readonly ms: number;
  /** Bytes per second. */
  readonly bytesPerSecond: number;
  /** Frames per second (net only). */
  readonly framesPerSecond?: number;
}

/** What {@link runDemo} returns (and `--json` prints). */
export interface DemoResult {
  readonly ok: boolean;
  readonly platform: 'worker';
  readonly tempDir: string;
  readonly imageBytes: number;
  readonly devices: readonly DemoDevice[];
  readonly card: CardDeviceSummary;
  readonly console: { readonly ptyPath: string | null; readonly line: string; readonly inLog: boolean };
  readonly ping: PingResult & { readonly from: typeof HOST_PORT; readonly to: string };
  readonly block: {
    readonly sector: number;
    readonly bytes: number;
    readonly cardSha256: string;
    readonly hostSha256: string;
    readonly match: boolean;
  };
  readonly throughput: readonly DemoThroughput[];
  readonly shutdown: {
    readonly hostRamBytes: number;
    readonly tempDirRemoved: boolean;
  };
}

const fmtRate = (bps: number): string =>
  bps >= 1e9 ? `${(bps / 1e9).toFixed(2)} GB/s` : `${(bps / 1e6).toFixed(1)} MB/s`;
const fmtMs = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));

/** Runs the demo. Rejects (after cleaning up) when a step fails. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const report = options.report ?? (() => {});
  const log = options.logger ?? nullLogger;
  const imageBytes = options.imageBytes ?? 64 * MIB;
  const scale = options.scale ?? 1;
  const dir = await mkdtemp(join(tmpdir(), 'mic-demo-'));
  const image = join(dir, 'mic0.img');
  const logPath = join(dir, 'console.log');
  let rig: CardRig | null = null;
  let devices: CardDevices | null = null;
  let removed = false;
  try {
    const fh = await open(image, 'w');
    await fh.truncate(imageBytes);
    await fh.close();
    report(`temp dir ${dir}: mic0.img (${imageBytes / MIB} MiB, sparse), console.log`);

    rig = await CardRig.boot({ platform: 'worker', logger: log });
    report(
      'card booted on the x100 worker platform (the card program in its own thread): mic-host with the X100 DMA driver, vop-host on the VOP bus',
    );

    const added = new Map<ServedDevice<never>, number>();
    devices = await serveCard(rig.control, {
      logger: log,
      console: { logPath, pty: true },
      net: {},
      block: { path: image, serial: 'mic0-demo' },
      onAdded: (kind, d) => {
        added.set(d as ServedDevice<never>, performance.now());
        const what =
          kind === 'console'
            ? `host end: ${devices?.console?.backend.ptyPath ?? 'a PTY'} and console.log`
            : kind === 'net'
              ? 'host end: the userspace switch'
              : `host end: mic0.img, ${imageBytes / 512} sectors`;
        report(
          `added ${VIRTIO_NAMES[d.transport.deviceType]} for mic0 at device page offset ${d.offset} (${what})`,
        );
      },
    });
    const con = devices.console!;
    const net = devices.net!;
    if (con.backend.ptyPath)
      report(`console PTY: ${con.backend.ptyPath} (attach with: screen ${con.backend.ptyPath})`);

    const ready = await Promise.all(
      devices.all.map(async (d) => {
        await d.waitDriverOk();
        const ms = performance.now() - added.get(d as ServedDevice<never>)!;
        const kind = d === con ? 'console' : d === net ? 'net' : 'block';
        const features = `0x${d.transport.negotiatedFeatures().toString(16)}`;
        report(`DRIVER_OK: ${kind} (features ${features}) ${fmtMs(ms)} ms after the add`);
        return {
          kind,
          type: VIRTIO_NAMES[d.transport.deviceType]!,
          offset: d.offset,
          features,
          driverOkMs: ms,
        } as const;
      }),
    );
    const card = await rig.call<CardDeviceSummary>('waitDevices', ['console', 'net', 'block']);
    report(
      `card drivers bound: virtio_console (port 0), virtio_net (MAC ${card.net!.mac}, answering ARP and ping for ${card.net!.ipv4}), virtio_blk (${card.block!.capacity} sectors${card.block!.canFlush ? ', flush' : ''})`,
    );

    // Console: a line the card writes, as the host sees it (and the log has it).
    const text = `mic0: hello from the card program over virtio-console (${card.net!.mac})`;
    const lineSeen = new Promise<string>((resolve) => {
      let acc = '';
      const off = con.backend.onOutput((b) => {
        acc += Buffer.from(b).toString();
        const nl = acc.indexOf('\n');
        if (nl >= 0) {
          off();
          resolve(acc.slice(0, nl));
        }
      });
    });
    await rig.call('consoleWrite', `${text}\n`);
    const line = await lineSeen;
    const inLog = await waitLog(logPath, text);
    report(`console: the card wrote "${line}"${inLog ? ' (also in console.log)' : ''}`);

    // Net: ARP and ICMP echo from a switch endpoint to the card's responder.
    const port = net.backend.switch!.port('host');
    const pinged = await ping(port, {
      srcMac: HOST_PORT.mac,
      srcIp: HOST_PORT.ipv4,
      dstIp: CARD_DEFAULT_IPV4,
      count: 3,
    });
    const rtts = pinged.rttMs;
    report(
      `ping ${CARD_DEFAULT_IPV4} from switch endpoint ${HOST_PORT.mac} (${HOST_PORT.ipv4}): ARP reply from ${pinged.mac} in ${fmtMs(pinged.arpMs)} ms; ` +
        `${rtts.length} echo replies, rtt min/avg/max ${fmtMs(Math.min(...rtts))}/${fmtMs(rtts.reduce((a, b) => a + b, 0) / rtts.length)}/${fmtMs(Math.max(...rtts))} ms`,
    );

    // Block: the card writes a pattern and flushes; the host reads the image file there.
    const sector = (8 * MIB) / 512;
    const bytes = MIB;
    const cardSha = await rig.call<string>('blkWritePattern', sector, bytes, 42);
    await rig.call('blkFlush');
    const img = await open(image, 'r');
    const back = new Uint8Array(bytes);
    await img.read(back, 0, bytes, sector * 512);
    await img.close();
    const hostSha = sha256(back);
    report(
      `block: the card wrote ${bytes / MIB} MiB at sector ${sector} and flushed, sha256 ${cardSha.slice(0, 16)}…; ` +
        `the host read mic0.img at ${(sector * 512) / MIB} MiB: sha256 ${hostSha.slice(0, 16)}… (${cardSha === hostSha ? 'same' : 'DIFFERENT'})`,
    );

    // Throughput: a short measured burst per device.
    const throughput: DemoThroughput[] = [];
    const put = (what: string, r: BurstResult | FrameBurst, frames?: number): void => {
      const t: DemoThroughput = {
        what,
        bytes: r.bytes,
        ms: r.ms,
        bytesPerSecond: r.bytes / (r.ms / 1000),
        ...(frames === undefined ? {} : { framesPerSecond: frames / (r.ms / 1000) }),
      };
      throughput.push(t);
      const extra =
        t.framesPerSecond === undefined
          ? ''
          : `, ${Math.round(t.framesPerSecond / 1000)}k frames/s, ${((t.bytesPerSecond * 8) / 1e9).toFixed(2)} Gbit/s`;
      report(
        `  ${what}: ${fmtRate(t.bytesPerSecond)}${extra} (${(r.bytes / MIB).toFixed(1)} MiB in ${fmtMs(r.ms)} ms)`,
      );
    };
    report('throughput (short bursts, card driver <-> host backend):');
    const blkCount = Math.max(16, Math.round(256 * scale));
    put(
      'block sequential read, 128 KiB requests, depth 8',
      await rig.call<BurstResult>('blkBurst', { op: 'read', size: 128 << 10, depth: 8, count: blkCount }),
    );
    put(
      'block sequential write, 128 KiB requests, depth 8',
      await rig.call<BurstResult>('blkBurst', {
        op: 'write',
        size: 128 << 10,
        depth: 8,
        count: blkCount >> 1,
      }),
    );
    const frames = Math.max(1000, Math.round(20_000 * scale));
    const c2h = await framesCardToHost(rig, port, HOST_PORT.mac, frames, 1514);
    put('net card -> host, 1514-byte frames through the switch', c2h, c2h.frames);
    const h2c = await framesHostToCard(
      rig,
      port,
      net.backend,
      { card: parseMac(card.net!.mac), port: parseMac(HOST_PORT.mac) },
      frames,
      1514,
    );
    put('net host -> card, 1514-byte frames through the switch', h2c, h2c.frames);
    put(
      'console card -> host, 4 KiB writes',
      await rig.call<BurstResult>('consoleBurst', Math.max(256 << 10, Math.round(4 * MIB * scale)), 4096),
    );

    // Shutdown: hot-unplug every device, stop and reset the card, free everything.
    await devices.stop();
    report('devices removed (hot-unplug: the card unbound its drivers), backends closed');
    await rig.stopCard();
    const hostRamBytes = rig.hostRamUsed();
    await rig.close();
    rig = null;
    await rm(dir, { recursive: true, force: true });
    removed = !(await stat(dir)
      .then(() => true)
      .catch(() => false));
    report(
      `card stopped and reset, host drivers unbound; host RAM in use ${hostRamBytes} bytes (the device page); temp dir ${removed ? 'removed' : 'NOT removed'}`,
    );
    return {
      ok: cardSha === hostSha && line === text && removed,
      platform: 'worker',
      tempDir: dir,
      imageBytes,
      devices: ready,
      card,
      console: { ptyPath: con.backend.ptyPath, line, inLog },
      ping: { ...pinged, from: HOST_PORT, to: CARD_DEFAULT_IPV4 },
      block: { sector, bytes, cardSha256: cardSha, hostSha256: hostSha, match: cardSha === hostSha },
      throughput,
      shutdown: { hostRamBytes, tempDirRemoved: removed },
    };
  } catch (err) {
    log.error('demo failed', { error: errorMessage(err) });
    throw err;
  } finally {
    if (devices) await devices.stop().catch(() => {});
    if (rig) await rig.close().catch(() => {});
    if (!removed) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The log is written behind the output listeners: wait for it a little. */
async function waitLog(path: string, text: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((await readFile(path, 'utf8').catch(() => '')).includes(text)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}
