/* CPU hot-plug register block: 12 ports at LAYOUT_PORT_CPU_HOTPLUG, QEMU's "modern" interface
 * (docs/specs/acpi_cpu_hotplug.rst), driven by the AML in devices/acpi_cpus_aml.c.
 *
 * Pure device logic, like acpi_pm: the VM wires acpi_cpu_hotplug_io() to the ports and supplies
 * the callbacks.  The selector is the CPU index, which is also its APIC ID and ACPI _UID.
 *   VMM: acpi_cpu_hotplug_insert(cpu)  -> insert event, ops->notify (raise GPE0 bit
 *        ACPI_GPE_CPU_HOTPLUG) -> the guest's _E02 sends Notify(Cxxx, 1) and reads _STA/_MAT.
 *   VMM: acpi_cpu_hotplug_remove(cpu)  -> remove event, ops->notify -> Notify(Cxxx, 3) -> the guest
 *        offlines the CPU and calls _EJ0 -> ops->eject(cpu); then _OST -> ops->ost(cpu, ev, st).
 * CPU 0 is never removed; an eject of a CPU the VMM did not mark for removal is refused.
 */
#ifndef MINIVMM_DEVICES_ACPI_CPU_HOTPLUG_H
#define MINIVMM_DEVICES_ACPI_CPU_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

/* The GPE0 bit the hot-plug block raises; the DSDT handles it with \_GPE._E02. */
#define ACPI_GPE_CPU_HOTPLUG 2
#define ACPI_CPU_HOTPLUG_LEN 12

struct acpi_cpu_hotplug_ops {
	void (*notify)(void *opaque);		   /* raise GPE0 bit ACPI_GPE_CPU_HOTPLUG */
	void (*eject)(void *opaque, unsigned cpu); /* the guest released this CPU */
	void (*ost)(void *opaque, unsigned cpu, uint32_t event, uint32_t status); /* optional */
	void *opaque;
};

struct acpi_cpu_hotplug;

/* CPUs 0..present-1 start enabled; possible <= LAYOUT_MAX_VCPUS.  -EINVAL, -ENOMEM. */
int acpi_cpu_hotplug_create(unsigned possible, unsigned present,
			    const struct acpi_cpu_hotplug_ops *ops, struct acpi_cpu_hotplug **out);
/* The same with the CPUs present at start as a mask (bit = CPU; bit 0 must be set). */
int acpi_cpu_hotplug_create_mask(unsigned possible, uint64_t present,
				 const struct acpi_cpu_hotplug_ops *ops,
				 struct acpi_cpu_hotplug **out);
/* Power-on: pending insert/remove events and the OST/selector registers cleared; which CPUs are
 * enabled stays (the plugged CPUs survive a reboot). */
void acpi_cpu_hotplug_reset(struct acpi_cpu_hotplug *hp);
void acpi_cpu_hotplug_destroy(struct acpi_cpu_hotplug *hp);
/* An access to `port` (absolute).  Bad offsets and sizes read as all-ones and ignore writes; a
 * selector past the last CPU reads 0 and ignores writes.  Thread-safe; callbacks run unlocked. */
void acpi_cpu_hotplug_io(struct acpi_cpu_hotplug *hp, uint16_t port, uint8_t *data, unsigned len,
			 bool is_write);
/* Announce a new CPU (the VMM has created its vCPU).  -EINVAL out of range, -EEXIST if enabled. */
int acpi_cpu_hotplug_insert(struct acpi_cpu_hotplug *hp, unsigned cpu);
/* Ask the guest to release a CPU.  -EINVAL out of range, -EPERM for CPU 0, -ENOENT if absent. */
int acpi_cpu_hotplug_remove(struct acpi_cpu_hotplug *hp, unsigned cpu);
bool acpi_cpu_hotplug_enabled(struct acpi_cpu_hotplug *hp, unsigned cpu);

#endif
