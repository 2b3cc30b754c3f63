/* `minivmm acpi-dump`: build the ACPI tables a VM would get and write each one to a file, so that
 * ACPICA's `iasl -d` (or a person) can check them.
 *
 *   minivmm acpi-dump [--cpus N] [--possible M] [--hotplug] [--slots S] [--no-com1]
 *                     [--gpa ADDR] [--pci-hotplug MASK] DIR
 *
 * Writes DIR/rsdp.dat and DIR/<signature>.dat (xsdt, rsdt, facp, facs, dsdt, apic), found by
 * following the pointers from the RSDP, so a wrong pointer shows up as a missing or bad file, and
 * DIR/tables.bin, the whole image as the guest sees it when loaded at ADDR (default
 * LAYOUT_ACPI_START; another address lets a test boot a kernel on them with acpi_rsdp=ADDR).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/acpi.h"
#include "vmm/command.h"
#include "memory/layout.h"

struct dump {
	const uint8_t *buf;
	size_t len;
	uint64_t gpa;
	const char *dir;
};

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static int write_file(const struct dump *d, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s", d->dir, name,
		 strcmp(name, "tables") ? "dat" : "bin");
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "minivmm acpi-dump: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* The table at guest address `gpa`, checked to lie inside the built buffer; NULL if not. */
static const uint8_t *table_at(const struct dump *d, uint64_t gpa, size_t *len)
{
	if (gpa < d->gpa || gpa - d->gpa > d->len - 8)
		return NULL;
	const uint8_t *t = d->buf + (gpa - d->gpa);
	/* The FACS has its length at the same place as other tables. */
	*len = get_le(t + 4, 4);
	if (*len < 8 || *len > d->len - (gpa - d->gpa))
		return NULL;
	return t;
}

static int dump_table(const struct dump *d, uint64_t gpa)
{
	size_t len;
	char name[5];
	const uint8_t *t = table_at(d, gpa, &len);

	if (!t) {
		fprintf(stderr, "minivmm acpi-dump: pointer 0x%llx is outside the tables\n",
			(unsigned long long)gpa);
		return -EINVAL;
	}
	for (int i = 0; i < 4; i++)
		name[i] = (t[i] >= 'A' && t[i] <= 'Z') ? t[i] - 'A' + 'a' : '_';
	name[4] = 0;
	int err = write_file(d, name, t, len);
	if (err)
		return err;
	if (!memcmp(t, "FACP", 4) && len >= 148) {
		err = dump_table(d, get_le(t + 140, 8)); /* X_DSDT */
		if (!err)
			err = dump_table(d, get_le(t + 132, 8)); /* X_FIRMWARE_CTRL */
	}
	return err;
}

static int dump_all(const struct dump *d, uint64_t rsdp)
{
	const uint8_t *r = d->buf + (rsdp - d->gpa);
	size_t len;
	int err = write_file(d, "rsdp", r, 36);

	if (!err)
		err = dump_table(d, get_le(r + 16, 4)); /* RSDT */
	const uint8_t *x = table_at(d, get_le(r + 24, 8), &len);
	if (!err && !x)
		err = -EINVAL;
	if (!err)
		err = dump_table(d, get_le(r + 24, 8));
	for (size_t off = 36; !err && off + 8 <= len; off += 8)
		err = dump_table(d, get_le(x + off, 8));
	return err;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int acpi_dump_run(int argc, char **argv)
{
	static const struct option opts[] = {{"cpus", required_argument, NULL, 'c'},
					     {"possible", required_argument, NULL, 'p'},
					     {"hotplug", no_argument, NULL, 'h'},
					     {"slots", required_argument, NULL, 's'},
					     {"no-com1", no_argument, NULL, 'n'},
					     {"help", no_argument, NULL, 'H'},
					     {"gpa", required_argument, NULL, 'g'},
					     {"pci-hotplug", required_argument, NULL, 'P'},
					     {NULL, 0, NULL, 0}};
	struct acpi_config cfg = {
	    .ncpus = 1,
	    .pci_mmio32_start = LAYOUT_PCI_MMIO32_START,
	    .pci_mmio32_end = LAYOUT_PCI_MMIO32_END,
	    .pci_mmio64_start = LAYOUT_PCI_MMIO64_START,
	    .pci_mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	    .pci_slots = 32,
	    .serial_com1 = true,
	};
	int c, bad = 0;
	uint64_t gpa = LAYOUT_ACPI_START;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			bad |= parse_uint(optarg, LAYOUT_MAX_VCPUS, &cfg.ncpus);
			break;
		case 'p':
			bad |= parse_uint(optarg, LAYOUT_MAX_VCPUS, &cfg.ncpus_possible);
			break;
		case 's':
			bad |= parse_uint(optarg, 32, &cfg.pci_slots);
			break;
		case 'g':
			errno = 0;
			gpa = strtoull(optarg, &end, 0);
			bad |= errno || end == optarg || *end || gpa > UINT32_MAX;
			break;
		case 'P': /* the hot-pluggable PCI slots, as a bit mask (slot 0 excluded) */
			errno = 0;
			uint64_t m = strtoull(optarg, &end, 0);
			bad |= errno || end == optarg || *end || m > UINT32_MAX || (m & 1);
			cfg.pci_hotplug_slots = (uint32_t)m;
			break;
		case 'h':
			cfg.cpu_hotplug = true;
			break;
		case 'n':
			cfg.serial_com1 = false;
			break;
		case 'H':
			printf("usage: minivmm acpi-dump [--cpus N] [--possible M] [--hotplug] "
			       "[--slots S] [--no-com1] [--gpa ADDR] [--pci-hotplug MASK] DIR\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!cfg.ncpus_possible)
		cfg.ncpus_possible = cfg.ncpus;
	if (bad || optind != argc - 1) {
		fprintf(stderr,
			"minivmm acpi-dump: bad arguments (try 'minivmm acpi-dump --help')\n");
		return 2;
	}

	static uint8_t buf[LAYOUT_ACPI_SIZE];
	uint64_t rsdp;
	long n = acpi_build(&cfg, buf, sizeof(buf), gpa, &rsdp);
	if (n < 0) {
		fprintf(stderr,
			"minivmm acpi-dump: cannot build tables for --cpus %u --possible %u at "
			"0x%llx: %s\n",
			cfg.ncpus, cfg.ncpus_possible, (unsigned long long)gpa, strerror((int)-n));
		return 1;
	}
	struct dump d = {.buf = buf, .len = (size_t)n, .gpa = gpa, .dir = argv[optind]};
	if (write_file(&d, "tables", buf, (size_t)n) || dump_all(&d, rsdp))
		return 1;
	return 0;
}

static const struct command acpi_dump_cmd = {
    .name = "acpi-dump",
    .summary = "write the ACPI tables of a VM configuration to files (for iasl -d)",
    .run = acpi_dump_run,
};
COMMAND(acpi_dump_cmd)
