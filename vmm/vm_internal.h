/* Pieces of the VM lifecycle split out of vm.c: not for devices. */
#ifndef MINIVMM_VMM_VM_INTERNAL_H
#define MINIVMM_VMM_VM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* vm_devices.c: the device environment and its KVM side; every registered device is created
 * (devices/device.h). */
int vm_devices_create(struct vm *vm);
void vm_devices_destroy(struct vm *vm);
struct storage *vm_storage(struct vm *vm); /* the "storage" device, NULL without one */
int vm_irqchip_reset(struct vm *vm);	   /* in-kernel PIC/IOAPIC to power-on */

/* vm.c: the ACPI configuration of this VM, the same for direct and firmware boot. */
struct acpi_config;
void vm_acpi_config(const struct vm *vm, struct acpi_config *ac);

/* vm_firmware.c: boot through firmware (no --kernel); destroy runs with the vCPUs stopped. */
int vm_firmware_setup(struct vm *vm);
/* A guest reboot in the same process (vCPUs paused): the pristine BIOS copy below 1 MiB again
 * (fw_cfg is a device: devices_reset puts it back). */
void vm_firmware_reset(struct vm *vm);
void vm_firmware_destroy(struct vm *vm);

/* vm_loop.c: run the VM's event loop until the VM ends: console input into COM1, SIGINT/SIGTERM/
 * SIGHUP, end requests (which queue vm_shutdown_job on the worker). */
void vm_main_loop(struct vm *vm);

/* vm_reboot.c: the in-process reboot (--reboot restart), queued at most once at a time. */
void vm_reboot_queue(struct vm *vm);
/* vm.c: on the worker: stop and join the vCPUs, then stop the loop. */
void vm_shutdown_job(void *opaque);
/* vm.c: what a boot needs in RAM: ACPI tables, kernel, initrd, boot parameters; then the boot
 * vCPU's registers. */
int vm_load_guest(struct vm *vm);

/* vm_control.c: start the control socket (on the VM's loop, verbs on its worker), then, once the
 * devices exist, register the VM's own verbs. */
int vm_control_start(struct vm *vm);
int vm_control_register(struct vm *vm);
void vm_control_stop(struct vm *vm);

/* vm_snapshot_control.c: the control verb "snapshot take SNAP" (VM paused). */
int vm_snapshot_register_verb(struct vm *vm);

/* vm_pagefusion.c: --pagefusion on (guest RAM mergeable for KSM; a warning when KSM is off). */
int vm_pagefusion_start(struct vm *vm);
/* vm_cpu_hotplug.c: the ACPI CPU hot-plug block (with --cpuhotplug; nothing without), created
 * after the vCPUs and destroyed after they stopped. */
int vm_cpu_hotplug_create(struct vm *vm);
void vm_cpu_hotplug_reset(struct vm *vm); /* guest reboot: pending events dropped */
void vm_cpu_hotplug_destroy(struct vm *vm);
/* On the worker (control verbs).  Plug: 0 once the vCPU runs and the guest announced it;
 * *answered false when the guest did not answer in time.  Unplug: 0 once the guest released the
 * CPU and its vCPU thread is joined.  -errno with a one-line message otherwise. */
int vm_cpu_plug(struct vm *vm, unsigned cpu, bool *answered);
int vm_cpu_unplug(struct vm *vm, unsigned cpu);
/* CPUs the guest has taken: present at boot, or plugged and acknowledged (_OST success). */
uint64_t vm_cpu_online_mask(struct vm *vm);

/* vm_pci_hotplug.c: ACPI hot-plug of bus 0's slots that are empty once the devices exist. */
int vm_pci_hotplug_create(struct vm *vm);
void vm_pci_hotplug_reset(struct vm *vm);   /* guest reboot: pending events dropped */
void vm_pci_hotplug_destroy(struct vm *vm); /* frees the functions still plugged */
uint32_t vm_pci_hotplug_slots(const struct vm *vm);
/* On the worker.  Reserve a slot (or -errno with the message), register the function there, then
 * plug: the guest is told; free_fn(opaque) frees the function after the guest ejected the slot
 * (loop thread, vCPUs paused) or when the VM ends.  cancel gives back a reserved slot. */
int vm_pci_hotplug_reserve(struct vm *vm);
void vm_pci_hotplug_cancel(struct vm *vm, unsigned slot);
int vm_pci_hotplug_plug(struct vm *vm, unsigned slot, void (*free_fn)(void *), void *opaque);
bool vm_pci_hotplug_has(struct vm *vm, unsigned slot); /* a hot-plugged function is there */
/* Ask the guest to release the slot and wait until its function is freed: 0, -ETIMEDOUT, or
 * -errno with the message (a boot device, an empty slot). */
int vm_pci_hotplug_unplug(struct vm *vm, unsigned slot, int timeout_ms);
/* vm_nic_hotplug.c: the verbs nic-add, nic-remove, nic-hotplugged. */
int vm_nic_hotplug_register(struct vm *vm);
struct json_object *
vm_nic_hotplug_ids(struct vm *vm); /* a JSON array of the hot-plugged NICs' ids */

#endif
