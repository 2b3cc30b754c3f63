/* ACPI tables for minivmm's machine (RSDP, XSDT, FADT, FACS, MADT, DSDT, and more as devices need).
 *
 * acpi_build() is pure: it lays the tables out in `buf`, which the guest will see at guest-physical
 * address `gpa`, and returns the RSDP's address.  It touches no VM state, so it is unit-tested.
 * The DSDT is generated with devices/aml.h.
 */
#ifndef MINIVMM_DEVICES_ACPI_H
#define MINIVMM_DEVICES_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acpi_config {
	unsigned ncpus;		 /* vCPUs present at boot (APIC IDs 0..ncpus-1) */
	unsigned ncpus_possible; /* >= ncpus: the rest are hot-pluggable (MADT online-capable) */
	bool cpu_hotplug;	 /* describe the CPU hot-plug register block and methods */
	uint64_t pci_mmio32_start, pci_mmio32_end; /* BAR windows, for the host bridge's _CRS */
	uint64_t pci_mmio64_start, pci_mmio64_size;
	unsigned pci_slots; /* slots on bus 0 described in _PRT */
	bool serial_com1;
	uint64_t present_mask;	    /* CPUs present at boot (bit = APIC ID); 0: 0..ncpus-1 */
	uint32_t pci_hotplug_slots; /* bus 0 slots with ACPI hot-plug (devices/pci_hotplug.h) */
};

/* Whether CPU `id` is present at boot (MADT Enabled, static _STA). */
static inline bool acpi_cpu_present(const struct acpi_config *c, unsigned id)
{
	return c->present_mask ? id < 64 && (c->present_mask >> id & 1) : id < c->ncpus;
}

/* Lay out the tables into buf[0..size). Returns the number of bytes used and sets *rsdp_gpa, or
 * -ENOSPC when buf is too small. */
long acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t gpa,
		uint64_t *rsdp_gpa);

/* Where acpi_build_linked() put every pointer between tables and every checksum (offsets into
 * buf), so the tables can be handed to firmware as QEMU's table-loader files
 * (devices/acpi_loader.h) and come out identical wherever the firmware places them. */
#define ACPI_LINKS_MAX 48
struct acpi_links {
	unsigned npointers, nchecksums;
	struct {
		uint32_t offset; /* field holding gpa + offset of the table it points at */
		uint8_t size;	 /* 4 or 8 bytes, little-endian */
	} pointers[ACPI_LINKS_MAX];
	struct {
		uint32_t start, length, field; /* the byte at `field` makes the range sum to 0 */
	} checksums[ACPI_LINKS_MAX];
};

/* acpi_build(), also filling *links (when not NULL). -ENOSPC also when links overflow. */
long acpi_build_linked(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t gpa,
		       uint64_t *rsdp_gpa, struct acpi_links *links);

#endif
