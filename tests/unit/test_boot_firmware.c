/* Firmware boot's pure parts: BIOS image checks, the "bootorder" text, what fw_cfg carries (read
 * back through the device as SeaBIOS would), and the debug console's lines. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/acpi_loader.h"
#include "devices/debugcon.h"
#include "lib/endian.h"
#include "vmm/boot_firmware.h"
#include "memory/layout.h"
#include "lib/error.h"

static char *write_temp(size_t size)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/minivmm-fwtest-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint8_t *buf = calloc(1, size ? size : 1);
	for (size_t i = 0; i < size; i++)
		buf[i] = i * 13;
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	free(buf);
	close(fd);
	return path;
}

static void test_image(void **state)
{
	(void)state;
	struct firmware_image img;
	char *p = write_temp(256 * 1024);
	assert_int_equal(firmware_image_load(p, &img), 0);
	assert_int_equal(img.size, 256 * 1024);
	assert_int_equal(img.data[1000], (uint8_t)(1000 * 13));
	assert_int_equal(firmware_image_base(&img), 0xFFFC0000ULL);
	firmware_image_free(&img);
	unlink(p);
	static const size_t bad[] = {0, 4096, 100 * 1024, 512 * 1024};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = write_temp(bad[i]);
		assert_int_equal(firmware_image_load(p, &img), -EINVAL);
		assert_non_null(strstr(error_msg(), p));
		assert_null(img.data);
		unlink(p);
	}
	assert_int_equal(firmware_image_load("/nonexistent/bios.bin", &img), -ENOENT);
	assert_non_null(strstr(error_msg(), "/nonexistent/bios.bin"));
	assert_int_equal(firmware_image_load("/tmp", &img), -EINVAL);
	assert_non_null(strstr(error_msg(), "not a regular file"));
	/* a FIFO is refused without blocking on the open */
	char dir[] = "/tmp/minivmm-fwfifo-XXXXXX", fifo[64];
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(firmware_image_load(fifo, &img), -EINVAL);
	unlink(fifo);
	rmdir(dir);
}

static void test_bootorder(void **state)
{
	(void)state;
	struct disk d[4];
	memset(d, 0, sizeof(d));
	d[0].media = DISK_MEDIA_HDD;
	strcpy(d[0].fw_path, "/pci@i0cf8/sata@2/drive@0/disk@0");
	d[1].media = DISK_MEDIA_CDROM;
	strcpy(d[1].fw_path, "/pci@i0cf8/ide@1/drive@1/disk@0");
	d[2].media = DISK_MEDIA_HDD;
	strcpy(d[2].fw_path, "/pci@i0cf8/ide@1/drive@0/disk@1");
	d[3].media = DISK_MEDIA_HDD; /* no controller named it: left out */
	struct disk *disks[4] = {&d[0], &d[1], &d[2], &d[3]};
	char out[512];
	enum vm_boot_device cd_disk[2] = {VM_BOOT_CDROM, VM_BOOT_DISK};
	int n = firmware_bootorder(cd_disk, 2, disks, 4, out, sizeof(out));
	assert_string_equal(out, "/pci@i0cf8/ide@1/drive@1/disk@0\n"
				 "/pci@i0cf8/sata@2/drive@0/disk@0\n"
				 "/pci@i0cf8/ide@1/drive@0/disk@1\n"
				 "HALT");
	assert_int_equal(n, (int)strlen(out));
	enum vm_boot_device disk_only[1] = {VM_BOOT_DISK};
	firmware_bootorder(disk_only, 1, disks, 4, out, sizeof(out));
	assert_string_equal(out, "/pci@i0cf8/sata@2/drive@0/disk@0\n"
				 "/pci@i0cf8/ide@1/drive@0/disk@1\n"
				 "HALT");
	enum vm_boot_device cd_only[1] = {VM_BOOT_CDROM};
	firmware_bootorder(cd_only, 1, disks, 1, out, sizeof(out));
	assert_string_equal(out, "HALT"); /* nothing to boot: the firmware says so */
	assert_int_equal(firmware_bootorder(cd_disk, 2, disks, 4, out, 40), -ENOSPC);
	assert_int_equal(firmware_bootorder(cd_disk, 2, disks, 0, out, 4), -ENOSPC);
}

/* Read a whole fw_cfg file the way SeaBIOS does: directory, then select + data port. */
static size_t read_file(struct fw_cfg *c, const char *name, uint8_t *buf, size_t max)
{
	uint8_t b[2], e[64];
	put_le16(b, FW_CFG_FILE_DIR);
	fw_cfg_io(c, 0, b, 2, true);
	uint8_t cnt[4];
	for (int i = 0; i < 4; i++)
		fw_cfg_io(c, 1, &cnt[i], 1, false);
	for (uint32_t k = 0; k < get_be32(cnt); k++) {
		for (int i = 0; i < 64; i++)
			fw_cfg_io(c, 1, &e[i], 1, false);
		if (strcmp((char *)e + 8, name))
			continue;
		uint32_t size = get_be32(e);
		assert_true(size <= max);
		put_le16(b, get_be16(e + 4));
		fw_cfg_io(c, 0, b, 2, true);
		for (uint32_t i = 0; i < size; i++)
			fw_cfg_io(c, 1, &buf[i], 1, false);
		return size;
	}
	return (size_t)-1;
}

static uint64_t read_item(struct fw_cfg *c, uint16_t key, unsigned len)
{
	uint8_t b[8] = {0};
	put_le16(b, key);
	fw_cfg_io(c, 0, b, 2, true);
	for (unsigned i = 0; i < len; i++)
		fw_cfg_io(c, 1, &b[i], 1, false);
	return get_le64(b);
}

static void test_fw_cfg_fill(void **state)
{
	(void)state;
	struct guest_memory gm;
	assert_int_equal(guest_memory_create(&gm, 4 * MiB), 0);
	struct fw_cfg *c;
	assert_int_equal(fw_cfg_create(&gm, &c), 0);
	struct acpi_config ac = {
	    .ncpus = 4,
	    .ncpus_possible = 4,
	    .pci_mmio32_start = LAYOUT_PCI_MMIO32_START,
	    .pci_mmio32_end = LAYOUT_PCI_MMIO32_END,
	    .pci_slots = 32,
	    .serial_com1 = true,
	};
	struct smbios_config sm = {.ncpus = 4,
				   .ncpus_possible = 4,
				   .low_ram = 3 * GiB,
				   .high_ram = 1 * GiB,
				   .version = "t"};
	struct firmware_setup s = {
	    .ncpus = 4,
	    .ncpus_possible = 4,
	    .low_ram = 3 * GiB,
	    .high_ram = 1 * GiB,
	    .bootorder = "/pci@i0cf8/sata@2/drive@0/disk@0\nHALT",
	    .boot_fail_wait_ms = 2000,
	    .sercon_port = 0x3F8,
	    .acpi = &ac,
	    .smbios = &sm,
	};
	assert_int_equal(firmware_fw_cfg_fill(c, &s), 0);
	assert_int_equal(read_item(c, FW_CFG_NB_CPUS, 2), 4);
	assert_int_equal(read_item(c, FW_CFG_MAX_CPUS, 2), 4);
	assert_int_equal(read_item(c, FW_CFG_RAM_SIZE, 8), 4 * GiB);
	assert_int_equal(read_item(c, FW_CFG_BOOT_MENU, 2), 0);
	assert_int_equal(read_item(c, FW_CFG_IRQ0_OVERRIDE, 4), 1);
	static uint8_t buf[LAYOUT_ACPI_SIZE];
	assert_int_equal(read_file(c, "etc/boot-cpus", buf, sizeof(buf)), 2);
	assert_int_equal(get_le16(buf), 4);
	assert_int_equal(read_file(c, "etc/boot-fail-wait", buf, sizeof(buf)), 4);
	assert_int_equal(get_le32(buf), 2000);
	assert_int_equal(read_file(c, "etc/sercon-port", buf, sizeof(buf)), 2);
	assert_int_equal(get_le16(buf), 0x3F8);
	size_t n = read_file(c, "bootorder", buf, sizeof(buf));
	assert_int_equal(n, strlen(s.bootorder));
	assert_memory_equal(buf, s.bootorder, n);
	/* e820: low RAM, the KVM helper pages, high RAM */
	assert_int_equal(read_file(c, "etc/e820", buf, sizeof(buf)), 60);
	assert_int_equal(get_le64(buf), 0);
	assert_int_equal(get_le64(buf + 8), 3 * GiB);
	assert_int_equal(get_le32(buf + 16), 1);
	assert_int_equal(get_le32(buf + 36), 2);
	assert_int_equal(get_le64(buf + 40), 4 * GiB);
	assert_int_equal(get_le64(buf + 48), 1 * GiB);
	/* the ACPI files are the table-loader's */
	struct acpi_loader_files lf;
	assert_int_equal(acpi_loader_build(&ac, &lf), 0);
	assert_int_equal(read_file(c, ACPI_LOADER_FILE_TABLES, buf, sizeof(buf)), lf.tables_len);
	assert_memory_equal(buf, lf.tables, lf.tables_len);
	assert_int_equal(read_file(c, ACPI_LOADER_FILE_SCRIPT, buf, sizeof(buf)), lf.script_len);
	assert_memory_equal(buf, lf.script, lf.script_len);
	assert_int_equal(read_file(c, ACPI_LOADER_FILE_RSDP, buf, sizeof(buf)), lf.rsdp_len);
	acpi_loader_free(&lf);
	/* SMBIOS: the anchor's table length is the tables file's (SeaBIOS checks that) */
	uint8_t anchor[SMBIOS_ANCHOR_LEN];
	assert_int_equal(read_file(c, "etc/smbios/smbios-anchor", anchor, sizeof(anchor)),
			 SMBIOS_ANCHOR_LEN);
	assert_memory_equal(anchor, "_SM_", 4);
	assert_int_equal(read_file(c, "etc/smbios/smbios-tables", buf, sizeof(buf)),
			 get_le16(anchor + 0x16));
	/* SeaBIOS is not told about the 64-bit window (it finds its own) */
	assert_int_equal(read_file(c, "etc/reserved-memory-end", buf, sizeof(buf)), (size_t)-1);
	fw_cfg_destroy(c);

	/* OVMF: its 64-bit PCI window where the DSDT has it */
	assert_int_equal(fw_cfg_create(&gm, &c), 0);
	s.pci_mmio64_start = 256 * GiB;
	s.pci_mmio64_size = 64 * GiB;
	assert_int_equal(firmware_fw_cfg_fill(c, &s), 0);
	assert_int_equal(read_file(c, "etc/reserved-memory-end", buf, sizeof(buf)), 8);
	assert_int_equal(get_le64(buf), 256 * GiB);
	n = read_file(c, "opt/ovmf/X-PciMmio64Mb", buf, sizeof(buf));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "65536", 5);
	s.pci_mmio64_start = s.pci_mmio64_size = 0;
	fw_cfg_destroy(c);

	/* bad setups */
	assert_int_equal(fw_cfg_create(&gm, &c), 0);
	s.ncpus = 0;
	assert_int_equal(firmware_fw_cfg_fill(c, &s), -EINVAL);
	s.ncpus = 5;
	assert_int_equal(firmware_fw_cfg_fill(c, &s), -EINVAL);
	fw_cfg_destroy(c);
	guest_memory_destroy(&gm);
}

static char lines[8][DEBUGCON_LINE_MAX + 1];
static unsigned nlines;

static void on_line(void *opaque, const char *line)
{
	(void)opaque;
	assert_true(nlines < 8);
	snprintf(lines[nlines++], sizeof(lines[0]), "%s", line);
}

static void test_debugcon(void **state)
{
	(void)state;
	struct debugcon *d;
	assert_int_equal(debugcon_create(on_line, NULL, &d), 0);
	uint8_t b = 0;
	debugcon_io(d, 0, &b, 1, false);
	assert_int_equal(b, DEBUGCON_READBACK);
	const char *msg = "SeaBIOS (version 1.16)\r\n\x1b[2JNo bootable device.\n";
	for (const char *p = msg; *p; p++) {
		b = *p;
		debugcon_io(d, 0, &b, 1, true);
	}
	assert_int_equal(nlines, 2);
	assert_string_equal(lines[0], "SeaBIOS (version 1.16)");
	assert_string_equal(lines[1], "[2JNo bootable device.");
	/* a line without end comes in pieces, never overflowing */
	nlines = 0;
	for (unsigned i = 0; i < DEBUGCON_LINE_MAX + 10; i++) {
		b = 'x';
		debugcon_io(d, 0, &b, 1, true);
	}
	assert_int_equal(nlines, 1);
	assert_int_equal(strlen(lines[0]), DEBUGCON_LINE_MAX);
	uint8_t four[4] = {'a', 'b', '\n', 'c'};
	debugcon_io(d, 0, four, 4, true);
	assert_int_equal(nlines, 2);
	assert_int_equal(strlen(lines[1]), 12);
	debugcon_destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_image),
	    cmocka_unit_test(test_bootorder),
	    cmocka_unit_test(test_fw_cfg_fill),
	    cmocka_unit_test(test_debugcon),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
