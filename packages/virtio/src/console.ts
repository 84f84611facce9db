/**
 * virtio-console feature bits, `struct virtio_console_config` and control messages.
 *
 * @see include/uapi/linux/virtio_console.h
 * @see virtio 1.2 §5.3
 */
import { MicError } from '@mic/errors';

/** virtio-console feature bit numbers (virtio 1.2 §5.3.3). */
export const VIRTIO_CONSOLE_F = { SIZE: 0, MULTIPORT: 1, EMERG_WRITE: 2 } as const;

/** Control message events (`struct virtio_console_control.event`). */
export const VIRTIO_CONSOLE_EVENT = {
  DEVICE_READY: 0,
  DEVICE_ADD: 1,
  DEVICE_REMOVE: 2,
  PORT_READY: 3,
  CONSOLE_PORT: 4,
  RESIZE: 5,
  PORT_OPEN: 6,
  PORT_NAME: 7,
} as const;

/** `struct virtio_console_config` (12 bytes). */
export interface VirtioConsoleConfig {
  cols: number;
  rows: number;
  maxNrPorts: number;
  emergWr: number;
}

/** Bytes of `struct virtio_console_config`. */
export const VIRTIO_CONSOLE_CONFIG_SIZE = 12;
/** Bytes of `struct virtio_console_control`. */
export const VIRTIO_CONSOLE_CONTROL_SIZE = 8;

/** Encodes the console config space. */
export function encodeConsoleConfig(c: VirtioConsoleConfig): Uint8Array {
  const b = new Uint8Array(VIRTIO_CONSOLE_CONFIG_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, c.cols, true);
  dv.setUint16(2, c.rows, true);
  dv.setUint32(4, c.maxNrPorts, true);
  dv.setUint32(8, c.emergWr, true);
  return b;
}

/** Decodes the console config space. */
export function decodeConsoleConfig(bytes: Uint8Array): VirtioConsoleConfig {
  if (bytes.length < VIRTIO_CONSOLE_CONFIG_SIZE) {
    throw new MicError('EINVAL', `virtio_console_config needs 12 bytes, got ${bytes.length}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_CONSOLE_CONFIG_SIZE);
  return {
    cols: dv.getUint16(0, true),
    rows: dv.getUint16(2, true),
    maxNrPorts: dv.getUint32(4, true),
    emergWr: dv.getUint32(8, true),
  };
}

/** `struct virtio_console_control` `{ le32 id; le16 event; le16 value }`. */
export interface VirtioConsoleControl {
  id: number;
  event: number;
  value: number;
}

/** Encodes a control message (8 bytes). */
export function encodeConsoleControl(m: VirtioConsoleControl): Uint8Array {
  const b = new Uint8Array(VIRTIO_CONSOLE_CONTROL_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, m.id, true);
  dv.setUint16(4, m.event, true);
  dv.setUint16(6, m.value, true);
  return b;
}

/** Decodes a control message. */
export function decodeConsoleControl(bytes: Uint8Array): VirtioConsoleControl {
  if (bytes.length < VIRTIO_CONSOLE_CONTROL_SIZE) {
    throw new MicError('EINVAL', `virtio_console_control needs 8 bytes, got ${bytes.length}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_CONSOLE_CONTROL_SIZE);
  return { id: dv.getUint32(0, true), event: dv.getUint16(4, true), value: dv.getUint16(6, true) };
}
