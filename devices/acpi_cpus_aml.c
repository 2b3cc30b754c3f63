/* Processor devices \_SB.CPUS.Cxxx (ACPI0007) and the CPU hot-plug methods.
 *
 * Without cpu_hotplug, boot CPUs are present and the other possible CPUs absent.  With it, the
 * status of CPUs 1..possible-1 is read from the 12-byte register block at LAYOUT_PORT_CPU_HOTPLUG,
 * QEMU's "modern" CPU hot-plug interface, implemented by devices/acpi_cpu_hotplug.c, with the
 * selector equal to the APIC ID:
 *   +0 dword  write: CPU selector
 *   +4 byte   read: bit0 enabled, bit1 insert event, bit2 remove event;
 *             write: bit1 clear insert, bit2 clear remove, bit3 eject
 *   +5 byte   command: 0 select the next CPU with an event, 1 OST event, 2 OST status
 *   +8 dword  command data (read: selector found by command 0; write: OST values)
 * The device raises GPE0 bit ACPI_GPE_CPU_HOTPLUG; \_GPE._E02 scans and sends Notify 1 (check) to
 * inserted CPUs and Notify 3 (eject request) to CPUs being removed.  CPU 0 is never ejectable.
 */
#include <stdio.h>

#include "devices/acpi_dsdt.h"
#include "memory/layout.h"

#define MUTEX "CPLK"
#define FOREVER 0xFFFF

static void cpu_name(char out[5], unsigned id)
{
	snprintf(out, 5, "C%03X", id & 0xFFF);
}

/* Store (src int, dst name) */
static void store_int(struct aml *a, uint64_t v, const char *dst)
{
	aml_store(a);
	aml_int(a, v);
	aml_name_string(a, dst);
}

static void store_arg(struct aml *a, unsigned arg, const char *dst)
{
	aml_store(a);
	aml_arg(a, arg);
	aml_name_string(a, dst);
}

static void hotplug_registers(struct aml *a)
{
	aml_op_region(a, "PRST", AML_SYSTEM_IO);
	aml_int(a, LAYOUT_PORT_CPU_HOTPLUG);
	aml_int(a, ACPI_CPU_HOTPLUG_LEN);
	/* Control bits are "write 1 to act", so the other bits of the byte must be written as 0. */
	aml_field(a, "PRST", AML_BYTE_ACC, false, AML_WRITE_AS_ZEROS);
	aml_field_skip(a, 32);
	aml_field_unit(a, "CPEN", 1);
	aml_field_unit(a, "CINS", 1);
	aml_field_unit(a, "CRMV", 1);
	aml_field_unit(a, "CEJ0", 1);
	aml_field_skip(a, 4);
	aml_field_unit(a, "CCMD", 8);
	aml_end(a);
	aml_field(a, "PRST", AML_DWORD_ACC, false, AML_PRESERVE);
	aml_field_unit(a, "CSEL", 32);
	aml_field_skip(a, 32);
	aml_field_unit(a, "CDAT", 32);
	aml_end(a);
	aml_mutex(a, MUTEX, 0);
}

/* CSTA (sel): 0x0F if the selected CPU is enabled, else 0. */
static void method_csta(struct aml *a)
{
	aml_method(a, "CSTA", 1, true);
	aml_acquire(a, MUTEX, FOREVER);
	store_arg(a, 0, "CSEL");
	aml_store(a);
	aml_int(a, 0);
	aml_local(a, 0);
	aml_if(a);
	aml_lequal(a);
	aml_name_string(a, "CPEN");
	aml_int(a, 1);
	aml_store(a);
	aml_int(a, 0x0F);
	aml_local(a, 0);
	aml_end(a);
	aml_release(a, MUTEX);
	aml_return(a);
	aml_local(a, 0);
	aml_end(a);
}

/* CEJT (sel): eject the selected CPU (called by its _EJ0). */
static void method_cejt(struct aml *a)
{
	aml_method(a, "CEJT", 1, true);
	aml_acquire(a, MUTEX, FOREVER);
	store_arg(a, 0, "CSEL");
	store_int(a, 1, "CEJ0");
	aml_release(a, MUTEX);
	aml_end(a);
}

/* COST (sel, event, status): pass _OST's source event and status code to the VMM. */
static void method_cost(struct aml *a)
{
	aml_method(a, "COST", 3, true);
	aml_acquire(a, MUTEX, FOREVER);
	store_arg(a, 0, "CSEL");
	store_int(a, 1, "CCMD");
	store_arg(a, 1, "CDAT");
	store_int(a, 2, "CCMD");
	store_arg(a, 2, "CDAT");
	aml_release(a, MUTEX);
	aml_end(a);
}

/* CTFY (sel, code): Notify (Cxxx, code) for the CPU whose selector is sel. */
static void method_ctfy(const struct acpi_config *cfg, struct aml *a)
{
	char name[5];

	aml_method(a, "CTFY", 2, false);
	for (unsigned id = 0; id < cfg->ncpus_possible; id++) {
		cpu_name(name, id);
		aml_if(a);
		aml_lequal(a);
		aml_arg(a, 0);
		aml_int(a, id);
		aml_notify(a);
		aml_name_string(a, name);
		aml_arg(a, 1);
		aml_end(a);
	}
	aml_end(a);
}

/* One branch of CSCN: If (LEqual (flag, One)) { CTFY (CDAT, code); Store (One, flag); more } */
static void cscn_event(struct aml *a, const char *flag, unsigned code)
{
	aml_if(a);
	aml_lequal(a);
	aml_name_string(a, flag);
	aml_int(a, 1);
	aml_name_string(a, "CTFY");
	aml_name_string(a, "CDAT");
	aml_int(a, code);
	store_int(a, 1, flag);
	aml_store(a);
	aml_int(a, 1);
	aml_local(a, 0);
	aml_end(a);
}

/* CSCN: handle every pending insert/remove event.  Each pass clears one event; the pass count is
 * bounded (two events per CPU) so a misbehaving device cannot hang the guest in this loop. */
static void method_cscn(const struct acpi_config *cfg, struct aml *a)
{
	aml_method(a, "CSCN", 0, true);
	aml_acquire(a, MUTEX, FOREVER);
	aml_store(a);
	aml_int(a, 1);
	aml_local(a, 0);
	aml_store(a);
	aml_int(a, 0);
	aml_local(a, 1);
	aml_while(a);
	aml_land(a);
	aml_local(a, 0);
	aml_lless(a);
	aml_local(a, 1);
	aml_int(a, 2 * cfg->ncpus_possible);
	aml_store(a);
	aml_int(a, 0);
	aml_local(a, 0);
	aml_increment(a);
	aml_local(a, 1);
	store_int(a, 0, "CCMD");
	cscn_event(a, "CINS", 1);
	aml_else(a);
	cscn_event(a, "CRMV", 3);
	aml_end(a);
	aml_end(a);
	aml_release(a, MUTEX);
	aml_end(a);
}

static void cpu_device(const struct acpi_config *cfg, struct aml *a, unsigned id)
{
	char name[5];
	uint8_t mat[ACPI_MADT_LAPIC_LEN];
	bool dynamic = cfg->cpu_hotplug && id != 0;

	cpu_name(name, id);
	aml_device(a, name);
	aml_name(a, "_HID");
	aml_string(a, "ACPI0007");
	aml_name(a, "_UID");
	aml_int(a, id);
	aml_method(a, "_STA", 0, false);
	aml_return(a);
	if (dynamic) {
		aml_name_string(a, "CSTA");
		aml_int(a, id);
	} else {
		aml_int(a, acpi_cpu_present(cfg, id) ? 0x0F : 0);
	}
	aml_end(a);
	/* Linux maps a hot-added CPU from _MAT and wants it Enabled. */
	acpi_madt_lapic(mat, id, id, ACPI_MADT_ENABLED);
	aml_name(a, "_MAT");
	aml_buffer(a, mat, sizeof(mat));
	if (dynamic) {
		aml_method(a, "_EJ0", 1, false);
		aml_name_string(a, "CEJT");
		aml_int(a, id);
		aml_end(a);
		aml_method(a, "_OST", 3, false);
		aml_name_string(a, "COST");
		aml_int(a, id);
		aml_arg(a, 0);
		aml_arg(a, 1);
		aml_end(a);
	}
	aml_end(a);
}

void acpi_cpus_aml(const struct acpi_config *cfg, struct aml *a)
{
	aml_scope(a, "\\_SB");
	if (cfg->cpu_hotplug) {
		/* Reserve the register block so nothing else is placed there. */
		struct aml r;
		aml_device(a, "PRES");
		aml_name(a, "_HID");
		aml_eisaid(a, "PNP0C02");
		aml_name(a, "_UID");
		aml_string(a, "CPU hot-plug");
		aml_init(&r);
		aml_res_io(&r, LAYOUT_PORT_CPU_HOTPLUG, LAYOUT_PORT_CPU_HOTPLUG, 1,
			   ACPI_CPU_HOTPLUG_LEN);
		aml_name(a, "_CRS");
		aml_resource_template(a, &r);
		aml_free(&r);
		aml_end(a);
	}
	aml_device(a, "CPUS");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0010");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A05");
	if (cfg->cpu_hotplug) {
		hotplug_registers(a);
		method_csta(a);
		method_cejt(a);
		method_cost(a);
		method_ctfy(cfg, a);
		method_cscn(cfg, a);
	}
	for (unsigned id = 0; id < cfg->ncpus_possible; id++)
		cpu_device(cfg, a, id);
	aml_end(a);
	aml_end(a);
	if (cfg->cpu_hotplug) {
		char gpe[5];
		snprintf(gpe, sizeof(gpe), "_E%02X", ACPI_GPE_CPU_HOTPLUG);
		aml_scope(a, "\\_GPE");
		aml_method(a, gpe, 0, false);
		aml_name_string(a, "\\_SB.CPUS.CSCN");
		aml_end(a);
		aml_end(a);
	}
}
