/**
 * Loading the card OS into the aperture (`mic_x100_load_firmware` and its helpers): the image
 * at the boot address the firmware reports in `SPAD2`, its size in `SPAD5`, the kernel command
 * line right after it and the ramdisk at twice the boot address, with the Linux `boot_params`
 * header patched to point at it.
 *
 * The x100 model does not interpret what is written: the platform's card code is the OS. The
 * bytes still land where the kernel puts them, so a reader of the aperture sees a real layout.
 *
 * @see drivers/misc/mic/host/mic_x100.c (`mic_x100_load_firmware`, `mic_x100_load_command_line`,
 * `mic_x100_load_ramdisk`, `mic_x100_get_boot_addr`)
 */
import type { CosmBootConfig } from '@mic/cosm-bus';
import { MicError } from '@mic/errors';
import { X100_SPAD, type X100HostView } from '@mic/x100';

/**
 * Where firmware files come from (`request_firmware`), injected by the caller.
 *
 * @example
 * const firmware: FirmwareLoader = { request: (name) => readFile(join('/lib/firmware', name)) };
 */
export interface FirmwareLoader {
  /**
   * The bytes of firmware file `name` (e.g. `mic/uos.img`).
   * @throws MicError ENOENT when there is no such file
   */
  request(name: string): Uint8Array | Promise<Uint8Array>;
}

/** Size of the command line buffer (`CMDLINE_SIZE`). */
export const MIC_CMDLINE_SIZE = 2048;

/**
 * Offsets in the Linux `struct boot_params` the host patches for a ramdisk
 * (`hdr.ramdisk_image`, `hdr.ramdisk_size`).
 * @see arch/x86/include/uapi/asm/bootparam.h
 */
export const BOOT_PARAMS_RAMDISK = { IMAGE: 0x218, SIZE: 0x21c } as const;

/** What {@link loadFirmware} put where, for logs and tests. */
export interface FirmwareLayout {
  /** Card address of the image (`SPAD2` bits 31:12). */
  readonly bootAddr: number;
  /** Bytes of the image (also in `SPAD5`). */
  readonly fwSize: number;
  /** The command line written after the image, without its terminating NUL. */
  readonly cmdline: string;
  /** Card address and size of the ramdisk, when there is one. */
  readonly ramdisk: { readonly addr: number; readonly size: number } | null;
}

/**
 * Checks the boot settings `_mic_start` needs before anything is registered: bootmode `linux`
 * (x100 cannot boot `flash`) and a firmware name.
 * @throws MicError EINVAL otherwise
 */
export function checkBootConfig(boot: CosmBootConfig): void {
  if (typeof boot !== 'object' || boot === null)
    throw new MicError('EINVAL', 'boot settings are not an object');
  if (boot.bootmode !== 'linux') {
    throw new MicError(
      'EINVAL',
      `bootmode ${JSON.stringify(boot.bootmode)} cannot boot an x100: only linux can`,
      {
        details: { bootmode: boot.bootmode },
      },
    );
  }
  if (typeof boot.firmware !== 'string' || boot.firmware === '') {
    throw new MicError('EINVAL', `firmware name ${JSON.stringify(boot.firmware)} is not a non-empty string`, {
      details: { firmware: boot.firmware },
    });
  }
}

async function request(loader: FirmwareLoader | undefined, name: string): Promise<Uint8Array> {
  if (!loader) return new Uint8Array(0);
  const bytes = await loader.request(name);
  if (!(bytes instanceof Uint8Array)) {
    throw new MicError('EINVAL', `the firmware loader returned no bytes for ${name}`, { details: { name } });
  }
  return bytes;
}

/**
 * Loads firmware, command line and ramdisk into the aperture (`mic_x100_load_firmware`). Without a
 * loader the image is empty (the model boots the platform's card code either way) and only the
 * command line is written.
 * @throws MicError EBUSY when the firmware does not wait for a download (`SPAD2` bit 0 clear),
 * EINVAL when the image or ramdisk does not fit in the aperture, or what the loader threw
 */
export async function loadFirmware(
  host: X100HostView,
  boot: CosmBootConfig,
  loader: FirmwareLoader | undefined,
): Promise<FirmwareLayout> {
  checkBootConfig(boot);
  const info = host.downloadInfo();
  if (!info.ready) {
    throw new MicError('EBUSY', 'the card firmware is not ready for a download (SPAD2 bit 0 is clear)');
  }
  const aperLen = host.aperture.byteLength;
  const bootAddr = info.bootAddr;
  const image = await request(loader, boot.firmware!);
  if (bootAddr > aperLen - image.byteLength) {
    throw new MicError(
      'EINVAL',
      `firmware ${boot.firmware} of ${image.byteLength} bytes does not fit at 0x${bootAddr.toString(16)} in a ${aperLen}-byte aperture`,
      { details: { firmware: boot.firmware, size: image.byteLength, bootAddr, aperLen } },
    );
  }
  host.aperture.write(bootAddr, image);
  host.writeSpad(X100_SPAD.FW_SIZE, image.byteLength);

  let cmdline = ` mem=${Math.floor(aperLen / (1 << 20))}M`;
  if (boot.cmdline) cmdline += ` ${boot.cmdline}`;
  const bytes = new TextEncoder().encode(cmdline).subarray(0, MIC_CMDLINE_SIZE - 1);
  const at = bootAddr + image.byteLength;
  if (at + bytes.byteLength + 1 > aperLen) {
    throw new MicError('EINVAL', `the command line does not fit after the firmware in the aperture`, {
      details: { at, length: bytes.byteLength + 1, aperLen },
    });
  }
  host.aperture.write(at, bytes);
  host.aperture.writeU8(at + bytes.byteLength, 0);

  let ramdisk: FirmwareLayout['ramdisk'] = null;
  if (boot.ramdisk) {
    const rd = await request(loader, boot.ramdisk);
    const addr = 2 * bootAddr;
    if (addr > aperLen - rd.byteLength || bootAddr + BOOT_PARAMS_RAMDISK.SIZE + 4 > aperLen) {
      throw new MicError(
        'EINVAL',
        `ramdisk ${boot.ramdisk} of ${rd.byteLength} bytes does not fit at 0x${addr.toString(16)} in a ${aperLen}-byte aperture`,
        { details: { ramdisk: boot.ramdisk, size: rd.byteLength, addr, aperLen } },
      );
    }
    host.aperture.write(addr, rd);
    host.aperture.writeU32(bootAddr + BOOT_PARAMS_RAMDISK.IMAGE, addr);
    host.aperture.writeU32(bootAddr + BOOT_PARAMS_RAMDISK.SIZE, rd.byteLength);
    ramdisk = { addr, size: rd.byteLength };
  }
  return { bootAddr, fwSize: image.byteLength, cmdline: new TextDecoder().decode(bytes), ramdisk };
}
