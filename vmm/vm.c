/* VM lifecycle: KVM set-up, machine assembly, vCPU threads, pause/resume, the end and teardown
 * (vm.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "cpu/cpuid.h"
#include "cpu/cpu_weight.h"
#include "cpu/cpus.h"
#include "devices/acpi.h"
#include "devices/pci.h"
#include "devices/storage.h"
#include "lib/error.h"
#include "lib/event_loop.h"
#include "lib/jail.h"
#include "lib/sandbox.h"
#include "lib/worker.h"
#include "memory/e820.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "lib/log.h"

/* KVM's real-mode helpers need three pages below 4 GiB outside RAM (e820-reserved). */
#define KVM_IDENTITY_MAP_ADDR LAYOUT_KVM_HELPER_START
#define KVM_TSS_ADDR (LAYOUT_KVM_HELPER_START + 0x1000)

static int check_kvm(struct vm *vm)
{
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
	    {KVM_CAP_IRQCHIP, "IRQCHIP"},
	    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
	    {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
	    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR"},
	    {KVM_CAP_PIT2, "PIT2"},
	    {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
	    {KVM_CAP_MP_STATE, "MP_STATE"},
	    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
	    {KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI"},
	    {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
	};
	int v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return error_set(-ENOTSUP, "/dev/kvm: API version %d, need %d", v, KVM_API_VERSION);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
			return error_set(-ENOTSUP, "/dev/kvm: KVM_CAP_%s is missing", caps[i].name);
	}
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && vm->cfg->cpus > (unsigned)max)
		return error_set(-EINVAL, "/dev/kvm: %u vCPUs requested, KVM allows %d",
				 vm->cfg->cpus, max);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return error_set(-EINVAL, "/dev/kvm: bad vCPU mmap size %d", vm->run_size);
	return 0;
}

static int create_kvm_vm(struct vm *vm)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return error_set(-errno, "cannot open /dev/kvm: %s", strerror(errno));
	int r = check_kvm(vm);
	if (r < 0)
		return r;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return error_set(-errno, "KVM_CREATE_VM: %s", strerror(errno));
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	const char *what = NULL;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		what = "KVM_SET_IDENTITY_MAP_ADDR";
	else if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		what = "KVM_SET_TSS_ADDR";
	else if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		what = "KVM_CREATE_IRQCHIP";
	else if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		what = "KVM_CREATE_PIT2";
	if (what)
		return error_set(-errno, "%s: %s", what, strerror(errno));
	r = cpuid_get_supported(vm->kvm_fd, &vm->cpuid);
	if (r < 0)
		return error_set(r, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
	return 0;
}

void vm_acpi_config(const struct vm *vm, struct acpi_config *ac)
{
	/* The CPUs present now: a reboot keeps the ones plugged since the start. */
	uint64_t present = vm->cpus ? cpus_present_mask(vm->cpus) : vm_config_boot_cpus(vm->cfg);
	*ac = (struct acpi_config){
	    .ncpus = __builtin_popcountll(present),
	    .ncpus_possible = vm->cfg->cpus,
	    .cpu_hotplug = vm->cfg->cpu_hotplug,
	    .present_mask = present,
	    .pci_mmio32_start = LAYOUT_PCI_MMIO32_START,
	    .pci_mmio32_end = LAYOUT_PCI_MMIO32_END,
	    .pci_mmio64_start = LAYOUT_PCI_MMIO64_START,
	    .pci_mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	    .pci_slots = PCI_SLOTS,
	    .serial_com1 = true,
	    .pci_hotplug_slots = vm_pci_hotplug_slots(vm),
	};
}

static int build_acpi(struct vm *vm)
{
	struct acpi_config ac;
	vm_acpi_config(vm, &ac);
	uint8_t *buf = guest_memory_ptr(&vm->mem, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE);
	if (!buf)
		return -EFAULT;
	long n = acpi_build(&ac, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &vm->rsdp);
	if (n < 0)
		return error_set((int)n, "ACPI tables do not fit in %llu bytes",
				 (unsigned long long)LAYOUT_ACPI_SIZE);
	return 0;
}

static int load_kernel(struct vm *vm, const struct vm_kernel *k)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = e820_build(vm->mem.size, map, E820_MAX_ENTRIES);
	if (n < 0)
		return error_set(n, "cannot build the e820 map");
	struct bzimage_boot boot;
	int r = bzimage_load(&vm->mem, k->data, k->len, &k->hdr, vm->cfg->initrd, vm->cfg->cmdline,
			     map, n, vm->rsdp, &boot);
	if (r < 0)
		return error_wrap(r, "%s", vm->cfg->kernel);
	struct cpu_boot cpu;
	bzimage_boot_cpu(&boot, &cpu);
	r = cpus_reset(vm->cpus, &cpu);
	if (r < 0)
		error_set(r, "boot vCPU set-up: %s", strerror(-r));
	return r;
}

int vm_load_guest(struct vm *vm)
{
	if (!vm->kernel) {
		/* Firmware boot: the pristine BIOS below 1 MiB, fw_cfg at power-on, and CPU 0 at
		 * the reset vector (F000:FFF0, CS base 0xFFFF0000), where the BIOS image is mapped.
		 */
		vm_firmware_reset(vm);
		int r = cpus_reset(vm->cpus, NULL);
		if (r < 0)
			error_set(r, "boot vCPU set-up: %s", strerror(-r));
		return r;
	}
	/* Direct boot places the ACPI tables itself; firmware gets them through fw_cfg. */
	int r = build_acpi(vm);
	return r < 0 ? r : load_kernel(vm, vm->kernel);
}

/* A vCPU asks for the machine to end (on its thread). */
static void vcpu_end(void *opaque, unsigned cpu, enum cpu_end why)
{
	(void)cpu;
	static const enum vm_end map[] = {
	    [CPU_END_POWEROFF] = VM_END_POWEROFF,
	    [CPU_END_RESET] = VM_END_REBOOT,
	    [CPU_END_TRIPLE_FAULT] = VM_END_REBOOT,
	    [CPU_END_ERROR] = VM_END_ERROR,
	};
	vm_request_end(opaque, map[why]);
}

static int create_cpus(struct vm *vm)
{
	_Static_assert(LAYOUT_MAX_VCPUS <= CPUS_MAX, "cpu/ holds fewer vCPUs than the layout");
	const struct cpu_env env = {
	    .kvm_fd = vm->kvm_fd,
	    .vm_fd = vm->vm_fd,
	    .run_size = vm->run_size,
	    .cpuid = vm->cpuid,
	    .max_cpus = vm->cfg->cpus,
	    .pio = &vm->pio,
	    .mmio = &vm->mmio,
	    .end = vcpu_end,
	    .opaque = vm,
	    .cap_cgroup = true,
	};
	return cpus_create(&env, vm_config_boot_cpus(vm->cfg), &vm->cpus);
}

int vm_create(const struct vm_config *cfg, const struct vm_kernel *kernel, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = cfg;
	vm->kernel = kernel;
	/* Before any thread exists: every thread of the VM inherits the weight's nice. */
	if (cfg->cpu_weight) {
		int e = cpu_weight_apply(cfg->cpu_weight);
		if (e < 0) {
			error_set(e, "--cpu-weight %u (nice %d): %s%s", cfg->cpu_weight,
				  cpu_weight_to_nice(cfg->cpu_weight), strerror(-e),
				  e == -EACCES || e == -EPERM ? " (above 100 needs CAP_SYS_NICE)"
							      : "");
			*out = NULL;
			free(vm);
			return e;
		}
	}
	vm->kvm_fd = vm->vm_fd = vm->event_fd = vm->console_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	*out = vm; /* vm_destroy undoes a partial set-up */
	int r;
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->event_fd < 0)
		return error_set(-errno, "eventfd: %s", strerror(errno));
	if ((r = io_bus_init(&vm->pio)) < 0 || (r = io_bus_init(&vm->mmio)) < 0)
		return error_set(r, "bus set-up: %s", strerror(-r));
	if ((r = create_kvm_vm(vm)) < 0)
		return r;
	r = guest_memory_create(&vm->mem, cfg->memory_mib * MiB);
	if (r == 0)
		r = guest_memory_register(&vm->mem, vm->vm_fd);
	if (r < 0)
		return error_set(r, "guest memory (%llu MiB): %s",
				 (unsigned long long)cfg->memory_mib, strerror(-r));
	if (cfg->pagefusion && (r = vm_pagefusion_start(vm)) < 0)
		return r;
	if ((r = event_loop_create(&vm->loop)) < 0 ||
	    (r = worker_create("vm-worker", &vm->worker)) < 0)
		return error_set(r, "event loop: %s", strerror(-r));
	/* The control socket first: devices register their verbs on it. */
	if ((r = vm_control_start(vm)) < 0 || (r = vm_devices_create(vm)) < 0 ||
	    (r = vm_control_register(vm)) < 0)
		return r;
	/* Before the ACPI tables are made (firmware set-up or the kernel's load). */
	if ((r = vm_pci_hotplug_create(vm)) < 0 || (r = vm_nic_hotplug_register(vm)) < 0)
		return r;
	if (!kernel && (r = vm_firmware_setup(vm)) < 0)
		return r;
	if ((r = create_cpus(vm)) < 0)
		return error_set(r, "vCPU set-up: %s", strerror(-r));
	if ((r = vm_cpu_hotplug_create(vm)) < 0)
		return r;
	if (cfg->cpu_cap < 100 && (r = cpus_set_cap(vm->cpus, cfg->cpu_cap)) < 0)
		return error_set(r, "--cpu-cap %u: %s", cfg->cpu_cap, strerror(-r));
	return vm_load_guest(vm);
}

void vm_request_end(struct vm *vm, enum vm_end why)
{
	if (why == VM_END_REBOOT && vm->cfg->reboot == VM_REBOOT_RESTART) {
		vm_reboot_queue(vm);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	if (vm->end == VM_END_NONE)
		vm->end = why;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	uint64_t one = 1;
	if (write(vm->event_fd, &one, sizeof(one)) < 0) {
		/* only fails if the counter is saturated: vm_run is already awake */
	}
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool ending = vm->end != VM_END_NONE;
	pthread_mutex_unlock(&vm->lock);
	return ending ? -ESHUTDOWN : cpus_pause(vm->cpus);
}

int vm_resume(struct vm *vm)
{
	/* werror=stop: the writes that failed are tried again before the guest runs on (failing
	 * again, they pause it again). */
	if (vm_storage(vm))
		storage_retry_stopped(vm_storage(vm));
	return cpus_resume(vm->cpus);
}

bool vm_paused(struct vm *vm)
{
	return cpus_paused(vm->cpus);
}

unsigned vm_vcpu_count(struct vm *vm)
{
	return cpus_count_present(vm->cpus);
}

/* The set-up is over: every thread goes under the seccomp filter before the guest runs a single
 * instruction; the vCPU threads narrow to their role as they start, this thread to the loop's
 * once it has started them (lib/sandbox.h). */
static int vm_sandbox_start(struct vm *vm)
{
	if (vm->cfg->sandbox_off)
		return 0;
	if (sandbox_prepare() < 0 || sandbox_start() < 0) {
		log_error(NULL, "%s (--sandbox off runs without it)", error_msg());
		return -EPERM;
	}
	return 0;
}

int vm_run(struct vm *vm)
{
	vm->started = time(NULL);
	/* Everything the VM was started with is open: into the jail (--chroot, --user), then under
	 * the filters (which forbid what the jail needs). */
	if (jail_enter(&vm->cfg->jail) < 0) {
		log_error(NULL, "%s", error_msg());
		return 1;
	}
	if (vm_sandbox_start(vm) < 0)
		return 1;
	int r = cpus_start(vm->cpus);
	if (r < 0) {
		log_error(NULL, "cannot start vCPU threads: %s", strerror(-r));
		vm_request_end(vm, VM_END_ERROR);
	}
	sandbox_enter(SANDBOX_LOOP);
	vm_main_loop(vm); /* until vm_shutdown_job has stopped the vCPUs */
	switch (vm->end) {
	case VM_END_POWEROFF:
	case VM_END_STOP:
		return 0;
	case VM_END_REBOOT:
		log_error(NULL, "guest rebooted");
		return 0; /* --reboot exit (the default); restart resets in place (vm_reboot.c) */
	case VM_END_SIGNAL:
		return 128 + vm->end_signal;
	case VM_END_NO_BOOT:
		log_error(NULL, "no bootable device");
		return 1;
	default:
		return 1;
	}
}

void vm_shutdown_job(void *opaque)
{
	struct vm *vm = opaque;
	if (vm->cpus)
		cpus_stop(vm->cpus);
	event_loop_stop(vm->loop);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->cpus)
		cpus_stop(vm->cpus);
	/* The control server waits for its verbs on the worker; then the jobs still queued (a
	 * reboot) run and find the VM ending. */
	vm_control_stop(vm);
	worker_destroy(vm->worker);
	vm->worker = NULL;
	vm_firmware_destroy(vm);
	vm_cpu_hotplug_destroy(vm);
	vm_pci_hotplug_destroy(vm);
	free(vm->nic_hotplug);
	vm_devices_destroy(vm);
	cpus_destroy(vm->cpus);
	free(vm->cpuid);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	guest_memory_destroy(&vm->mem);
	io_bus_destroy(&vm->mmio);
	io_bus_destroy(&vm->pio);
	if (vm->event_fd >= 0)
		close(vm->event_fd);
	event_loop_destroy(vm->loop);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
