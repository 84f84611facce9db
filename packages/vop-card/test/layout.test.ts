import { describe, expect, it } from '@jest/globals';
import { readBytes } from '@mic/memory';
import { VIRTIO_CONFIG_S, features } from '@mic/virtio';
import { setupCard } from './setup.js';

const { ACKNOWLEDGE, DRIVER, DRIVER_OK } = VIRTIO_CONFIG_S;

/** mpssd's three devices: console, net (v5.10 headers: 24-byte config), block (60-byte config). */
const CONSOLE = { type: 3, nums: [128, 128], config: new Uint8Array(12) };
const NET = { type: 1, nums: [128, 128], config: new Uint8Array(24), features: features(0, 6, 7, 8, 9) };
const BLOCK = { type: 2, nums: [128], config: new Uint8Array(60), features: features(2) };

/**
 * Card-written fields of each entry, from the reference formulas (mic-vop.md §1.4–1.6):
 * desc at O; status O+4; used_address of vq i at O+8+24i+8; guest acks at O+8+24·num_vq+4
 * (feature_len 4); ctrl C at O + aligned(8+24·num_vq+2·4+config_len): vdev C+0..7,
 * vdev_reset C+9, guest_ack C+10, host_ack C+11, used_address_updated C+12, h2c_vdev_db C+14.
 */
const ENTRIES = [
  { name: 'console', offset: 24, status: 28, used: [40, 64], acks: 84, ctrl: 104 },
  { name: 'net', offset: 120, status: 124, used: [136, 160], acks: 180, ctrl: 208 },
  { name: 'block', offset: 224, status: 228, used: [240], acks: 260, ctrl: 328 },
] as const;

describe('what the card writes lands at the offsets of the reference formulas', () => {
  it('console, net and block at 24, 120 and 224: config db, doorbells, used addresses, acks, status, handles', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET, BLOCK], featureTable: [0, 5, 7], probe: false });
    expect(s.hostDevs.map((d) => d.offset)).toEqual([24, 120, 224]);
    const before = readBytes(s.host.dp, 0, 4096).slice();
    await s.probe();
    const after = readBytes(s.host.dp, 0, 4096).slice();
    const dp = s.host.dp;

    // The card publishes its config doorbell at bootparam offset 4, after the initial scan:
    // devices took card doorbells 0, 1, 2 (least used), the config interrupt 3.
    expect(after[4]).toBe(3);
    const allowed = new Set<number>([4]);
    const handles: number[] = [];
    const usedAddresses: number[] = [];
    ENTRIES.forEach((e, i) => {
      const c = e.ctrl;
      expect(after[e.offset]).toBe(before[e.offset]); // type untouched
      expect(after[e.status]).toBe(ACKNOWLEDGE | DRIVER | DRIVER_OK);
      expect(after[c + 14]).toBe(i); // h2c_vdev_db
      expect(after[c + 13]).toBe(before[c + 13]); // c2h_vdev_db is the host's
      expect(after[c + 12]).toBe(0); // used_address_updated: set by the card, cleared by the host
      expect(after[c + 9]).toBe(0); // vdev_reset: set by the card, cleared by the host
      expect(after[c + 11]).toBe(1); // host_ack: cleared by the card, set by the host
      expect(after[c + 8]).toBe(0); // config_change
      expect(after[c + 10]).toBe(0); // guest_ack
      handles.push(dp.readU64(c));
      for (const u of e.used) usedAddresses.push(dp.readU64(u));
      for (const o of [e.status, c + 9, c + 11, c + 12, c + 14]) allowed.add(o);
      for (let k = 0; k < 8; k++) allowed.add(c + k);
      for (let k = 0; k < 4; k++) allowed.add(e.acks + k);
      for (const u of e.used) for (let k = 0; k < 8; k++) allowed.add(u + k);
    });
    // Guest acks: net negotiated bits 0 and 7 of the offered 0, 6, 7, 8, 9 (0x3C1); the others none.
    expect([...after.subarray(84, 88)]).toEqual([0, 0, 0, 0]);
    expect([...after.subarray(180, 184)]).toEqual([0x81, 0, 0, 0]);
    expect([...after.subarray(260, 264)]).toEqual([0, 0, 0, 0]);
    // Host features stay as the host wrote them (net at 176..179: 0xC1 0x03).
    expect([...after.subarray(176, 180)]).toEqual([0xc1, 0x03, 0, 0]);
    // Handles: opaque, non-zero, distinct. Used rings: page-aligned card addresses, distinct.
    expect(new Set(handles).size).toBe(3);
    expect(handles.every((h) => h > 0)).toBe(true);
    expect(new Set(usedAddresses).size).toBe(5);
    for (const a of usedAddresses) {
      expect(a % 4096).toBe(0);
      expect(a).toBeGreaterThan(0);
      expect(a).toBeLessThan(s.link.cardRam.byteLength);
    }
    // Nothing else of the page changed: entries end at 344 with the terminator.
    const changed = [...after.keys()].filter((o) => after[o] !== before[o]);
    expect(changed.filter((o) => !allowed.has(o))).toEqual([]);
    expect(after[344]).toBe(0);
  });

  it('zeroes the host vring below round_up(vring_size, 4) = 5128 and keeps _mic_vring_info', async () => {
    const s = await setupCard({ devices: [BLOCK], probe: false });
    const vring = s.hostDevs[0]!.vrings[0]!.va;
    vring.fill(0, 5128, 0xa5);
    vring.writeU16(5128, 0x1234); // _mic_vring_info.avail_idx
    await s.probe();
    expect(s.testDriver.probed).toHaveLength(1);
    const bytes = readBytes(vring, 0, 8192);
    expect(bytes.subarray(0, 5128).every((b) => b === 0)).toBe(true);
    expect(vring.readU16(5128)).toBe(0x1234);
    expect(vring.readU32(5132)).toBe(0xc0ffee02); // MIC_MAGIC + type 2 + index 0
  });
});
