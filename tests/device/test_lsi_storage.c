/* bus=scsi and bus=sas through the VM's storage layer: --disk and --cdrom configurations become a
 * 53C1030 and an SAS1068 on the PCI bus, drives on target ids in command-line order (skipping the
 * 53C1030's own id 7), the boot-order names SeaBIOS uses, completions run by the storage I/O
 * thread, and a CD-ROM medium change seen by the guest as UNIT ATTENTION. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/storage.h"
#include "tests/device/lsi_fixture.h"
#include "lib/error.h"

static int find_hba(struct pci_bus *bus, uint16_t device)
{
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++)
		if (pci_config_read(bus, slot << 3, PCI_VENDOR_ID, 4) ==
		    ((uint32_t)device << 16 | 0x1000))
			return (int)slot;
	return -1;
}

/* The next reply, waiting (bounded) for the storage I/O thread to finish the request. */
static uint32_t wait_reply(struct lf *f)
{
	uint32_t v = 0xFFFFFFFF;
	for (int i = 0; i < 10000 && v == 0xFFFFFFFF; i++) {
		v = lf_pop(f);
		if (v == 0xFFFFFFFF)
			usleep(1000);
	}
	return v;
}

static void test_scsi_and_sas_buses(void **state)
{
	(void)state;
	struct lf f;
	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "/var/tmp/minivmm-test-lsi-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	assert_int_equal(io_bus_init(&f.pio), 0);
	assert_int_equal(io_bus_init(&f.mmio), 0);
	struct pci_bus_ops ops = {.set_irq = lf_set_irq, .signal_msi = lf_signal_msi, .opaque = &f};
	assert_int_equal(pci_bus_create(&f.pio, &f.mmio, &ops, &f.bus), 0);
	assert_int_equal(guest_memory_create(&f.mem, LF_RAM), 0);

	/* Eight SCSI drives (the last a CD-ROM: target 8, past the HBA's 7) and one SAS disk. */
	char path[9][160], arg[300];
	struct disk_config cfgs[10];
	for (unsigned i = 0; i < 9; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/d%u.img", f.dir, i);
		FILE *fp = fopen(path[i], "w");
		for (unsigned k = 0; k < 1 << 20; k++)
			fputc(lf_pattern(k + i), fp);
		fclose(fp);
		bool cd = i == 7;
		snprintf(arg, sizeof(arg), "%s%s", path[i],
			 cd	  ? ",bus=scsi"
			 : i == 8 ? ",bus=sas,format=raw"
				  : ",bus=scsi,format=raw");
		assert_int_equal(
		    disk_config_parse(arg, cd ? DISK_MEDIA_CDROM : DISK_MEDIA_HDD, &cfgs[i]), 0);
	}
	struct storage_env env = {
	    .pci = f.bus, .pio = &f.pio, .mem = &f.mem, .set_irq = lf_set_irq, .irq_opaque = &f};
	struct storage *st = NULL;
	assert_int_equal(storage_create(&env, cfgs, 9, &st), 0);
	int spi = find_hba(f.bus, 0x0030), sas = find_hba(f.bus, 0x0054);
	assert_true(spi >= 0 && sas >= 0);
	char want[80];
	snprintf(want, sizeof(want), "/pci@i0cf8/scsi@%x/channel@0/disk@6,0", spi);
	assert_string_equal(storage_disk(st, 6)->fw_path, want);
	snprintf(want, sizeof(want), "/pci@i0cf8/scsi@%x/channel@0/disk@8,0", spi);
	assert_string_equal(storage_disk(st, 7)->fw_path, want);
	snprintf(want, sizeof(want), "/pci@i0cf8/scsi@%x/channel@0/disk@0,0", sas);
	assert_string_equal(storage_disk(st, 8)->fw_path, want);

	/* Bring the 53C1030 up and read the CD-ROM's second block through the I/O thread. */
	pci_config_write(f.bus, spi << 3, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f.bar1 = pci_config_read(f.bus, spi << 3, PCI_BAR0 + 4, 4) & ~0xFULL;
	f.next_context = 0x100;
	assert_int_equal(lf_bring_up(&f), 0);
	uint32_t ctx;
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 8, r10, 10, MPI_SCSIIO_CONTROL_READ, 2048, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(wait_reply(&f), ctx);
	for (unsigned i = 0; i < 2048; i++)
		assert_int_equal(lf_ram(&f, LF_DATA)[i], lf_pattern(2048 + i + 7));

	/* The guest locks the tray: eject refused unless forced; then UNIT ATTENTION once. */
	uint8_t lock[6] = {0x1E, 0, 0, 0, 1, 0};
	gpa = lf_scsi_io(&f, 1, 8, lock, 6, 0, 0, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(wait_reply(&f), ctx);
	error_clear();
	assert_int_equal(storage_change_medium(st, 0, path[0], false), -EPERM);
	/* The controller refused on the storage loop's thread: its message came back with it. */
	assert_non_null(strstr(error_msg(), "the guest locked the tray"));
	assert_int_equal(storage_change_medium(st, 0, path[0], true), 0);
	gpa = lf_scsi_io(&f, 2, 8, r10, 10, MPI_SCSIIO_CONTROL_READ, 2048, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	uint32_t v = wait_reply(&f);
	assert_true(v & MPI_ADDRESS_REPLY);
	assert_int_equal(lf_ram(&f, LF_SENSE + 2 * 32)[2], SCSI_SENSE_UNIT_ATTENTION);
	lf_reply_frame(&f, v);
	gpa = lf_scsi_io(&f, 3, 8, r10, 10, MPI_SCSIIO_CONTROL_READ, 2048, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(wait_reply(&f), ctx);
	assert_int_equal(lf_ram(&f, LF_DATA)[0], lf_pattern(2048 + 0)); /* the new medium: d0 */

	storage_destroy(st);
	for (unsigned i = 0; i < 9; i++) {
		disk_config_free(&cfgs[i]);
		unlink(path[i]);
	}
	rmdir(f.dir);
	pci_bus_destroy(f.bus);
	guest_memory_destroy(&f.mem);
	io_bus_destroy(&f.pio);
	io_bus_destroy(&f.mmio);
}

static void test_too_many(void **state)
{
	(void)state;
	struct disk_config c[16];
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 16; i++)
		c[i] = (struct disk_config){.path = (char *)"a", .bus = DISK_BUS_SCSI};
	assert_int_equal(storage_check(c, 15), 0);
	assert_int_equal(storage_check(c, 16), -ENOSPC);
	assert_non_null(strstr(error_msg(), "at most 15"));
	for (int i = 0; i < 9; i++)
		c[i].bus = DISK_BUS_SAS;
	assert_int_equal(storage_check(c, 8), 0);
	assert_int_equal(storage_check(c, 9), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scsi_and_sas_buses),
	    cmocka_unit_test(test_too_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
