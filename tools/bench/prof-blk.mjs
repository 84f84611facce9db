// scratch profiling harness (not committed)
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardRig, FAST_COPY_RIG, serveCard } from '@mic/demo';
const variant = process.argv[2] ?? 'default';
const depth = Number(process.argv[3] ?? 8);
const dir = await mkdtemp(join(tmpdir(), 'blkprof-'));
const image = join(dir, 'disk.img');
const fh = await open(image, 'w');
const chunk = new Uint8Array(4 << 20).fill(7);
for (let at = 0; at < 128 << 20; at += chunk.length) await fh.write(chunk, 0, chunk.length, at);
await fh.close();
const rig = await CardRig.boot({ platform: 'worker', ...(variant === 'fast' ? FAST_COPY_RIG : {}) });
const devices = await serveCard(rig.control, { block: { path: image, queueDepth: 32 } });
await devices.block.waitDriverOk();
await rig.call('waitDevices', ['block']);
const burst = { op: process.argv[4] ?? 'read', size: 128 << 10, depth, count: 400 };
await rig.call('blkBurst', burst);
for (let i = 0; i < 3; i++) {
  const c0 = process.cpuUsage();
  const r = await rig.call('blkBurst', { ...burst, count: 3000 });
  const cu = process.cpuUsage(c0);
  console.log(variant, `qd${depth}`, (r.bytes / r.ms / 1e6).toFixed(2), 'GB/s', 'proc cpu us/req', ((cu.user + cu.system) / 3000).toFixed(1));
}
await devices.stop();
await rig.stopCard();
await rig.close();
