/**
 * Device ids, id tables and modalias strings, as the MIC buses match them.
 *
 * @see drivers/misc/mic/bus/vop_bus.c `vop_dev_match`
 * @see drivers/misc/mic/bus/mic_bus.c `mbus_dev_match`
 * @see drivers/misc/mic/bus/scif_bus.c `scif_dev_match`
 */
import { MicError, formatValue } from '@mic/errors';

/** The wildcard of a device id table entry (`VOP_DEV_ANY_ID`, `MBUS_DEV_ANY_ID`, `SCIF_DEV_ANY_ID`). */
export const ANY_ID = 0xffffffff;

/**
 * A device id: `struct vop_device_id`, `struct mbus_device_id`, `struct scif_hw_dev_id`. Both fields
 * are u32. Devices on the MIC buses always carry `vendor === ANY_ID`.
 *
 * @see drivers/misc/mic/bus/vop_bus.h
 */
export interface DeviceId {
  readonly device: number;
  readonly vendor: number;
}

/**
 * A driver's id table. Matching walks it until an entry with `device === 0` (the kernel's `{ 0 }`
 * terminator); a table without a terminator is walked to its end.
 */
export type IdTable = readonly DeviceId[];

const isU32 = (v: unknown): boolean =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** True when `id` is an object whose `device` and `vendor` are u32 integers. */
export const isDeviceId = (id: unknown): id is DeviceId =>
  typeof id === 'object' &&
  id !== null &&
  isU32((id as Partial<DeviceId>).device) &&
  isU32((id as Partial<DeviceId>).vendor);

/** A device id as messages show it: `{device: 1, vendor: 10n}`, or the value that is not an object. */
export function describeDeviceId(id: unknown): string {
  if (typeof id !== 'object' || id === null) return formatValue(id);
  const { device, vendor } = id as { device?: unknown; vendor?: unknown };
  return `{device: ${formatValue(device)}, vendor: ${formatValue(vendor)}}`;
}

/** Throws `EINVAL` unless both fields of `id` are u32 integers. */
export function checkDeviceId(what: string, id: DeviceId): void {
  if (!isDeviceId(id)) {
    throw new MicError('EINVAL', `${what} ${describeDeviceId(id)} is not a {device, vendor} pair of u32`, {
      details: { id: describeDeviceId(id) },
    });
  }
}

/**
 * Throws `EINVAL` unless `table` is an array of `{device, vendor}` u32 pairs: the check the id-table
 * buses run on a driver before adding it. The message names the first entry that is not one.
 */
export function checkIdTable(what: string, table: unknown): void {
  if (!Array.isArray(table)) {
    throw new MicError(
      'EINVAL',
      `${what} ${formatValue(table)} is not an array of {device, vendor} u32 pairs`,
    );
  }
  for (let i = 0; i < table.length; i++) {
    const entry: unknown = table[i];
    if (!isDeviceId(entry)) {
      throw new MicError(
        'EINVAL',
        `${what}[${i}] ${describeDeviceId(entry)} is not a {device, vendor} pair of u32`,
        { details: { index: i } },
      );
    }
  }
}

/**
 * The entry of `table` that matches `id`, or `undefined`. An entry matches when its device equals
 * the device's or is {@link ANY_ID}, and its vendor is {@link ANY_ID} or equals the device's. The
 * walk stops at the first entry whose device is 0.
 *
 * @see drivers/misc/mic/bus/vop_bus.c `vop_id_match`
 */
export function matchIdTable(table: IdTable, id: DeviceId): DeviceId | undefined {
  checkIdTable('id table', table);
  checkDeviceId('device id', id);
  for (const entry of table) {
    if (entry.device === 0) return undefined;
    if (
      (entry.device === id.device || entry.device === ANY_ID) &&
      (entry.vendor === ANY_ID || entry.vendor === id.vendor)
    ) {
      return entry;
    }
  }
  return undefined;
}

const hex8 = (v: number): string => (v >>> 0).toString(16).toUpperCase().padStart(8, '0');

/**
 * The modalias of a device: `<prefix>:d%08Xv%08X`, e.g. `vop:d00000001vFFFFFFFF`. The buses use the
 * prefixes `vop`, `mbus` and `scif`; the COSM bus has no id table and no modalias.
 *
 * @see drivers/misc/mic/bus/vop_bus.c `vop_uevent`
 */
export function formatModalias(prefix: string, id: DeviceId): string {
  checkDeviceId('device id', id);
  return `${prefix}:d${hex8(id.device)}v${hex8(id.vendor)}`;
}

/**
 * The `device` and `vendor` sysfs attributes of a device, printed as `0x%04x`
 * (`0x0001`, `0xffffffff`), and its modalias.
 *
 * @see drivers/misc/mic/bus/vop_bus.c `device_show`, `vendor_show`, `modalias_show`
 */
export function idAttributes(
  prefix: string,
  id: DeviceId,
): { readonly device: string; readonly vendor: string; readonly modalias: string } {
  checkDeviceId('device id', id);
  const attr = (v: number): string => `0x${(v >>> 0).toString(16).padStart(4, '0')}`;
  return { device: attr(id.device), vendor: attr(id.vendor), modalias: formatModalias(prefix, id) };
}
