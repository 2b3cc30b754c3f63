/* Internal to the ACPI table builder: the DSDT's AML and the pieces the tables share. */
#ifndef MINIVMM_DEVICES_ACPI_DSDT_H
#define MINIVMM_DEVICES_ACPI_DSDT_H

#include <stdint.h>

#include "devices/acpi.h"
#include "devices/acpi_cpu_hotplug.h"
#include "devices/aml.h"

/* MADT Processor Local APIC flags (ACPI 6.3+). */
#define ACPI_MADT_ENABLED 0x1
#define ACPI_MADT_ONLINE_CAPABLE 0x2
#define ACPI_MADT_LAPIC_LEN 8

/* A MADT Processor Local APIC entry: the MADT and each CPU's _MAT use the same bytes. */
void acpi_madt_lapic(uint8_t e[ACPI_MADT_LAPIC_LEN], unsigned uid, unsigned apic_id,
		     uint32_t flags);

/* The DSDT's definition block body (everything after the 36-byte header). cfg is validated. */
void acpi_dsdt_body(const struct acpi_config *cfg, struct aml *a);
/* \_SB.CPUS and, with cfg->cpu_hotplug, the hot-plug methods and \_GPE handler. */
void acpi_cpus_aml(const struct acpi_config *cfg, struct aml *a);
/* With cfg->pci_hotplug_slots: the PCI hot-plug registers, slot devices and \_GPE handler. */
void acpi_pci_hotplug_aml(const struct acpi_config *cfg, struct aml *a);

#endif
