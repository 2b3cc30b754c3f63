/* The in-process reboot (--reboot restart): a guest reset (0xCF9, i8042 0xFE, triple fault)
 * resets the machine instead of ending the process, so the pid, the open and locked disks, the
 * immutable diffs, the console file and the control socket all stay.
 *
 * It runs as a job on the VM's worker, because it waits: for the vCPUs to pause and for the
 * disks' requests in flight, whose completions the event loop (main thread) keeps delivering.
 * Steps: pause every vCPU; quiesce, then reset, every device (devices/device.h); reset the
 * in-kernel interrupt controllers; load the ACPI tables, kernel, initrd and boot parameters into
 * RAM again; put every vCPU in its power-on state with the boot CPU at the kernel's entry; resume.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/worker.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "lib/log.h"
#include "lib/error.h"

static bool vm_ending(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool ending = vm->end != VM_END_NONE;
	pthread_mutex_unlock(&vm->lock);
	return ending;
}

static void reboot_failed(struct vm *vm, const char *what, const char *msg)
{
	log_error("reboot", "%s: %s", what, msg);
	/* The machine is half reset: end it as a failure rather than run it so. */
	pthread_mutex_lock(&vm->lock);
	vm->reboot_queued = false;
	pthread_mutex_unlock(&vm->lock);
	vm_request_end(vm, VM_END_ERROR);
}

static void reboot_job(void *opaque)
{
	struct vm *vm = opaque;
	if (vm_ending(vm))
		return;
	/* A VM the user paused stays paused after its reboot. */
	int r = vm_pause(vm);
	bool was_paused = r == -EALREADY;
	if (r < 0 && !was_paused)
		return; /* the VM is ending */
	log_error(NULL, "guest rebooted: resetting the machine");
	if ((r = devices_quiesce(vm->devices)) < 0) {
		reboot_failed(vm, "waiting for the devices", error_msg());
		return;
	}
	devices_reset(vm->devices);
	vm_cpu_hotplug_reset(vm);
	vm_pci_hotplug_reset(vm);
	if ((r = vm_irqchip_reset(vm)) < 0) {
		reboot_failed(vm, "interrupt controllers", strerror(-r));
		return;
	}
	/* Clears the reboot request before the vCPUs run: the new boot may reboot again. */
	pthread_mutex_lock(&vm->lock);
	vm->reboot_queued = false;
	vm->reboots++;
	pthread_mutex_unlock(&vm->lock);
	if ((r = vm_load_guest(vm)) < 0) {
		reboot_failed(vm, "loading the kernel", error_msg());
		return;
	}
	if (!was_paused)
		vm_resume(vm);
}

void vm_reboot_queue(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool queue = !vm->reboot_queued && vm->end == VM_END_NONE;
	if (queue)
		vm->reboot_queued = true;
	pthread_mutex_unlock(&vm->lock);
	if (queue && worker_submit(vm->worker, reboot_job, vm) < 0) {
		log_error("reboot", "cannot queue it: ending the VM");
		vm_request_end(vm, VM_END_ERROR);
	}
}
