/* A running virtual machine: KVM handles, RAM, buses, devices, vCPUs and the lifecycle.
 *
 *   vm_create()  opens KVM, checks the API, builds the machine (memory, irqchip, PIT, devices,
 *                ACPI tables, kernel) and creates the vCPUs;
 *   vm_run()     starts the vCPU threads and runs the VM's event loop on the calling thread
 *                (console, signals, the control socket, disk completions) until a reason to
 *                end (guest power-off or reboot, `stop`, a signal, a fatal vCPU error); it
 *                returns the process exit code.  With --reboot restart a guest reboot resets
 *                the machine in place instead (vm_reboot.c);
 *   vm_destroy() tears everything down in reverse order.
 *
 * Threads: the main thread runs the loop and never waits for a vCPU or a disk; whatever must
 * wait (control verbs, the in-process reboot, stopping the vCPUs) runs on the VM's worker, one
 * job at a time, while the loop keeps delivering the completions those waits depend on.
 *
 * The vCPUs, their threads and their states belong to cpu/ (cpu/cpus.h): the VM asks by function.
 */
#ifndef MINIVMM_VMM_VM_H
#define MINIVMM_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "devices/device.h"
#include "devices/io_bus.h"
#include "devices/irq_ops.h"
#include "devices/machine_config.h"
#include "memory/guest_memory.h"
#include "vmm/boot_bzimage.h"
#include "memory/layout.h"
#include "vmm/vm_config.h"

struct cpus;
struct kvm_cpuid2;
struct control_server;
struct storage;
struct vm_firmware;
struct event_loop;
struct kvm_irq;
struct worker;

enum vm_end {
	VM_END_NONE = 0,
	VM_END_POWEROFF, /* ACPI S5: exit 0 */
	VM_END_REBOOT,	 /* reset register, i8042, triple fault: exit 0 ("guest rebooted") */
	VM_END_STOP,	 /* `stop` verb or ^A x: exit 0 */
	VM_END_SIGNAL,	 /* SIGTERM/SIGINT/SIGHUP: 128 + signal */
	VM_END_ERROR,	 /* a vCPU failed: exit 1 */
	VM_END_NO_BOOT,	 /* the firmware found nothing to boot: exit 1, "no bootable device" */
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd, vm_fd;
	int run_size;		  /* mmap size of a vCPU's kvm_run */
	struct kvm_cpuid2 *cpuid; /* what KVM supports, fixed up per vCPU */
	struct guest_memory mem;
	struct io_bus pio, mmio;
	uint64_t rsdp;

	const struct vm_kernel *kernel; /* the caller's, kept for reboots */
	/* irqfds with MSI routes, resample irqfds, ioeventfds (devices/kvm_irq.h) */
	struct kvm_irq *kvm_irq;
	struct irq_ops irq_ops;
	struct vm_firmware *firmware; /* NULL with --kernel (vmm/vm_firmware.c) */

	struct event_loop *loop; /* the VM's one event loop, run by vm_run */
	struct worker *worker;	 /* waits off the loop: verbs, reboot, stopping the vCPUs */
	struct control_server *control;
	int console_fd; /* where the serial writes; -1 for none */
	struct device_env env;
	struct devices *devices; /* created in level order (devices/device.h) */
	bool state_prepared;	 /* vm_state_prepare done: release at the end */
	bool reboot_queued;	 /* a reboot job is on the worker */
	bool shutdown_queued;	 /* the end job is on the worker */
	unsigned reboots;	 /* in-process reboots so far */

	struct cpus *cpus;

	/* lifecycle: under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vm_end end;
	int end_signal;
	int event_fd; /* wakes vm_run's loop when `end` is set */
	time_t started;

	struct vm_cpu_hotplug *cpu_hotplug; /* NULL without --cpuhotplug (vm_cpu_hotplug.c) */
	struct machine_config machine; /* what the devices see of cfg (devices/machine_config.h) */
	struct vm_pci_hotplug *pci_hotplug; /* vm_pci_hotplug.c */
	struct vm_nic_hotplug *nic_hotplug; /* vm_nic_hotplug.c */
};

/* The kernel, read and checked by the caller (so a bad file is a usage error, not a KVM one);
 * NULL to boot through firmware. */
struct vm_kernel {
	const uint8_t *data;
	size_t len;
	struct bzimage_header hdr;
};

/* kernel stays the caller's and must live until vm_destroy (a reboot loads it again). */
int vm_create(const struct vm_config *cfg, const struct vm_kernel *kernel, struct vm **out);
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Ask vm_run to end the VM (the first reason wins). Safe from any thread.  VM_END_REBOOT with
 * --reboot restart does not end it: the machine is reset in place (vm_reboot.c). */
void vm_request_end(struct vm *vm, enum vm_end why);
/* Stop every vCPU outside KVM_RUN and wait until they all are; resume lets them go (cpus_pause,
 * cpus_resume).  Not from a vCPU thread.  Return 0 or -errno (-EALREADY when already in that
 * state, -ESHUTDOWN when the VM is ending). */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
bool vm_paused(struct vm *vm);
/* vCPUs present for the guest. */
unsigned vm_vcpu_count(struct vm *vm);

#endif
