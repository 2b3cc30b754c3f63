/* Firmware boot wired into the VM (boot_firmware.h): the BIOS image as a read-only KVM memory
 * slot below 4 GiB and its copy below 1 MiB, and the machine's description put into the fw_cfg
 * device.  (fw_cfg and the debug console are devices of their own, created for firmware boot
 * only; the RTC device puts the CPU count in CMOS itself.) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "devices/device.h"
#include "devices/fw_cfg.h"
#include "devices/storage.h"
#include "lib/log.h"
#include "vmm/boot_firmware.h"
#include "vmm/control_internal.h" /* MINIVMM_VERSION */
#include "vmm/vm.h"
#include "vmm/vm_firmware_efi.h"
#include "vmm/vm_internal.h"
#include "lib/error.h"

#define FIRMWARE_KVM_SLOT 2 /* guest_memory_register uses 0 and 1 */

struct vm_firmware {
	struct firmware_image img; /* SeaBIOS */
	bool slot_set;
	struct firmware_efi *efi; /* --firmware efi: OVMF instead */
};

/* The VM's UUID for SMBIOS type 1: derived from its name, so it stays the same from run to run
 * and differs between VMs (two FNV-1a hashes; RFC 9562 version 8, "vendor-specific"). */
static void vm_firmware_uuid(const char *name, uint8_t uuid[16])
{
	uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
	for (int k = 0; k < 2; k++) {
		for (const char *p = "minivmm-vm:"; *p; p++)
			h[k] = (h[k] ^ (uint8_t)*p) * 0x100000001b3ULL;
		for (const char *p = name; *p; p++)
			h[k] = (h[k] ^ (uint8_t)*p) * 0x100000001b3ULL;
	}
	for (int i = 0; i < 8; i++) {
		uuid[i] = h[0] >> (56 - 8 * i);
		uuid[8 + i] = h[1] >> (56 - 8 * i);
	}
	uuid[6] = (uuid[6] & 0x0F) | 0x80; /* version 8 */
	uuid[8] = (uuid[8] & 0x3F) | 0x80; /* RFC 4122 variant */
}

/* The legacy BIOS area: the image's last 128 KiB end at 1 MiB.  A PC's reset makes the ROM show
 * there again; here the pristine copy is written back. */
static int copy_isa_bios(struct vm *vm, struct vm_firmware *fw)
{
	size_t isa = fw->img.size < FIRMWARE_ISA_BIOS_SIZE ? fw->img.size : FIRMWARE_ISA_BIOS_SIZE;
	return guest_memory_write(&vm->mem, 1 * MiB - isa, fw->img.data + fw->img.size - isa, isa);
}

static int map_image(struct vm *vm, struct vm_firmware *fw)
{
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
		return error_set(-ENOTSUP,
				 "/dev/kvm: KVM_CAP_READONLY_MEM is missing (needed for the BIOS)");
	struct kvm_userspace_memory_region r = {
	    .slot = FIRMWARE_KVM_SLOT,
	    .flags = KVM_MEM_READONLY, /* writes exit as MMIO, which no device claims: ignored */
	    .guest_phys_addr = firmware_image_base(&fw->img),
	    .memory_size = fw->img.size,
	    .userspace_addr = (uintptr_t)fw->img.data,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		int e = errno;
		return error_set(-e, "KVM_SET_USER_MEMORY_REGION (BIOS at %#llx): %s",
				 (unsigned long long)r.guest_phys_addr, strerror(e));
	}
	fw->slot_set = true;
	int rc = copy_isa_bios(vm, fw);
	if (rc < 0)
		error_set(rc, "BIOS copy below 1 MiB: %s", strerror(-rc));
	return rc;
}

static int fill_fw_cfg(struct vm *vm)
{
	struct disk *disks[64];
	unsigned n = 0;
	for (struct disk *d; n < 64 && (d = storage_disk(vm_storage(vm), n)); n++)
		disks[n] = d;
	char bootorder[2048];
	int r = firmware_bootorder(vm->cfg->boot, vm->cfg->nboot, disks, n, bootorder,
				   sizeof(bootorder));
	if (r < 0)
		return error_set(r, "boot order: too many drives");
	struct acpi_config ac;
	vm_acpi_config(vm, &ac);
	struct smbios_config sm = {
	    .ncpus = ac.ncpus,
	    .ncpus_possible = ac.ncpus_possible,
	    .low_ram = vm->mem.low_size,
	    .high_ram = vm->mem.high_size,
	    .version = MINIVMM_VERSION,
	};
	vm_firmware_uuid(vm->cfg->name, sm.uuid);
	struct firmware_setup s = {
	    .ncpus = ac.ncpus,
	    .ncpus_possible = ac.ncpus_possible,
	    .low_ram = vm->mem.low_size,
	    .high_ram = vm->mem.high_size,
	    .bootorder = bootorder,
	    .boot_fail_wait_ms = FIRMWARE_BOOT_FAIL_WAIT_MS,
	    .sercon_port = FIRMWARE_SERCON_PORT,
	    .acpi = &ac,
	    .smbios = &sm,
	};
	if (vm->cfg->firmware_efi) {
		s.pci_mmio64_start = ac.pci_mmio64_start;
		s.pci_mmio64_size = ac.pci_mmio64_size;
	}
	struct fw_cfg *c = fw_cfg_device_store(devices_find(vm->devices, "fw_cfg"));
	r = c ? firmware_fw_cfg_fill(c, &s) : -ENODEV;
	if (r < 0)
		error_set(r, "fw_cfg: %s", strerror(-r));
	return r;
}

int vm_firmware_setup(struct vm *vm)
{
	struct vm_firmware *fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	vm->firmware = fw;
	int r;
	if (vm->cfg->firmware_efi) {
		if ((r = firmware_efi_setup(vm, &fw->efi)) < 0)
			return r;
		return fill_fw_cfg(vm);
	}
	const char *path = vm->cfg->firmware_file ? vm->cfg->firmware_file : FIRMWARE_DEFAULT_BIOS;
	if ((r = firmware_image_load(path, &fw->img)) < 0)
		return r;
	if ((r = map_image(vm, fw)) < 0)
		return r;
	return fill_fw_cfg(vm);
}

void vm_firmware_reset(struct vm *vm)
{
	struct vm_firmware *fw = vm->firmware;
	if (!fw)
		return;
	if (fw->efi)
		firmware_efi_reset(fw->efi);
	else
		copy_isa_bios(vm, fw); /* cannot fail: it succeeded at set-up on the same RAM */
}

void vm_firmware_destroy(struct vm *vm)
{
	struct vm_firmware *fw = vm->firmware;
	if (!fw)
		return;
	/* vCPUs are stopped: nothing runs from the slot. */
	firmware_efi_destroy(vm, fw->efi);
	if (fw->slot_set) {
		struct kvm_userspace_memory_region r = {.slot = FIRMWARE_KVM_SLOT};
		ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r); /* size 0 deletes the slot */
	}
	firmware_image_free(&fw->img);
	free(fw);
	vm->firmware = NULL;
}
