/* e820 map: usable low RAM up to the EBDA, the EBDA/BIOS area reserved, the ACPI tables
 * reclaimable, RAM from 1 MiB to the PCI hole, the IOAPIC/LAPIC/BIOS top reserved, high RAM from 4
 * GiB. */
#include <errno.h>

#include "memory/e820.h"
#include "memory/layout.h"

static int add(struct e820_entry *out, unsigned max, unsigned *n, uint64_t addr, uint64_t end,
	       uint32_t type)
{
	if (end <= addr)
		return 0;
	if (*n >= max)
		return -EINVAL;
	out[*n] = (struct e820_entry){.addr = addr, .size = end - addr, .type = type};
	(*n)++;
	return 0;
}

int e820_build(uint64_t ram, struct e820_entry *out, unsigned max)
{
	unsigned n = 0;
	if (ram <= LAYOUT_KERNEL_START)
		return -EINVAL;
	uint64_t low_end = ram < LAYOUT_LOW_RAM_END ? ram : LAYOUT_LOW_RAM_END;
	uint64_t high = ram - low_end;
	int r = 0;
	r |= add(out, max, &n, 0, LAYOUT_EBDA_START, E820_RAM);
	r |= add(out, max, &n, LAYOUT_EBDA_START, LAYOUT_ACPI_START, E820_RESERVED);
	r |= add(out, max, &n, LAYOUT_ACPI_START, LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE, E820_ACPI);
	r |= add(out, max, &n, LAYOUT_KERNEL_START, low_end, E820_RAM);
	/* KVM's TSS and identity-map pages and the interrupt controllers live up here. */
	r |= add(out, max, &n, LAYOUT_IOAPIC_BASE, LAYOUT_HIGH_RAM_START, E820_RESERVED);
	if (high)
		r |= add(out, max, &n, LAYOUT_HIGH_RAM_START, LAYOUT_HIGH_RAM_START + high,
			 E820_RAM);
	return r ? -EINVAL : (int)n;
}
