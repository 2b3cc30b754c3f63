/* acpi_build(): table checksums and lengths, pointers, FADT fields, MADT entries, error paths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/acpi.h"
#include "memory/layout.h"

#define GPA LAYOUT_ACPI_START
#define BUF_SIZE LAYOUT_ACPI_SIZE

static uint8_t buf[BUF_SIZE];
static long used;

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static struct acpi_config config(unsigned ncpus, unsigned possible)
{
	return (struct acpi_config){
	    .ncpus = ncpus,
	    .ncpus_possible = possible,
	    .pci_mmio32_start = LAYOUT_PCI_MMIO32_START,
	    .pci_mmio32_end = LAYOUT_PCI_MMIO32_END,
	    .pci_mmio64_start = LAYOUT_PCI_MMIO64_START,
	    .pci_mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	    .pci_slots = 32,
	    .serial_com1 = true,
	};
}

/* The table at `gpa`: inside what acpi_build used, with `sig`, a sane length and checksum 0. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	assert_true(gpa >= GPA && gpa + 36 <= GPA + (uint64_t)used);
	const uint8_t *t = buf + (gpa - GPA);
	uint32_t len = le(t + 4, 4);
	assert_memory_equal(t, sig, 4);
	assert_true(gpa + len <= GPA + (uint64_t)used);
	if (strcmp(sig, "FACS")) {
		assert_true(len >= 36);
		assert_int_equal(sum(t, len), 0);
		assert_memory_equal(t + 10, "MINVMM", 6);
	}
	return t;
}

/* Build, check the RSDP, and return the table the XSDT lists with `sig` (RSDT must agree). */
static const uint8_t *build_and_find(const struct acpi_config *cfg, const char *sig)
{
	uint64_t rsdp_gpa = 0;
	memset(buf, 0xAA, sizeof(buf));
	used = acpi_build(cfg, buf, sizeof(buf), GPA, &rsdp_gpa);
	assert_true(used > 0);
	for (size_t i = used; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xAA); /* nothing written past the reported size */
	assert_int_equal(rsdp_gpa, GPA);
	const uint8_t *r = buf + (rsdp_gpa - GPA);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(r[15], 2);
	assert_int_equal(le(r + 20, 4), 36);
	assert_int_equal(sum(r, 36), 0);
	const uint8_t *xsdt = table(le(r + 24, 8), "XSDT");
	const uint8_t *rsdt = table(le(r + 16, 4), "RSDT");
	unsigned n = (le(xsdt + 4, 4) - 36) / 8;
	assert_int_equal(le(xsdt + 4, 4), 36 + 8 * n);
	assert_int_equal(le(rsdt + 4, 4), 36 + 4 * n);
	const uint8_t *found = NULL;
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = le(xsdt + 36 + 8 * i, 8);
		assert_int_equal(x, le(rsdt + 36 + 4 * i, 4));
		if (!memcmp(buf + (x - GPA), sig, 4))
			found = table(x, sig);
	}
	return found;
}

static void check_gas_io(const uint8_t *g, unsigned bits, uint64_t port)
{
	assert_int_equal(g[0], 1); /* SystemIO */
	assert_int_equal(g[1], bits);
	assert_int_equal(le(g + 4, 8), port);
}

static void test_fadt(void **state)
{
	(void)state;
	struct acpi_config cfg = config(1, 1);
	const uint8_t *f = build_and_find(&cfg, "FACP");
	assert_non_null(f);
	assert_int_equal(le(f + 4, 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(le(f + 46, 2), LAYOUT_IRQ_SCI);
	assert_int_equal(le(f + 48, 4), 0); /* no SMI_CMD */
	assert_int_equal(le(f + 56, 4), LAYOUT_PORT_ACPI_PM);
	assert_int_equal(le(f + 64, 4), LAYOUT_PORT_ACPI_PM + 4);
	assert_int_equal(le(f + 76, 4), LAYOUT_PORT_ACPI_PM + 8);
	assert_int_equal(le(f + 80, 4), LAYOUT_PORT_ACPI_GPE0);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[92], LAYOUT_PORT_ACPI_GPE0_LEN);
	assert_int_equal(le(f + 109, 2), 0x7); /* legacy devices, 8042, no VGA */
	uint32_t flags = le(f + 112, 4);
	assert_int_equal(flags, 0x1 | 0x4 | 0x20 | 0x400);
	assert_false(flags & (1u << 20)); /* not hardware-reduced */
	assert_false(flags & (1u << 8));  /* 24-bit PM timer */
	check_gas_io(f + 116, 8, LAYOUT_PORT_RESET);
	assert_int_equal(f[128], 0x06);
	check_gas_io(f + 148, 32, LAYOUT_PORT_ACPI_PM);
	check_gas_io(f + 172, 16, LAYOUT_PORT_ACPI_PM + 4);
	check_gas_io(f + 208, 32, LAYOUT_PORT_ACPI_PM + 8);
	check_gas_io(f + 220, 8 * LAYOUT_PORT_ACPI_GPE0_LEN, LAYOUT_PORT_ACPI_GPE0);
	/* 32- and 64-bit pointers both set and equal. */
	uint64_t facs = le(f + 36, 4), dsdt = le(f + 40, 4);
	assert_int_equal(le(f + 132, 8), facs);
	assert_int_equal(le(f + 140, 8), dsdt);
	const uint8_t *fa = table(facs, "FACS");
	assert_int_equal(facs % 64, 0);
	assert_int_equal(le(fa + 4, 4), 64);
	const uint8_t *d = table(dsdt, "DSDT");
	assert_int_equal(d[8], 2);
}

/* Count MADT entries of `type`; with type 0 also count the Enabled and Online-Capable ones. */
static unsigned madt_count(const uint8_t *m, uint8_t type, unsigned *enabled, unsigned *capable)
{
	uint32_t len = le(m + 4, 4);
	unsigned n = 0;
	*enabled = *capable = 0;
	for (uint32_t off = 44; off < len; off += m[off + 1]) {
		assert_true(m[off + 1] >= 2 && off + m[off + 1] <= len);
		if (m[off] != type)
			continue;
		n++;
		if (type == 0) {
			assert_int_equal(m[off + 2], m[off + 3]); /* UID = APIC ID */
			uint32_t flags = le(m + off + 4, 4);
			*enabled += flags & 1;
			*capable += (flags >> 1) & 1;
			assert_true((flags & 1) ^ ((flags >> 1) & 1)); /* exactly one of the two */
		}
		if (type == 1) {
			assert_int_equal(le(m + off + 4, 4), LAYOUT_IOAPIC_BASE);
			assert_int_equal(le(m + off + 8, 4), 0);
		}
	}
	return n;
}

static void check_madt(unsigned ncpus, unsigned possible)
{
	struct acpi_config cfg = config(ncpus, possible);
	const uint8_t *m = build_and_find(&cfg, "APIC");
	unsigned en, cap;
	assert_non_null(m);
	assert_int_equal(le(m + 36, 4), LAYOUT_LAPIC_BASE);
	assert_int_equal(madt_count(m, 0, &en, &cap), possible);
	assert_int_equal(en, ncpus);
	assert_int_equal(cap, possible - ncpus);
	assert_int_equal(madt_count(m, 1, &en, &cap), 1);
	assert_int_equal(madt_count(m, 2, &en, &cap), 2);
	assert_int_equal(madt_count(m, 4, &en, &cap), 1);
}

static void test_madt(void **state)
{
	(void)state;
	check_madt(1, 1);
	check_madt(4, 4);
	check_madt(2, 8);
	check_madt(LAYOUT_MAX_VCPUS, LAYOUT_MAX_VCPUS);
	check_madt(1, LAYOUT_MAX_VCPUS);
}

/* --plugged-cpus 0,3 of 4: the mask, not a count, decides which LAPICs are Enabled. */
static void test_madt_present_mask(void **state)
{
	(void)state;
	struct acpi_config cfg = config(2, 4);
	cfg.present_mask = 0x9;
	cfg.cpu_hotplug = true;
	const uint8_t *m = build_and_find(&cfg, "APIC");
	unsigned en, cap;
	assert_int_equal(madt_count(m, 0, &en, &cap), 4);
	assert_int_equal(en, 2);
	uint32_t len = le(m + 4, 4);
	for (uint32_t off = 44; off < len; off += m[off + 1])
		if (m[off] == 0)
			assert_int_equal(le(m + off + 4, 4) & 1,
					 m[off + 3] == 0 || m[off + 3] == 3);
	/* a mask without CPU 0, or past the possible CPUs, is refused */
	uint64_t rsdp;
	cfg.present_mask = 0x8;
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg.present_mask = 0x11;
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
}

static void test_madt_overrides(void **state)
{
	(void)state;
	struct acpi_config cfg = config(1, 1);
	const uint8_t *m = build_and_find(&cfg, "APIC");
	uint32_t len = le(m + 4, 4);
	int seen = 0;
	for (uint32_t off = 44; off < len; off += m[off + 1]) {
		if (m[off] == 2 && m[off + 3] == 0) {
			assert_int_equal(le(m + off + 4, 4), 2);
			seen |= 1;
		}
		if (m[off] == 2 && m[off + 3] == LAYOUT_IRQ_SCI) {
			assert_int_equal(le(m + off + 4, 4), LAYOUT_IRQ_SCI);
			assert_int_equal(le(m + off + 8, 2), 0x000D); /* level, active high */
			seen |= 2;
		}
		if (m[off] == 4) {
			assert_int_equal(m[off + 2], 0xFF);
			assert_int_equal(m[off + 5], 1); /* LINT1 */
			seen |= 4;
		}
	}
	assert_int_equal(seen, 7);
}

static bool dsdt_has(const uint8_t *d, const char *s)
{
	uint32_t len = le(d + 4, 4);
	size_t n = strlen(s);
	for (uint32_t i = 36; i + n <= len; i++)
		if (!memcmp(d + i, s, n))
			return true;
	return false;
}

static const uint8_t *dsdt_of(const struct acpi_config *cfg)
{
	const uint8_t *f = build_and_find(cfg, "FACP");
	return table(le(f + 140, 8), "DSDT");
}

static void test_dsdt_contents(void **state)
{
	(void)state;
	struct acpi_config cfg = config(2, 4);
	const uint8_t *d = dsdt_of(&cfg);
	assert_true(dsdt_has(d, "_S5_"));
	assert_true(dsdt_has(d, "PCI0"));
	assert_true(dsdt_has(d, "_PRT"));
	assert_true(dsdt_has(d, "COM1"));
	assert_true(dsdt_has(d, "C003"));
	assert_false(dsdt_has(d, "C004"));
	assert_false(dsdt_has(d, "CSCN")); /* no hot-plug methods unless asked */

	cfg.serial_com1 = false;
	cfg.cpu_hotplug = true;
	d = dsdt_of(&cfg);
	assert_false(dsdt_has(d, "COM1"));
	assert_true(dsdt_has(d, "CSCN"));
	assert_true(dsdt_has(d, "_E02"));
}

static void test_deterministic(void **state)
{
	(void)state;
	static uint8_t copy[BUF_SIZE];
	struct acpi_config cfg = config(3, 6);
	cfg.cpu_hotplug = true;
	build_and_find(&cfg, "FACP");
	long first = used;
	memcpy(copy, buf, first);
	build_and_find(&cfg, "FACP");
	assert_int_equal(used, first);
	assert_memory_equal(copy, buf, first);
}

static void test_no_space(void **state)
{
	(void)state;
	struct acpi_config cfg = config(4, 8);
	uint64_t rsdp;
	long need = acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp);
	assert_true(need > 0);
	for (long size = 0; size < need; size += 7)
		assert_int_equal(acpi_build(&cfg, buf, size, GPA, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build(&cfg, buf, need - 1, GPA, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build(&cfg, buf, need, GPA, &rsdp), need);
}

static void test_bad_config(void **state)
{
	(void)state;
	uint64_t rsdp;
	struct acpi_config cfg;

	cfg = config(0, 0);
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg = config(4, 2);
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg = config(1, LAYOUT_MAX_VCPUS + 1);
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg = config(1, 1);
	cfg.pci_slots = 33;
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg = config(1, 1);
	cfg.pci_mmio32_end = cfg.pci_mmio32_start;
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg = config(1, 1);
	cfg.pci_mmio64_size = UINT64_MAX;
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	cfg = config(1, 1);
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), GPA + 1, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(&cfg, buf, sizeof(buf), 0x100000000ULL, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(NULL, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fadt),	   cmocka_unit_test(test_madt),
	    cmocka_unit_test(test_madt_overrides), cmocka_unit_test(test_madt_present_mask),
	    cmocka_unit_test(test_dsdt_contents),  cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_no_space),	   cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
