/* ACPI PCI hot-plug of bus 0's slots, the shape Linux's acpiphp expects (QEMU's PIIX4 scheme): a
 * 16-byte register block at LAYOUT_PORT_PCI_HOTPLUG, GPE0 bit ACPI_GPE_PCI_HOTPLUG on a change,
 * and per hot-pluggable slot an AML Device Sxx with _ADR, _SUN and _EJ0
 * (devices/pci_hotplug_aml.c).
 *
 *   +0  dword read: slots with an insert event (cleared by the read)
 *   +4  dword read: slots the VMM asks the guest to release (cleared by the read)
 *   +8  dword write: eject the slots whose bits are set (_EJ0); reads 0
 *   +12 dword read: the hot-pluggable slots
 * Other offsets and sizes read as all-ones and ignore writes.
 *
 * Pure device logic, like acpi_cpu_hotplug: the glue (devices/pci_hotplug_device.c) wires the
 * ports, raises the GPE in ops->notify and tears the device down in ops->eject.
 *   plug:   pci_hotplug_reserve() -> the VMM registers the function in that slot ->
 *           pci_hotplug_insert() -> notify -> the guest's _E01 sends Notify (Sxx, 1) and rescans.
 *   unplug: pci_hotplug_remove() -> notify -> Notify (Sxx, 3) -> the guest's driver lets go and
 *           _EJ0 writes +8 -> ops->eject(slot) -> the VMM frees the function and calls
 *           pci_hotplug_release(slot).
 * Only hot-pluggable slots (empty when the machine was built) take part: the guest cannot eject a
 * boot device, nor a slot holding nothing.
 */
#ifndef MINIVMM_DEVICES_PCI_HOTPLUG_H
#define MINIVMM_DEVICES_PCI_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

/* The GPE0 bit the block raises; the DSDT handles it with \_GPE._E01. */
#define ACPI_GPE_PCI_HOTPLUG 1
#define PCI_HOTPLUG_LEN 16

struct pci_hotplug_ops {
	void (*notify)(void *opaque);		    /* raise GPE0 bit ACPI_GPE_PCI_HOTPLUG */
	void (*eject)(void *opaque, unsigned slot); /* the guest released this slot */
	void *opaque;
};

struct pci_hotplug;

/* `slots`: the hot-pluggable slots (bit = slot; slot 0, the host bridge, never).  -EINVAL, -ENOMEM.
 */
int pci_hotplug_create(uint32_t slots, const struct pci_hotplug_ops *ops, struct pci_hotplug **out);
void pci_hotplug_destroy(struct pci_hotplug *hp);
/* Power-on: pending events dropped; what is plugged stays. */
void pci_hotplug_reset(struct pci_hotplug *hp);
uint32_t pci_hotplug_slots(struct pci_hotplug *hp);
/* An access to `port` (absolute).  Thread-safe; callbacks run unlocked. */
void pci_hotplug_io(struct pci_hotplug *hp, uint16_t port, uint8_t *data, unsigned len,
		    bool is_write);
/* Take the lowest free hot-pluggable slot for a new function: the slot, or -ENOSPC. */
int pci_hotplug_reserve(struct pci_hotplug *hp);
/* Give a reserved slot back (the function could not be made), or a slot whose function was freed
 * after its eject.  -EINVAL when the slot is neither. */
int pci_hotplug_release(struct pci_hotplug *hp, unsigned slot);
/* The function in reserved `slot` is registered: tell the guest.  -EINVAL unless reserved. */
int pci_hotplug_insert(struct pci_hotplug *hp, unsigned slot);
/* Ask the guest to release `slot`.  -EPERM not hot-pluggable, -ENOENT nothing plugged there,
 * -EINPROGRESS already ejected (waiting for its release). */
int pci_hotplug_remove(struct pci_hotplug *hp, unsigned slot);
/* The guest has ejected the slot and the VMM has not released it yet. */
bool pci_hotplug_ejected(struct pci_hotplug *hp, unsigned slot);

#endif
