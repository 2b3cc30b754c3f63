/* The BIOS e820 memory map minivmm gives the guest, derived only from memory/layout.h and the RAM size
 * (pure, unit-tested). */
#ifndef MINIVMM_MEMORY_E820_H
#define MINIVMM_MEMORY_E820_H

#include <stdint.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3 /* ACPI reclaimable: the tables at LAYOUT_ACPI_START */

/* The boot-protocol layout of one entry (struct boot_e820_entry). */
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define E820_MAX_ENTRIES 8

/* Fill `out` (room for `max` entries) for `ram` bytes of guest RAM. Returns the number of entries,
 * or -EINVAL when ram is below 1 MiB + 1 page or `max` is too small. */
int e820_build(uint64_t ram, struct e820_entry *out, unsigned max);

#endif
