/* bus=sata through the VM's storage layer: --disk and --cdrom configurations become an AHCI HBA
 * on the PCI bus, a disk and a CD-ROM on ports 0 and 1, with completions run by the storage I/O
 * thread (not by the test). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/storage.h"
#include "tests/device/ahci_fixture.h"
#include "lib/error.h"

static int find_ahci(struct pci_bus *bus)
{
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++)
		if (pci_config_read(bus, slot << 3, PCI_VENDOR_ID, 4) == 0x29228086)
			return (int)slot;
	return -1;
}

/* Wait (bounded) until the I/O thread has finished slot s of port p. */
static uint32_t wait_ci(struct fix *f, unsigned p, unsigned s)
{
	for (int i = 0; i < 10000 && (fix_pr(f, p, PORT_CI) & (1u << s)); i++)
		usleep(1000);
	return fix_pr(f, p, PORT_CI) & (1u << s);
}

static void test_sata_disk_and_cdrom(void **state)
{
	(void)state;
	struct fix f;
	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "/var/tmp/minivmm-test-ahci-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	assert_int_equal(io_bus_init(&f.pio), 0);
	assert_int_equal(io_bus_init(&f.mmio), 0);
	struct pci_bus_ops ops = {
	    .set_irq = fix_set_irq, .signal_msi = fix_signal_msi, .opaque = &f};
	assert_int_equal(pci_bus_create(&f.pio, &f.mmio, &ops, &f.bus), 0);
	assert_int_equal(guest_memory_create(&f.mem, FIX_RAM), 0);
	assert_int_equal(fix_make_image(fix_path(&f, "d.img"), FIX_DISK_SIZE), 0);
	assert_int_equal(fix_make_image(fix_path(&f, "c.iso"), FIX_DISK_SIZE), 0);

	char a0[300], a1[300];
	struct disk_config cfgs[2];
	snprintf(a0, sizeof(a0), "%s,bus=sata", fix_path(&f, "d.img"));
	snprintf(a1, sizeof(a1), "%s,bus=sata", fix_path(&f, "c.iso"));
	assert_int_equal(disk_config_parse(a0, DISK_MEDIA_HDD, &cfgs[0]), 0);
	assert_int_equal(disk_config_parse(a1, DISK_MEDIA_CDROM, &cfgs[1]), 0);
	struct storage_env env = {
	    .pci = f.bus, .pio = &f.pio, .mem = &f.mem, .set_irq = fix_set_irq, .irq_opaque = &f};
	struct storage *st = NULL;
	assert_int_equal(storage_create(&env, cfgs, 2, &st), 0);

	int slot = find_ahci(f.bus);
	assert_true(slot >= 0);
	f.devfn = slot << 3;
	pci_config_write(f.bus, f.devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f.abar = pci_config_read(f.bus, f.devfn, PCI_BAR0 + 5 * 4, 4) & ~0xFULL;
	assert_int_equal(fix_r(&f, AHCI_PI), 0x3F); /* 6 ports */
	assert_int_equal(fix_pr(&f, 0, PORT_SIG), PORT_SIG_ATA);
	assert_int_equal(fix_pr(&f, 1, PORT_SIG), PORT_SIG_ATAPI);
	assert_int_equal(fix_pr(&f, 2, PORT_SSTS), 0);

	/* a DMA read on the disk, completed by the storage I/O thread */
	fix_port_start(&f, 0);
	uint8_t fis[20];
	uint8_t *buf = fix_ram(&f, FIX_DATA, 8192);
	memset(buf, 0, 8192);
	struct fix_prd prd = {FIX_DATA, 8192};
	fix_fis(fis, 0x25, 40, 16, 0);
	fix_cmd(&f, 0, 0, fis, NULL, false, &prd, 1);
	fix_pw(&f, 0, PORT_CI, 1);
	assert_int_equal(wait_ci(&f, 0, 0), 0);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(buf[i], fix_pattern(40 * 512 + i));
	/* NCQ through the same thread */
	fix_ncq_fis(fis, false, 7, 80, 16);
	fix_cmd(&f, 0, 7, fis, NULL, false, &prd, 1);
	fix_pw(&f, 0, PORT_SACT, 1u << 7);
	fix_pw(&f, 0, PORT_CI, 1u << 7);
	for (int i = 0; i < 10000 && fix_pr(&f, 0, PORT_SACT); i++)
		usleep(1000);
	assert_int_equal(fix_pr(&f, 0, PORT_SACT), 0);
	assert_int_equal(buf[0], fix_pattern(80 * 512));

	/* the CD-ROM can be ejected (no command in flight) */
	assert_int_equal(storage_change_medium(st, 0, NULL, false), 0);

	storage_destroy(st);
	disk_config_free(&cfgs[0]);
	disk_config_free(&cfgs[1]);
	pci_bus_destroy(f.bus);
	guest_memory_destroy(&f.mem);
	io_bus_destroy(&f.pio);
	io_bus_destroy(&f.mmio);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f.dir);
	assert_int_equal(system(cmd), 0);
}

static void test_too_many_drives(void **state)
{
	(void)state;
	struct disk_config cfgs[31];
	memset(cfgs, 0, sizeof(cfgs));
	for (int i = 0; i < 31; i++) {
		cfgs[i].path = (char *)"x.img";
		cfgs[i].bus = DISK_BUS_SATA;
	}
	assert_int_equal(storage_check(cfgs, 30), 0);
	assert_int_equal(storage_check(cfgs, 31), -ENOSPC);
	assert_non_null(strstr(error_msg(), "at most 30"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sata_disk_and_cdrom),
	    cmocka_unit_test(test_too_many_drives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
