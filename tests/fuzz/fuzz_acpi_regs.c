/* ACPI fixed hardware (PM1 event/control, PM timer, GPE0) and the CPU hot-plug register block
 * driven by random port accesses of random widths, with VMM-side insert/remove events mixed in:
 * nothing may crash, and the callbacks see only CPUs that exist. */
#include <stdint.h>
#include <stdlib.h>

#include "devices/acpi_cpu_hotplug.h"
#include "devices/acpi_pm.h"
#include "memory/layout.h"
#include "tests/fuzz/fuzz_input.h"

#define POSSIBLE 8

static void set_sci(void *opaque, bool level)
{
	(void)opaque;
	(void)level;
}

static void sleep_cb(void *opaque, unsigned slp_typ)
{
	(void)opaque;
	(void)slp_typ;
}

static void notify(void *opaque)
{
	acpi_pm_raise_gpe(opaque, 2);
}

static void eject(void *opaque, unsigned cpu)
{
	(void)opaque;
	if (cpu >= POSSIBLE)
		abort(); /* the device must never name a CPU that cannot exist */
}

static void ost(void *opaque, unsigned cpu, uint32_t event, uint32_t status)
{
	(void)opaque;
	(void)event;
	(void)status;
	if (cpu >= POSSIBLE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct acpi_pm *pm;
	struct acpi_cpu_hotplug *hp;
	const struct acpi_pm_ops pm_ops = {.set_sci = set_sci, .sleep = sleep_cb};

	if (acpi_pm_create(&pm_ops, &pm) < 0)
		abort();
	const struct acpi_cpu_hotplug_ops hp_ops = {
	    .notify = notify, .eject = eject, .ost = ost, .opaque = pm};
	if (acpi_cpu_hotplug_create(POSSIBLE, 1 + take_u8(&in) % POSSIBLE, &hp_ops, &hp) < 0)
		abort();
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in), off = take_u8(&in);
		unsigned len = 1u << (op >> 6); /* 1, 2, 4, 8 */
		uint8_t buf[8];
		uint64_t v = take_u64(&in);
		for (int i = 0; i < 8; i++)
			buf[i] = (uint8_t)(v >> (8 * i));
		bool write = op & 1;
		/* Ports as the I/O bus delivers them: only accesses inside a registered range. */
		switch ((op >> 1) & 7) {
		case 0:
		case 1:
			if (off % 16 + len <= 12)
				acpi_pm_io(pm, LAYOUT_PORT_ACPI_PM + off % 16, buf, len, write);
			break;
		case 2:
			if (off % 8 + len <= LAYOUT_PORT_ACPI_GPE0_LEN)
				acpi_pm_io(pm, LAYOUT_PORT_ACPI_GPE0 + off % 8, buf, len, write);
			break;
		case 3:
		case 4:
			if (off % 16 + len <= ACPI_CPU_HOTPLUG_LEN)
				acpi_cpu_hotplug_io(hp, LAYOUT_PORT_CPU_HOTPLUG + off % 16, buf,
						    len, write);
			break;
		case 5:
			acpi_cpu_hotplug_insert(hp, off % (POSSIBLE + 2));
			break;
		case 6:
			acpi_cpu_hotplug_remove(hp, off % (POSSIBLE + 2));
			break;
		case 7:
			if (off & 1)
				acpi_pm_reset(pm);
			else
				acpi_pm_press_power_button(pm);
			break;
		}
	}
	acpi_cpu_hotplug_destroy(hp);
	acpi_pm_destroy(pm);
	return 0;
}
