import { describe, expect, it } from '@jest/globals';
import {
  MIC_DB_NONE,
  MIC_DP_SIZE,
  MIC_DPHI_SPAD,
  MIC_DPLO_SPAD,
  MIC_MAGIC,
  MIC_MAX_DESC_BLK_SIZE,
  MIC_MAX_VRING_ENTRIES,
  MIC_MAX_VRINGS,
  MIC_STATE_STRINGS,
  MIC_STATES,
  MIC_STATUS,
  MIC_STATUS_STRINGS,
  MIC_TYPE_END,
  MIC_TYPE_REMOVED,
  MIC_VIRTIO_PARAM_CONFIG_CHANGED,
  MIC_VIRTIO_PARAM_DEV_REMOVE,
  MIC_VIRTIO_RING_ALIGN,
  MIC_VRING_ENTRIES,
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_NET,
  micStateFromString,
  micStatusFromString,
} from '../src/index.js';

describe('MIC constants', () => {
  it('match the values of the uapi header and mic_dev.h', () => {
    expect({
      MIC_DP_SIZE,
      MIC_MAGIC,
      MIC_VIRTIO_RING_ALIGN,
      MIC_MAX_VRINGS,
      MIC_VRING_ENTRIES,
      MIC_MAX_VRING_ENTRIES,
      MIC_MAX_DESC_BLK_SIZE,
      MIC_VIRTIO_PARAM_DEV_REMOVE,
      MIC_VIRTIO_PARAM_CONFIG_CHANGED,
      MIC_DPLO_SPAD,
      MIC_DPHI_SPAD,
      MIC_DB_NONE,
      MIC_TYPE_END,
      MIC_TYPE_REMOVED,
      VIRTIO_ID_NET,
      VIRTIO_ID_BLOCK,
      VIRTIO_ID_CONSOLE,
    }).toEqual({
      MIC_DP_SIZE: 4096,
      MIC_MAGIC: 0xc0ffee00,
      MIC_VIRTIO_RING_ALIGN: 4096,
      MIC_MAX_VRINGS: 4,
      MIC_VRING_ENTRIES: 128,
      MIC_MAX_VRING_ENTRIES: 128,
      MIC_MAX_DESC_BLK_SIZE: 256,
      MIC_VIRTIO_PARAM_DEV_REMOVE: 1,
      MIC_VIRTIO_PARAM_CONFIG_CHANGED: 2,
      MIC_DPLO_SPAD: 14,
      MIC_DPHI_SPAD: 15,
      MIC_DB_NONE: -1,
      MIC_TYPE_END: 0,
      MIC_TYPE_REMOVED: -1,
      VIRTIO_ID_NET: 1,
      VIRTIO_ID_BLOCK: 2,
      VIRTIO_ID_CONSOLE: 3,
    });
  });

  it('number the card states as the final enum mic_states and name them as sysfs does', () => {
    expect(MIC_STATES).toEqual({
      READY: 0,
      BOOTING: 1,
      ONLINE: 2,
      SHUTTING_DOWN: 3,
      RESETTING: 4,
      RESET_FAILED: 5,
      LAST: 6,
    });
    expect(Object.values(MIC_STATE_STRINGS)).toEqual([
      'ready',
      'booting',
      'online',
      'shutting_down',
      'resetting',
      'reset_failed',
    ]);
    expect(MIC_STATE_STRINGS[MIC_STATES.SHUTTING_DOWN]).toBe('shutting_down');
  });

  it('number the shutdown statuses as enum mic_status and spell POWER_OFF as poweroff', () => {
    expect(MIC_STATUS).toEqual({ NOP: 0, CRASHED: 1, HALTED: 2, POWER_OFF: 3, RESTART: 4, STATUS_LAST: 5 });
    expect(MIC_STATUS_STRINGS[MIC_STATUS.POWER_OFF]).toBe('poweroff');
    expect(Object.keys(MIC_STATUS_STRINGS)).toHaveLength(MIC_STATUS.STATUS_LAST);
  });

  it('maps every sysfs string back to its value and rejects unknown strings', () => {
    for (const [value, name] of Object.entries(MIC_STATE_STRINGS)) {
      expect(micStateFromString(name)).toBe(Number(value));
    }
    for (const [value, name] of Object.entries(MIC_STATUS_STRINGS)) {
      expect(micStatusFromString(name)).toBe(Number(value));
    }
    expect(micStateFromString('offline')).toBeUndefined();
    expect(micStateFromString('ready\n')).toBeUndefined();
    expect(micStatusFromString('power_off')).toBeUndefined();
  });
});
