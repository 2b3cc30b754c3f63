/* The AML of PCI hot-plug on bus 0 (devices/pci_hotplug.h has the register block):
 *
 *   \_SB.PHPR            PNP0C02 reserving the ports
 *   \_SB.PCI0.PCST       the register block: PCIU (insert events), PCID (removal requests),
 *                        B0EJ (eject), read-to-clear for the two event words
 *   \_SB.PCI0.SLxx       per hot-pluggable slot: _ADR, _SUN, _EJ0 (writes the slot's bit to B0EJ)
 *   \_SB.PCI0.PCNT       Notify (SLxx, 1) for each inserted slot, Notify (SLxx, 3) for each slot
 *                        the VMM wants back; Linux's acpiphp rescans or releases the slot
 *   \_GPE._E01           PCNT
 * Boot devices get no SLxx, so the guest has no _EJ0 to call on them.
 */
#include <stdio.h>

#include "devices/acpi_dsdt.h"
#include "devices/pci_hotplug.h"
#include "memory/layout.h"

static void slot_name(char out[5], unsigned slot)
{
	snprintf(out, 5, "SL%02X", slot & 0xFF);
}

static void registers(struct aml *a)
{
	aml_op_region(a, "PCST", AML_SYSTEM_IO);
	aml_int(a, LAYOUT_PORT_PCI_HOTPLUG);
	aml_int(a, PCI_HOTPLUG_LEN);
	aml_field(a, "PCST", AML_DWORD_ACC, false, AML_WRITE_AS_ZEROS);
	aml_field_unit(a, "PCIU", 32);
	aml_field_unit(a, "PCID", 32);
	aml_field_unit(a, "B0EJ", 32);
	aml_field_unit(a, "PRMV", 32);
	aml_end(a);
}

/* Device (SLxx) { Name (_ADR, slot << 16); Name (_SUN, slot); Method (_EJ0, 1) { B0EJ = bit } } */
static void slot_device(struct aml *a, unsigned slot)
{
	char name[5];
	slot_name(name, slot);
	aml_device(a, name);
	aml_name(a, "_ADR");
	aml_int(a, (uint64_t)slot << 16);
	aml_name(a, "_SUN");
	aml_int(a, slot);
	aml_method(a, "_EJ0", 1, false);
	aml_store(a);
	aml_int(a, 1ULL << slot);
	aml_name_string(a, "B0EJ");
	aml_end(a);
	aml_end(a);
}

/* If (And (Local<n>, bit, Zero)) { Notify (SLxx, code) } */
static void notify_if(struct aml *a, unsigned local, unsigned slot, unsigned code)
{
	char name[5];
	slot_name(name, slot);
	aml_if(a);
	aml_and(a);
	aml_local(a, local);
	aml_int(a, 1ULL << slot);
	aml_int(a, 0); /* no target */
	aml_notify(a);
	aml_name_string(a, name);
	aml_int(a, code);
	aml_end(a);
}

static void method_pcnt(struct aml *a, uint32_t slots)
{
	aml_method(a, "PCNT", 0, true);
	aml_store(a);
	aml_name_string(a, "PCIU");
	aml_local(a, 0);
	aml_store(a);
	aml_name_string(a, "PCID");
	aml_local(a, 1);
	for (unsigned s = 1; s < 32; s++) {
		if (!(slots >> s & 1))
			continue;
		notify_if(a, 0, s, 1);
		notify_if(a, 1, s, 3);
	}
	aml_end(a);
}

void acpi_pci_hotplug_aml(const struct acpi_config *cfg, struct aml *a)
{
	uint32_t slots = cfg->pci_hotplug_slots & ~1u;
	if (!slots)
		return;
	struct aml r;
	aml_scope(a, "\\_SB");
	aml_device(a, "PHPR");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_UID");
	aml_string(a, "PCI hot-plug");
	aml_init(&r);
	aml_res_io(&r, LAYOUT_PORT_PCI_HOTPLUG, LAYOUT_PORT_PCI_HOTPLUG, 1, PCI_HOTPLUG_LEN);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a);
	aml_end(a);

	aml_scope(a, "\\_SB.PCI0");
	registers(a);
	for (unsigned s = 1; s < 32; s++)
		if (slots >> s & 1)
			slot_device(a, s);
	method_pcnt(a, slots);
	aml_end(a);

	char gpe[5];
	snprintf(gpe, sizeof(gpe), "_E%02X", ACPI_GPE_PCI_HOTPLUG);
	aml_scope(a, "\\_GPE");
	aml_method(a, gpe, 0, false);
	aml_name_string(a, "\\_SB.PCI0.PCNT");
	aml_end(a);
	aml_end(a);
}
