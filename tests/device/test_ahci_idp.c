/* The AHCI index/data pair in I/O BAR4: the PCI SATA capability that locates it, ABAR registers
 * read and written through index 10h / data 14h, the index masked to a dword inside the ABAR, and
 * every other access ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/ahci_fixture.h"

struct idp {
	struct fix f;
	uint16_t base; /* BAR4 */
};

static int setup(void **state)
{
	struct idp *t = calloc(1, sizeof(*t));
	if (!t || fix_init(&t->f, 2) < 0 || fix_attach(&t->f, 0, NULL, DISK_MEDIA_HDD) < 0)
		return -1;
	pci_config_write(t->f.bus, t->f.devfn, PCI_COMMAND, 2,
			 PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	t->base = pci_config_read(t->f.bus, t->f.devfn, PCI_BAR0 + 4 * 4, 4) & ~3u;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct idp *t = *state;
	fix_fini(&t->f);
	free(t);
	return 0;
}

static uint32_t io_r(struct idp *t, unsigned off, unsigned len)
{
	uint8_t d[4] = {0xAA, 0xAA, 0xAA, 0xAA};
	assert_true(io_bus_access(&t->f.pio, t->base + off, d, len, false));
	uint32_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void io_w(struct idp *t, unsigned off, unsigned len, uint32_t v)
{
	uint8_t d[4] = {v, v >> 8, v >> 16, v >> 24};
	assert_true(io_bus_access(&t->f.pio, t->base + off, d, len, true));
}

static void test_capability_and_bar(void **state)
{
	struct idp *t = *state;
	uint32_t bar = pci_config_read(t->f.bus, t->f.devfn, PCI_BAR0 + 4 * 4, 4);
	assert_int_equal(bar & 1, 1); /* I/O space */
	assert_true(t->base != 0);
	/* BAR sizing: 32 bytes */
	pci_config_write(t->f.bus, t->f.devfn, PCI_BAR0 + 4 * 4, 4, 0xFFFFFFFF);
	uint32_t mask = pci_config_read(t->f.bus, t->f.devfn, PCI_BAR0 + 4 * 4, 4);
	assert_int_equal(mask & 0xFFFC, 0xFFE0);
	pci_config_write(t->f.bus, t->f.devfn, PCI_BAR0 + 4 * 4, 4, bar);
	/* The SATA capability: revision 1.0, BARLOC = BAR4 (8), BAROFST = 4 dwords. */
	unsigned cap = pci_config_read(t->f.bus, t->f.devfn, PCI_CAP_PTR, 1);
	int found = 0;
	for (int i = 0; cap && i < 16; i++) {
		if (pci_config_read(t->f.bus, t->f.devfn, cap, 1) == 0x12) {
			found = 1;
			break;
		}
		cap = pci_config_read(t->f.bus, t->f.devfn, cap + 1, 1);
	}
	assert_true(found);
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, cap + 2, 2), 0x0010);
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, cap + 4, 4), 0x48);
	/* read-only */
	pci_config_write(t->f.bus, t->f.devfn, cap + 4, 4, 0);
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, cap + 4, 4), 0x48);
	/* MSI is still reachable in the list */
	cap = pci_config_read(t->f.bus, t->f.devfn, PCI_CAP_PTR, 1);
	found = 0;
	for (int i = 0; cap && i < 16; i++) {
		if (pci_config_read(t->f.bus, t->f.devfn, cap, 1) == PCI_CAP_ID_MSI)
			found = 1;
		cap = pci_config_read(t->f.bus, t->f.devfn, cap + 1, 1);
	}
	assert_true(found);
}

static void test_index_data(void **state)
{
	struct idp *t = *state;
	struct fix *f = &t->f;
	/* Reads through the pair match MMIO. */
	io_w(t, 0x10, 4, AHCI_CAP);
	assert_int_equal(io_r(t, 0x10, 4), AHCI_CAP);
	assert_int_equal(io_r(t, 0x14, 4), fix_r(f, AHCI_CAP));
	io_w(t, 0x10, 4, fix_port(0, PORT_SIG));
	assert_int_equal(io_r(t, 0x14, 4), PORT_SIG_ATA);
	assert_int_equal(io_r(t, 0x14, 2), PORT_SIG_ATA & 0xFFFF);
	assert_int_equal(io_r(t, 0x15, 1), (PORT_SIG_ATA >> 8) & 0xFF);
	io_w(t, 0x10, 4, fix_port(1, PORT_SSTS));
	assert_int_equal(io_r(t, 0x14, 4), 0); /* empty port */
	/* Writes through the pair reach the register. */
	io_w(t, 0x10, 4, fix_port(0, PORT_IE));
	io_w(t, 0x14, 4, 0x5);
	assert_int_equal(fix_pr(f, 0, PORT_IE), 0x5);
	assert_int_equal(io_r(t, 0x14, 4), 0x5);
	/* A narrow data write is ignored, as on the MMIO BAR. */
	io_w(t, 0x14, 1, 0xFF);
	assert_int_equal(fix_pr(f, 0, PORT_IE), 0x5);
	/* A whole port started through the pair runs a command. */
	io_w(t, 0x10, 4, AHCI_GHC);
	io_w(t, 0x14, 4, AHCI_GHC_AE | AHCI_GHC_IE);
	assert_int_equal(fix_r(f, AHCI_GHC), AHCI_GHC_AE | AHCI_GHC_IE);
}

static void test_index_masked_and_other_offsets(void **state)
{
	struct idp *t = *state;
	struct fix *f = &t->f;
	io_w(t, 0x10, 4, 0xFFFFFFFF);
	assert_int_equal(io_r(t, 0x10, 4), AHCI_ABAR_SIZE - 4);
	io_w(t, 0x10, 4, 0x10B);
	assert_int_equal(io_r(t, 0x10, 4), 0x108);
	/* byte writes of the index */
	io_w(t, 0x10, 4, 0);
	io_w(t, 0x11, 1, 0x01);
	io_w(t, 0x10, 1, 0x14);
	assert_int_equal(io_r(t, 0x10, 4), 0x114);
	assert_int_equal(io_r(t, 0x11, 1), 0x01);
	/* Other offsets read 0 and ignore writes; a straddling access is ignored. */
	uint32_t ie = fix_pr(f, 0, PORT_IE);
	for (unsigned off = 0; off < 0x10; off += 4) {
		io_w(t, off, 4, 0xFFFFFFFF);
		assert_int_equal(io_r(t, off, 4), 0);
	}
	for (unsigned off = 0x18; off < 0x20; off += 4) {
		io_w(t, off, 4, 0xFFFFFFFF);
		assert_int_equal(io_r(t, off, 4), 0);
	}
	io_w(t, 0x12, 4, 0xFFFFFFFF);
	assert_int_equal(io_r(t, 0x10, 4), 0x114);
	assert_int_equal(io_r(t, 0x12, 4), 0);
	assert_int_equal(fix_pr(f, 0, PORT_IE), ie);
	/* An index past the last port reads 0, like MMIO. */
	io_w(t, 0x10, 4, fix_port(7, PORT_SIG));
	assert_int_equal(io_r(t, 0x14, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_capability_and_bar, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_masked_and_other_offsets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
