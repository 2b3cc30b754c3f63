/* Pieces of the VM lifecycle split out of vm.c: not for devices. */
#ifndef MINIVMM_VMM_VM_INTERNAL_H
#define MINIVMM_VMM_VM_INTERNAL_H

#include <stddef.h>

struct vm;

/* vm_devices.c: the fixed machine (COM1, RTC, i8042, POST port, PCI bus, ACPI PM). */
int vm_devices_create(struct vm *vm, char *err, size_t errlen);
void vm_devices_destroy(struct vm *vm);

/* vm.c: the ACPI configuration of this VM, the same for direct and firmware boot. */
struct acpi_config;
void vm_acpi_config(const struct vm *vm, struct acpi_config *ac);

/* vm_firmware.c: boot through firmware (no --kernel); destroy runs with the vCPUs stopped. */
int vm_firmware_setup(struct vm *vm, char *err, size_t errlen);
/* A guest reboot in the same process (vCPUs paused): the pristine BIOS copy below 1 MiB again,
 * fw_cfg back to its power-on state. */
void vm_firmware_reset(struct vm *vm);
void vm_firmware_destroy(struct vm *vm);

/* vm_loop.c: wait for vm->end while feeding console input and catching SIGINT/SIGTERM/SIGHUP. */
void vm_main_loop(struct vm *vm);

/* vm_control.c: start the control socket and register the VM's verbs. */
int vm_control_start(struct vm *vm, char *err, size_t errlen);
void vm_control_stop(struct vm *vm);

/* vm_snapshot_control.c: the control verb "snapshot take SNAP" (VM paused). */
int vm_snapshot_register_verb(struct vm *vm, char *err, size_t errlen);

#endif
