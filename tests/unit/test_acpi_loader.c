/* The ACPI table-loader files: a small interpreter here runs the script as firmware would
 * (ALLOCATE, ADD_POINTER, ADD_CHECKSUM, checked like SeaBIOS's), then the tables must be
 * byte-identical to what direct boot places at the same addresses, with valid checksums and
 * pointers, wherever the firmware puts the two files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/acpi_loader.h"
#include "lib/endian.h"
#include "memory/layout.h"

#define MEM_SIZE (2 * MiB)
static uint8_t mem[MEM_SIZE]; /* guest-physical 0..2 MiB */

struct placed {
	const char *name;
	const uint8_t *data;
	size_t len;
	uint64_t addr; /* 0: not allocated yet */
};

static struct placed *lookup(struct placed *f, unsigned n, const uint8_t *name)
{
	assert_int_equal(name[ACPI_LOADER_NAME_LEN - 1], 0);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(f[i].name, (const char *)name))
			return &f[i];
	return NULL;
}

/* Run `script`, allocating file i at addrs[i] (which must honour the requested alignment and
 * zone). Fails the test on any command firmware would reject. */
static void run_script(const struct acpi_loader_files *lf, const uint64_t addrs[2])
{
	struct placed files[2] = {
	    {ACPI_LOADER_FILE_TABLES, lf->tables, lf->tables_len, 0},
	    {ACPI_LOADER_FILE_RSDP, lf->rsdp, lf->rsdp_len, 0},
	};
	assert_int_equal(lf->script_len % ACPI_LOADER_ENTRY_LEN, 0);
	unsigned allocs = 0, pointers = 0, checksums = 0;
	for (size_t off = 0; off < lf->script_len; off += ACPI_LOADER_ENTRY_LEN) {
		const uint8_t *e = lf->script + off;
		switch (get_le32(e)) {
		case ACPI_LOADER_ALLOCATE: {
			struct placed *p = lookup(files, 2, e + 4);
			assert_non_null(p);
			assert_int_equal(p->addr, 0); /* once per file */
			uint32_t align = get_le32(e + ACPI_LOADER_ALLOC_ALIGN);
			assert_int_equal(align & (align - 1), 0);
			uint64_t at = addrs[p - files];
			assert_int_equal(at % align, 0);
			uint8_t zone = e[ACPI_LOADER_ALLOC_ZONE];
			if (zone == ACPI_LOADER_ZONE_FSEG)
				assert_true(at >= 0xF0000 && at + p->len <= 0x100000);
			else
				assert_int_equal(zone, ACPI_LOADER_ZONE_HIGH);
			assert_true(at + p->len <= MEM_SIZE);
			memcpy(mem + at, p->data, p->len);
			p->addr = at;
			allocs++;
			break;
		}
		case ACPI_LOADER_ADD_POINTER: {
			struct placed *dst = lookup(files, 2, e + 4);
			struct placed *src = lookup(files, 2, e + ACPI_LOADER_PTR_SRC);
			assert_non_null(dst);
			assert_non_null(src);
			assert_true(dst->addr && src->addr);
			uint32_t o = get_le32(e + ACPI_LOADER_PTR_OFFSET);
			uint8_t size = e[ACPI_LOADER_PTR_SIZE];
			assert_true(size == 1 || size == 2 || size == 4 || size == 8);
			assert_true(o + size <= dst->len);
			uint64_t v = 0;
			memcpy(&v, mem + dst->addr + o, size);
			v = le64toh(v) + src->addr;
			assert_true(size == 8 || v >> (8 * size) == 0); /* no truncation */
			uint64_t w = htole64(v);
			memcpy(mem + dst->addr + o, &w, size);
			pointers++;
			break;
		}
		case ACPI_LOADER_ADD_CHECKSUM: {
			struct placed *f = lookup(files, 2, e + 4);
			assert_non_null(f);
			assert_true(f->addr);
			uint32_t field = get_le32(e + ACPI_LOADER_CKSUM_OFFSET);
			uint32_t start = get_le32(e + ACPI_LOADER_CKSUM_START);
			uint32_t len = get_le32(e + ACPI_LOADER_CKSUM_LENGTH);
			assert_true(field < f->len && start + len <= f->len &&
				    start + len >= start);
			uint8_t s = 0;
			for (uint32_t i = 0; i < len; i++)
				s += mem[f->addr + start + i];
			mem[f->addr + field] -= s;
			checksums++;
			break;
		}
		default:
			fail_msg("unknown loader command %u", get_le32(e));
		}
	}
	assert_int_equal(allocs, 2);
	assert_true(pointers >= 10); /* RSDP 2, FADT 4, XSDT and RSDT 2 each */
	assert_true(checksums >= 7); /* RSDP 2, DSDT, FADT, MADT, XSDT, RSDT */
}

static struct acpi_config config(unsigned ncpus, unsigned possible, bool hotplug)
{
	return (struct acpi_config){
	    .ncpus = ncpus,
	    .ncpus_possible = possible,
	    .cpu_hotplug = hotplug,
	    .pci_mmio32_start = LAYOUT_PCI_MMIO32_START,
	    .pci_mmio32_end = LAYOUT_PCI_MMIO32_END,
	    .pci_mmio64_start = LAYOUT_PCI_MMIO64_START,
	    .pci_mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	    .pci_slots = 32,
	    .serial_com1 = true,
	};
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

/* RSDP at `r` (guest address) leads, through the XSDT and the RSDT, to valid tables; the FADT's
 * pointers land on a FACS and a DSDT.  Returns how many tables the XSDT lists. */
static unsigned walk(uint64_t r)
{
	const uint8_t *p = mem + r;
	assert_memory_equal(p, "RSD PTR ", 8);
	assert_int_equal(sum(p, 20), 0);
	assert_int_equal(sum(p, 36), 0);
	uint64_t xsdt = get_le64(p + 24), rsdt = get_le32(p + 16);
	assert_true(xsdt + 36 <= MEM_SIZE && rsdt + 36 <= MEM_SIZE);
	assert_memory_equal(mem + xsdt, "XSDT", 4);
	assert_memory_equal(mem + rsdt, "RSDT", 4);
	uint32_t xlen = get_le32(mem + xsdt + 4);
	assert_int_equal(sum(mem + xsdt, xlen), 0);
	assert_int_equal(sum(mem + rsdt, get_le32(mem + rsdt + 4)), 0);
	unsigned n = (xlen - 36) / 8;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = get_le64(mem + xsdt + 36 + 8 * i);
		assert_int_equal(t, get_le32(mem + rsdt + 36 + 4 * i));
		assert_true(t + 36 <= MEM_SIZE);
		assert_int_equal(sum(mem + t, get_le32(mem + t + 4)), 0);
		if (!memcmp(mem + t, "FACP", 4)) {
			uint64_t facs = get_le64(mem + t + 132), dsdt = get_le64(mem + t + 140);
			assert_int_equal(facs, get_le32(mem + t + 36));
			assert_int_equal(dsdt, get_le32(mem + t + 40));
			assert_memory_equal(mem + facs, "FACS", 4);
			assert_int_equal(facs % 64, 0);
			assert_memory_equal(mem + dsdt, "DSDT", 4);
			assert_int_equal(sum(mem + dsdt, get_le32(mem + dsdt + 4)), 0);
		}
	}
	return n;
}

/* Placed back to back (RSDP, then the tables 64 bytes on), the result is exactly acpi_build's. */
static void check_identical(const struct acpi_config *cfg, uint64_t rsdp_at)
{
	struct acpi_loader_files lf;
	assert_int_equal(acpi_loader_build(cfg, &lf), 0);
	memset(mem, 0, sizeof(mem));
	uint64_t addrs[2] = {rsdp_at + 64, rsdp_at};
	run_script(&lf, addrs);
	static uint8_t direct[LAYOUT_ACPI_SIZE];
	memset(direct, 0, sizeof(direct));
	uint64_t rsdp;
	long used = acpi_build(cfg, direct, sizeof(direct), rsdp_at, &rsdp);
	assert_true(used > 64);
	assert_int_equal(rsdp, rsdp_at);
	assert_int_equal((size_t)used, 64 + lf.tables_len);
	assert_memory_equal(mem + rsdp_at, direct, used);
	assert_int_equal(walk(rsdp_at), 2);
	acpi_loader_free(&lf);
}

static void test_identical_to_direct_boot(void **state)
{
	(void)state;
	struct acpi_config up = config(1, 1, false), smp = config(4, 8, true);
	check_identical(&up, 0xF0000);
	check_identical(&smp, 0xF0000);
	check_identical(&smp, 0xFA000);
}

/* Apart: the RSDP in the F segment, the tables high in RAM, as SeaBIOS puts them. */
static void test_apart(void **state)
{
	(void)state;
	struct acpi_config cfg = config(2, 4, true);
	struct acpi_loader_files lf;
	assert_int_equal(acpi_loader_build(&cfg, &lf), 0);
	memset(mem, 0, sizeof(mem));
	uint64_t addrs[2] = {0x180040, 0xF5A10};
	run_script(&lf, addrs);
	assert_int_equal(walk(0xF5A10), 2);
	/* every table lies inside the tables file's copy */
	uint64_t xsdt = get_le64(mem + 0xF5A10 + 24);
	assert_true(xsdt >= 0x180040 && xsdt < 0x180040 + lf.tables_len);
	/* the MADT lists the possible CPUs: 4 LAPIC entries (8 bytes each) */
	unsigned lapics = 0;
	for (unsigned i = 0; i < 2; i++) {
		uint64_t t = get_le64(mem + xsdt + 36 + 8 * i);
		if (memcmp(mem + t, "APIC", 4))
			continue;
		uint32_t len = get_le32(mem + t + 4);
		for (uint32_t o = 44; o + 2 <= len; o += mem[t + o + 1])
			lapics += mem[t + o] == 0;
	}
	assert_int_equal(lapics, 4);
	/* the files as shipped carry no absolute addresses: the RSDP's XSDT field is an offset */
	assert_true(get_le64(lf.rsdp + 24) < lf.tables_len);
	acpi_loader_free(&lf);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct acpi_config cfg = config(0, 1, false);
	struct acpi_loader_files lf;
	assert_int_equal(acpi_loader_build(&cfg, &lf), -EINVAL);
	assert_null(lf.tables);
	assert_null(lf.script);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identical_to_direct_boot),
	    cmocka_unit_test(test_apart),
	    cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
