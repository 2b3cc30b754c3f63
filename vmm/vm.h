/* A running virtual machine: KVM handles, RAM, buses, devices, vCPUs and the lifecycle.
 *
 *   vm_create()  opens KVM, checks the API, builds the machine (memory, irqchip, PIT, devices,
 *                ACPI tables, kernel) and creates the vCPUs;
 *   vm_run()     starts the vCPU threads and waits, on the calling thread, for a reason to end
 *                (guest power-off or reboot, `stop`, a signal, a fatal vCPU error) while feeding
 *                console input; it returns the process exit code;
 *   vm_destroy() tears everything down in reverse order.
 *
 * vCPUs are kept in slots by APIC ID.  A slot, once created, is never freed while the VM lives:
 * KVM cannot destroy a vCPU, so a hot-unplugged vCPU's fd stays parked for a later re-plug.
 */
#ifndef MINIVMM_VMM_VM_H
#define MINIVMM_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "devices/i8042.h"
#include "devices/io_bus.h"
#include "memory/guest_memory.h"
#include "vmm/boot_bzimage.h"
#include "vmm/layout.h"
#include "vmm/vm_config.h"

struct vcpu;
struct serial;
struct rtc;
struct pci_bus;
struct acpi_pm;
struct kvm_cpuid2;
struct control_server;
struct storage;
struct vm_firmware;

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

	struct serial *serial;
	int console_fd; /* where the serial writes; -1 for none */
	struct rtc *rtc;
	struct i8042 kbd;
	struct pci_bus *pci;
	struct acpi_pm *pm;
	struct storage *storage; /* disks, their controllers and the I/O thread */
	struct control_server *control;
	struct vm_firmware *firmware; /* NULL with --kernel */

	/* vCPUs, lifecycle and pause: all under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vcpu *vcpus[LAYOUT_MAX_VCPUS];
	unsigned threads_alive;	 /* vCPU threads started and not yet ended */
	unsigned threads_parked; /* of those, how many are waiting in the pause */
	bool pause_requested;
	bool paused;
	enum vm_end end;
	int end_signal;
	int event_fd; /* wakes vm_run's loop when `end` is set */
	time_t started;
};

/* The kernel, read and checked by the caller (so a bad file is a usage error, not a KVM one);
 * NULL to boot through firmware. */
struct vm_kernel {
	const uint8_t *data;
	size_t len;
	struct bzimage_header hdr;
};

int vm_create(const struct vm_config *cfg, const struct vm_kernel *kernel, struct vm **out,
	      char *err, size_t errlen);
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Ask vm_run to end the VM (the first reason wins). Safe from any thread. */
void vm_request_end(struct vm *vm, enum vm_end why);
/* Stop every vCPU outside KVM_RUN and wait until they all are; resume lets them go. Control
 * thread only. Return 0 or -errno (-EALREADY when already in that state). */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
unsigned vm_vcpu_count(struct vm *vm);

/* For the vCPU threads (cpu/vcpu.c): called after every KVM_RUN return. Blocks while the VM is
 * paused; returns true when the thread must end. */
bool vm_vcpu_checkpoint(struct vm *vm, struct vcpu *v);

#endif
