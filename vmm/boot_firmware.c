/* Firmware boot: the BIOS image, the boot order and the fw_cfg contents (boot_firmware.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/acpi_loader.h"
#include "memory/e820.h"
#include "lib/endian.h"
#include "vmm/boot_firmware.h"
#include "memory/layout.h"
#include "lib/error.h"

/* KVM's real-mode helper pages (vmm/vm.c), reserved in the map the firmware hands on. */
#define KVM_HELPER_PAGES_START LAYOUT_KVM_HELPER_START
#define KVM_HELPER_PAGES_SIZE LAYOUT_KVM_HELPER_SIZE

/* Read `path` whole into page-aligned private memory: a regular file of min..max bytes, a
 * multiple of `unit`. */
static int image_load(const char *path, const char *what, size_t min, size_t max, size_t unit,
		      struct firmware_image *img)
{
	memset(img, 0, sizeof(*img));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return error_set(-e, "%s: %s", path, strerror(e));
	}
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		error_set(r, "%s: %s", path, strerror(-r));
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		error_set(r, "%s: not a regular file", path);
	} else if ((size_t)st.st_size < min || (size_t)st.st_size > max || st.st_size % unit) {
		r = -EINVAL;
		error_set(r, "%s: %lld bytes is not a %s (a multiple of %zu KiB, %zu to %zu KiB)",
			  path, (long long)st.st_size, what, unit / 1024, min / 1024, max / 1024);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	size_t size = st.st_size;
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		error_set(r, "%s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = pread(fd, p + done, size - done, done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			error_set(r, "%s: read: %s", path, n < 0 ? strerror(-r) : "file shrank");
			break;
		}
		done += n;
	}
	close(fd);
	if (r < 0) {
		munmap(p, size);
		return r;
	}
	img->data = p;
	img->size = size;
	return 0;
}

int firmware_image_load(const char *path, struct firmware_image *img)
{
	return image_load(path, "BIOS image", FIRMWARE_MIN_SIZE, FIRMWARE_MAX_SIZE, 64 * 1024, img);
}

int firmware_flash_load(const char *path, size_t max, struct firmware_image *img)
{
	return image_load(path, "flash image", FIRMWARE_FLASH_UNIT, max, FIRMWARE_FLASH_UNIT, img);
}

void firmware_image_free(struct firmware_image *img)
{
	if (img->data)
		munmap(img->data, img->size);
	memset(img, 0, sizeof(*img));
}

uint64_t firmware_image_base(const struct firmware_image *img)
{
	return 4 * GiB - img->size;
}

int firmware_bootorder(const enum vm_boot_device *order, unsigned norder, struct disk *const *disks,
		       unsigned ndisks, char *out, size_t outlen)
{
	size_t len = 0;
	for (unsigned k = 0; k < norder; k++) {
		enum disk_media want =
		    order[k] == VM_BOOT_CDROM ? DISK_MEDIA_CDROM : DISK_MEDIA_HDD;
		for (unsigned i = 0; i < ndisks; i++) {
			if (!disks[i] || disks[i]->media != want || !disks[i]->fw_path[0])
				continue;
			int n = snprintf(out + len, outlen - len, "%s\n", disks[i]->fw_path);
			if (n < 0 || (size_t)n >= outlen - len)
				return -ENOSPC;
			len += n;
		}
	}
	int n = snprintf(out + len, outlen - len, "HALT");
	if (n < 0 || (size_t)n >= outlen - len)
		return -ENOSPC;
	return (int)(len + n);
}

/* "etc/e820": RAM and the reservations (struct e820_entry is the same 20-byte layout). */
static int add_e820(struct fw_cfg *c, const struct firmware_setup *s)
{
	uint8_t map[3 * 20];
	unsigned n = 0;
	const struct {
		uint64_t addr, size;
		uint32_t type;
	} e[3] = {
	    {0, s->low_ram, E820_RAM},
	    {KVM_HELPER_PAGES_START, KVM_HELPER_PAGES_SIZE, E820_RESERVED},
	    {LAYOUT_HIGH_RAM_START, s->high_ram, E820_RAM},
	};
	for (unsigned i = 0; i < 3; i++) {
		if (!e[i].size)
			continue;
		put_le64(map + 20 * n, e[i].addr);
		put_le64(map + 20 * n + 8, e[i].size);
		put_le32(map + 20 * n + 16, e[i].type);
		n++;
	}
	return fw_cfg_add_file(c, "etc/e820", map, 20 * n);
}

static int add_file_u16(struct fw_cfg *c, const char *name, uint16_t v)
{
	uint8_t b[2];
	put_le16(b, v);
	return fw_cfg_add_file(c, name, b, sizeof(b));
}

static int add_file_u32(struct fw_cfg *c, const char *name, uint32_t v)
{
	uint8_t b[4];
	put_le32(b, v);
	return fw_cfg_add_file(c, name, b, sizeof(b));
}

static int add_acpi(struct fw_cfg *c, const struct acpi_config *cfg)
{
	struct acpi_loader_files f;
	int r = acpi_loader_build(cfg, &f);
	if (r < 0)
		return r;
	/* The script last: firmware that sees it finds both files already listed. */
	r = fw_cfg_add_file(c, ACPI_LOADER_FILE_TABLES, f.tables, f.tables_len);
	if (r == 0)
		r = fw_cfg_add_file(c, ACPI_LOADER_FILE_RSDP, f.rsdp, f.rsdp_len);
	if (r == 0)
		r = fw_cfg_add_file(c, ACPI_LOADER_FILE_SCRIPT, f.script, f.script_len);
	acpi_loader_free(&f);
	return r;
}

static int add_smbios(struct fw_cfg *c, const struct smbios_config *cfg)
{
	uint8_t *tables, anchor[SMBIOS_ANCHOR_LEN];
	size_t len;
	int r = smbios_build(cfg, &tables, &len, anchor);
	if (r < 0)
		return r;
	r = fw_cfg_add_file(c, "etc/smbios/smbios-tables", tables, len);
	if (r == 0)
		r = fw_cfg_add_file(c, "etc/smbios/smbios-anchor", anchor, sizeof(anchor));
	free(tables);
	return r;
}

int firmware_fw_cfg_fill(struct fw_cfg *c, const struct firmware_setup *s)
{
	if (!s->ncpus || s->ncpus > s->ncpus_possible || s->low_ram < 2 * MiB)
		return -EINVAL;
	int r = fw_cfg_add_u64(c, FW_CFG_RAM_SIZE, s->low_ram + s->high_ram);
	if (r == 0)
		r = fw_cfg_add_u16(c, FW_CFG_NB_CPUS, s->ncpus);
	if (r == 0)
		r = fw_cfg_add_u16(c, FW_CFG_MAX_CPUS, s->ncpus_possible);
	if (r == 0) /* no boot menu: nothing waits for a key that no one will press */
		r = fw_cfg_add_u16(c, FW_CFG_BOOT_MENU, 0);
	if (r == 0) /* the PIT's IRQ0 reaches IOAPIC pin 2, as the MADT says */
		r = fw_cfg_add_u32(c, FW_CFG_IRQ0_OVERRIDE, 1);
	if (r == 0)
		r = add_file_u16(c, "etc/boot-cpus", s->ncpus);
	if (r == 0)
		r = add_e820(c, s);
	if (r == 0 && s->bootorder)
		r = fw_cfg_add_file(c, "bootorder", s->bootorder, strlen(s->bootorder));
	if (r == 0)
		r = add_file_u32(c, "etc/boot-fail-wait", s->boot_fail_wait_ms);
	if (r == 0 && s->sercon_port)
		r = add_file_u16(c, "etc/sercon-port", s->sercon_port);
	if (r == 0 && s->smbios)
		r = add_smbios(c, s->smbios);
	if (r == 0 && s->acpi)
		r = add_acpi(c, s->acpi);
	if (r == 0 && s->pci_mmio64_size) {
		/* OVMF aligns its window up from the end of memory to the window's size. */
		uint8_t end[8];
		char mb[24];
		put_le64(end, s->pci_mmio64_start);
		r = fw_cfg_add_file(c, "etc/reserved-memory-end", end, sizeof(end));
		snprintf(mb, sizeof(mb), "%llu", (unsigned long long)(s->pci_mmio64_size / MiB));
		if (r == 0)
			r = fw_cfg_add_file(c, "opt/ovmf/X-PciMmio64Mb", mb, strlen(mb));
	}
	return r;
}
