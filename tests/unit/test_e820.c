/* The e820 map: usable RAM, the EBDA/BIOS hole, the ACPI tables, the PCI hole and high RAM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "memory/e820.h"
#include "memory/layout.h"

/* Type of the entry covering addr, 0 if none; also checks the map is sorted and disjoint. */
static uint32_t type_at(const struct e820_entry *m, int n, uint64_t addr)
{
	for (int i = 1; i < n; i++)
		assert_true(m[i - 1].addr + m[i - 1].size <= m[i].addr);
	for (int i = 0; i < n; i++)
		if (addr >= m[i].addr && addr - m[i].addr < m[i].size)
			return m[i].type;
	return 0;
}

static uint64_t ram_total(const struct e820_entry *m, int n)
{
	uint64_t t = 0;
	for (int i = 0; i < n; i++)
		if (m[i].type == E820_RAM)
			t += m[i].size;
	return t;
}

static void test_small(void **state)
{
	(void)state;
	struct e820_entry m[E820_MAX_ENTRIES];
	int n = e820_build(512 * MiB, m, E820_MAX_ENTRIES);
	assert_true(n > 0);
	assert_int_equal(type_at(m, n, 0), E820_RAM);
	assert_int_equal(type_at(m, n, LAYOUT_EBDA_START - 1), E820_RAM);
	assert_int_equal(type_at(m, n, LAYOUT_EBDA_START), E820_RESERVED);
	assert_int_equal(type_at(m, n, LAYOUT_ACPI_START), E820_ACPI);
	assert_int_equal(type_at(m, n, LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE - 1), E820_ACPI);
	assert_int_equal(type_at(m, n, LAYOUT_KERNEL_START), E820_RAM);
	assert_int_equal(type_at(m, n, 512 * MiB - 1), E820_RAM);
	assert_int_equal(type_at(m, n, 512 * MiB), 0);
	assert_int_equal(type_at(m, n, LAYOUT_IOAPIC_BASE), E820_RESERVED);
	assert_int_equal(type_at(m, n, LAYOUT_HIGH_RAM_START), 0);
	/* everything but the EBDA-to-1 MiB window is RAM */
	assert_int_equal(ram_total(m, n), 512 * MiB - (LAYOUT_KERNEL_START - LAYOUT_EBDA_START));
}

static void test_large(void **state)
{
	(void)state;
	struct e820_entry m[E820_MAX_ENTRIES];
	uint64_t ram = 5 * GiB;
	int n = e820_build(ram, m, E820_MAX_ENTRIES);
	assert_true(n > 0);
	assert_int_equal(type_at(m, n, LAYOUT_LOW_RAM_END - 1), E820_RAM);
	assert_int_equal(type_at(m, n, LAYOUT_LOW_RAM_END), 0); /* PCI hole */
	assert_int_equal(type_at(m, n, LAYOUT_PCI_MMIO32_END - 1), 0);
	assert_int_equal(type_at(m, n, LAYOUT_HIGH_RAM_START), E820_RAM);
	assert_int_equal(type_at(m, n, LAYOUT_HIGH_RAM_START + 2 * GiB - 1), E820_RAM);
	assert_int_equal(type_at(m, n, LAYOUT_HIGH_RAM_START + 2 * GiB), 0);
	assert_int_equal(ram_total(m, n), ram - (LAYOUT_KERNEL_START - LAYOUT_EBDA_START));
}

static void test_errors(void **state)
{
	(void)state;
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(MiB, m, E820_MAX_ENTRIES), -EINVAL);
	assert_int_equal(e820_build(512 * MiB, m, 2), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small),
	    cmocka_unit_test(test_large),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
