/* Booting through firmware (no --kernel): SeaBIOS from Debian's `seabios` package runs from the
 * reset vector and boots what is installed on the disks, as on a PC.
 *
 * Memory model (why it is this simple): the BIOS image is mapped read-only at 4 GiB minus its
 * size (where the reset vector fetches from), and its last 128 KiB are copied into RAM at
 * 0xE0000 (the legacy BIOS area).  0xC0000-0xFFFFF is always plain RAM: the i440FX PAM registers
 * only store what SeaBIOS writes (devices/pci.c), no shadowing is emulated.  That is enough
 * because SeaBIOS, finding "RAM" behind the BIOS area, unlocks it, relocates itself into it and
 * makes it "read-only" again at the end of POST; a guest that wrote there afterwards would only
 * overwrite a BIOS it no longer calls.  A reboot starts from a fresh copy (the image is copied
 * again when the machine is built).
 *
 * The pure parts (image checks, the boot order and the fw_cfg contents) live here and are
 * unit-tested; vmm/vm_firmware.c wires them to KVM and the VM.
 */
#ifndef MINIVMM_VMM_BOOT_FIRMWARE_H
#define MINIVMM_VMM_BOOT_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "devices/acpi.h"
#include "devices/disk.h"
#include "devices/fw_cfg.h"
#include "devices/smbios.h"
#include "memory/layout.h"
#include "vmm/vm_config.h"

#define FIRMWARE_DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin"
/* SeaBIOS images are 128 or 256 KiB. */
#define FIRMWARE_MIN_SIZE (64 * 1024)
#define FIRMWARE_MAX_SIZE (256 * 1024)
/* UEFI (--firmware efi): Debian's OVMF, code and the template of the variable store, flash
 * images of 4 KiB blocks that together end at 4 GiB (vmm/vm_firmware_efi.c). */
#define FIRMWARE_DEFAULT_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define FIRMWARE_DEFAULT_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define FIRMWARE_FLASH_UNIT 4096
#define FIRMWARE_OVMF_VARS_MAX (1 * MiB)
#define FIRMWARE_OVMF_VARS_FILE "efivars.fd" /* the VM's copy, in its state directory */
#define FIRMWARE_ISA_BIOS_SIZE (128 * 1024)  /* copied below 1 MiB */
#define FIRMWARE_BOOT_FAIL_WAIT_MS 2000	     /* SeaBIOS's reboot after "No bootable device" */
#define FIRMWARE_SERCON_PORT 0x3F8	     /* the BIOS screen goes to COM1 */

/* A checked BIOS image in page-aligned memory (what KVM maps). */
struct firmware_image {
	uint8_t *data;
	size_t size;
};

/* Read `path` (only that file): a regular file of FIRMWARE_MIN_SIZE..FIRMWARE_MAX_SIZE bytes, a
 * multiple of 64 KiB.  -errno with a message naming the file. */
int firmware_image_load(const char *path, struct firmware_image *img);
/* The same for a flash image (OVMF): FIRMWARE_FLASH_UNIT..max bytes, a multiple of the unit. */
int firmware_flash_load(const char *path, size_t max, struct firmware_image *img);
void firmware_image_free(struct firmware_image *img);
/* Guest-physical address of the image's first byte: 4 GiB - size. */
uint64_t firmware_image_base(const struct firmware_image *img);

/* The "bootorder" text: one line per drive of the kinds in `order` (each kind in command-line
 * order), then "HALT" so that nothing unlisted is tried.  Drives a controller did not name
 * (fw_path "") are left out.  Returns the length, or -ENOSPC. */
int firmware_bootorder(const enum vm_boot_device *order, unsigned norder, struct disk *const *disks,
		       unsigned ndisks, char *out, size_t outlen);

/* What the firmware is told through fw_cfg. */
struct firmware_setup {
	unsigned ncpus, ncpus_possible;
	uint64_t low_ram, high_ram; /* bytes at 0 and at 4 GiB */
	const char *bootorder;
	uint32_t boot_fail_wait_ms;
	uint16_t sercon_port; /* 0: BIOS screen output only on the debug port */
	const struct acpi_config *acpi;
	const struct smbios_config *smbios; /* NULL: the firmware makes its own */
	/* OVMF: its 64-bit PCI window where the DSDT puts it ("etc/reserved-memory-end" at the
	 * start, "opt/ovmf/X-PciMmio64Mb" the size); 0: left to the firmware (SeaBIOS). */
	uint64_t pci_mmio64_start, pci_mmio64_size;
};

/* Fill `c` with the items and files SeaBIOS reads (CPU counts, RAM, e820, boot order, the ACPI
 * table-loader files, the SMBIOS tables, boot menu off, IRQ0 override).  -errno. */
int firmware_fw_cfg_fill(struct fw_cfg *c, const struct firmware_setup *s);

#endif
