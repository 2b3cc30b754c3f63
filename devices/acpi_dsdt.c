/* The DSDT: \_S5, the PCI host bridge with its windows and interrupt routing, the legacy ISA
 * devices Linux finds only through ACPI (COM1, RTC, i8042), and the processors.  Port numbers and
 * interrupts come from memory/layout.h so the tables always agree with the devices. */
#include "devices/acpi_dsdt.h"
#include "devices/acpi_pm.h"
#include "memory/layout.h"

/* Name (name, EisaId (id)) */
static void name_eisaid(struct aml *a, const char *name, const char *id)
{
	aml_name(a, name);
	aml_eisaid(a, id);
}

static void name_int(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	aml_int(a, v);
}

static void dsdt_s5(struct aml *a)
{
	/* PM1a and PM1b SLP_TYP values, then two reserved. */
	aml_name(a, "\\_S5");
	aml_package(a, 4);
	aml_int(a, ACPI_PM_SLP_TYP_S5);
	aml_int(a, ACPI_PM_SLP_TYP_S5);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_end(a);
}

static void pci0_crs(const struct acpi_config *cfg, struct aml *a)
{
	struct aml r;

	aml_init(&r);
	aml_res_word_bus_number(&r, AML_RES_PRODUCER, 0, 255);
	/* The configuration mechanism #1 ports are the bridge's own. */
	aml_res_io(&r, LAYOUT_PORT_PCI_CONFIG, LAYOUT_PORT_PCI_CONFIG, 1, 8);
	aml_res_word_io(&r, AML_RES_PRODUCER, 0x0000, LAYOUT_PORT_PCI_CONFIG - 1);
	aml_res_word_io(&r, AML_RES_PRODUCER, LAYOUT_PORT_PCI_CONFIG + 8, 0xFFFF);
	aml_res_dword_memory(&r, AML_RES_PRODUCER, false, true, cfg->pci_mmio32_start,
			     cfg->pci_mmio32_end - 1);
	if (cfg->pci_mmio64_size)
		aml_res_qword_memory(&r, AML_RES_PRODUCER, true, true, cfg->pci_mmio64_start,
				     cfg->pci_mmio64_start + cfg->pci_mmio64_size - 1);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
}

static void pci0_prt(const struct acpi_config *cfg, struct aml *a)
{
	/* Every slot's INTA-D goes straight to an IOAPIC GSI: Source Zero, Source Index = GSI. */
	aml_name(a, "_PRT");
	aml_package(a, cfg->pci_slots * 4);
	for (unsigned slot = 0; slot < cfg->pci_slots; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package(a, 4);
			aml_int(a, (uint64_t)slot << 16 | 0xFFFF);
			aml_int(a, pin);
			aml_int(a, 0);
			aml_int(a, layout_pci_intx_gsi(slot, pin));
			aml_end(a);
		}
	}
	aml_end(a);
}

static void dsdt_pci0(const struct acpi_config *cfg, struct aml *a)
{
	aml_device(a, "PCI0");
	name_eisaid(a, "_HID", "PNP0A08");
	name_eisaid(a, "_CID", "PNP0A03");
	name_int(a, "_SEG", 0);
	name_int(a, "_BBN", 0);
	name_int(a, "_UID", 0);
	pci0_crs(cfg, a);
	pci0_prt(cfg, a);
	aml_end(a);
}

/* A legacy ISA device: _HID, _UID, and _CRS with up to two fixed port ranges and one ISA IRQ. */
static void dsdt_isa_device(struct aml *a, const char *name, const char *hid, unsigned uid,
			    uint16_t port0, uint8_t len0, uint16_t port1, uint8_t len1,
			    unsigned irq)
{
	struct aml r;

	aml_device(a, name);
	name_eisaid(a, "_HID", hid);
	name_int(a, "_UID", uid);
	aml_init(&r);
	aml_res_io(&r, port0, port0, 1, len0);
	if (len1)
		aml_res_io(&r, port1, port1, 1, len1);
	aml_res_irq_noflags(&r, irq);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a);
}

void acpi_dsdt_body(const struct acpi_config *cfg, struct aml *a)
{
	dsdt_s5(a);
	aml_scope(a, "\\_SB");
	dsdt_pci0(cfg, a);
	if (cfg->serial_com1)
		dsdt_isa_device(a, "COM1", "PNP0501", 1, LAYOUT_PORT_COM1, 8, 0, 0,
				LAYOUT_IRQ_COM1);
	dsdt_isa_device(a, "RTC", "PNP0B00", 0, LAYOUT_PORT_RTC, 2, 0, 0, LAYOUT_IRQ_RTC);
	/* i8042: data at 0x60, command/status at 0x64; IRQ 1 is the keyboard's. */
	dsdt_isa_device(a, "KBD", "PNP0303", 0, LAYOUT_PORT_I8042, 1, LAYOUT_PORT_I8042 + 4, 1, 1);
	aml_end(a);
	acpi_cpus_aml(cfg, a);
	acpi_pci_hotplug_aml(cfg, a);
}
