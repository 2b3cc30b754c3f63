/* VM lifecycle: KVM set-up, machine assembly, vCPU threads, pause/resume and teardown (vm.h). */
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
#include "cpu/vcpu.h"
#include "devices/acpi.h"
#include "devices/acpi_pm.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "memory/e820.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"

/* KVM's real-mode helpers need three pages below 4 GiB outside RAM (e820-reserved). */
#define KVM_IDENTITY_MAP_ADDR 0xFFFBC000ULL
#define KVM_TSS_ADDR 0xFFFBD000ULL

static int check_kvm(struct vm *vm, char *err, size_t errlen)
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
	if (v != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: API version %d, need %d", v, KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			snprintf(err, errlen, "/dev/kvm: KVM_CAP_%s is missing", caps[i].name);
			return -ENOTSUP;
		}
	}
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && vm->cfg->cpus > (unsigned)max) {
		snprintf(err, errlen, "/dev/kvm: %u vCPUs requested, KVM allows %d", vm->cfg->cpus,
			 max);
		return -EINVAL;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "/dev/kvm: bad vCPU mmap size %d", vm->run_size);
		return -EINVAL;
	}
	return 0;
}

static int create_kvm_vm(struct vm *vm, char *err, size_t errlen)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
		return -errno;
	}
	int r = check_kvm(vm, err, errlen);
	if (r < 0)
		return r;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
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
	if (what) {
		snprintf(err, errlen, "%s: %s", what, strerror(errno));
		return -errno;
	}
	r = cpuid_get_supported(vm->kvm_fd, &vm->cpuid);
	if (r < 0) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	return 0;
}

void vm_acpi_config(const struct vm *vm, struct acpi_config *ac)
{
	*ac = (struct acpi_config){
	    .ncpus = vm->cfg->cpus,
	    .ncpus_possible = vm->cfg->cpus,
	    .cpu_hotplug = false,
	    .pci_mmio32_start = LAYOUT_PCI_MMIO32_START,
	    .pci_mmio32_end = LAYOUT_PCI_MMIO32_END,
	    .pci_mmio64_start = LAYOUT_PCI_MMIO64_START,
	    .pci_mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	    .pci_slots = PCI_SLOTS,
	    .serial_com1 = true,
	};
}

static int build_acpi(struct vm *vm, char *err, size_t errlen)
{
	struct acpi_config ac;
	vm_acpi_config(vm, &ac);
	uint8_t *buf = guest_memory_ptr(&vm->mem, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE);
	if (!buf)
		return -EFAULT;
	long n = acpi_build(&ac, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &vm->rsdp);
	if (n < 0) {
		snprintf(err, errlen, "ACPI tables do not fit in %llu bytes",
			 (unsigned long long)LAYOUT_ACPI_SIZE);
		return (int)n;
	}
	return 0;
}

static int load_kernel(struct vm *vm, const struct vm_kernel *k, char *err, size_t errlen)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = e820_build(vm->mem.size, map, E820_MAX_ENTRIES);
	if (n < 0) {
		snprintf(err, errlen, "cannot build the e820 map");
		return n;
	}
	char msg[256] = "";
	struct bzimage_boot boot;
	int r = bzimage_load(&vm->mem, k->data, k->len, &k->hdr, vm->cfg->initrd, vm->cfg->cmdline,
			     map, n, vm->rsdp, &boot, msg, sizeof(msg));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", vm->cfg->kernel, msg);
		return r;
	}
	r = bzimage_set_boot_cpu(vm->vcpus[0]->fd, &boot);
	if (r < 0)
		snprintf(err, errlen, "boot vCPU set-up: %s", strerror(-r));
	return r;
}

int vm_create(const struct vm_config *cfg, const struct vm_kernel *kernel, struct vm **out,
	      char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = vm->event_fd = vm->console_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	*out = vm; /* vm_destroy undoes a partial set-up */
	int r;
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->event_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	if ((r = io_bus_init(&vm->pio)) < 0 || (r = io_bus_init(&vm->mmio)) < 0) {
		snprintf(err, errlen, "bus set-up: %s", strerror(-r));
		return r;
	}
	if ((r = create_kvm_vm(vm, err, errlen)) < 0)
		return r;
	r = guest_memory_create(&vm->mem, cfg->memory_mib * MiB);
	if (r == 0)
		r = guest_memory_register(&vm->mem, vm->vm_fd);
	if (r < 0) {
		snprintf(err, errlen, "guest memory (%llu MiB): %s",
			 (unsigned long long)cfg->memory_mib, strerror(-r));
		return r;
	}
	if ((r = vm_devices_create(vm, err, errlen)) < 0)
		return r;
	/* Direct boot places the ACPI tables itself; firmware gets them through fw_cfg. */
	r = kernel ? build_acpi(vm, err, errlen) : vm_firmware_setup(vm, err, errlen);
	if (r < 0)
		return r;
	r = vcpu_signal_setup();
	for (unsigned i = 0; r == 0 && i < cfg->cpus; i++)
		r = vcpu_create(vm, i, cfg->cpus, &vm->vcpus[i]);
	if (r < 0) {
		snprintf(err, errlen, "vCPU set-up: %s", strerror(-r));
		return r;
	}
	/* Without a kernel the boot CPU stays in KVM's reset state: real mode at the reset vector
	 * (CS 0xF000 base 0xFFFF0000, IP 0xFFF0), where the BIOS image is mapped. */
	return kernel ? load_kernel(vm, kernel, err, errlen) : 0;
}

void vm_request_end(struct vm *vm, enum vm_end why)
{
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

bool vm_vcpu_checkpoint(struct vm *vm, struct vcpu *v)
{
	bool stop = false;
	pthread_mutex_lock(&vm->lock);
	for (;;) {
		if (v->stop_requested || vm->end != VM_END_NONE) {
			stop = true;
			break;
		}
		if (!vm->pause_requested)
			break;
		if (!v->parked) {
			v->parked = true;
			vm->threads_parked++;
			pthread_cond_broadcast(&vm->cond);
		}
		pthread_cond_wait(&vm->cond, &vm->lock);
	}
	if (v->parked) {
		v->parked = false;
		vm->threads_parked--;
	}
	/* Requests set immediate_exit under this lock, so clearing it here loses none. */
	if (!stop)
		v->run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->lock);
	return stop;
}

int vm_pause(struct vm *vm)
{
	int r = 0;
	pthread_mutex_lock(&vm->lock);
	if (vm->paused || vm->pause_requested) {
		r = -EALREADY;
		goto out;
	}
	vm->pause_requested = true;
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
	while (vm->threads_parked < vm->threads_alive && vm->end == VM_END_NONE)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->end != VM_END_NONE) {
		vm->pause_requested = false;
		r = -ESHUTDOWN;
		goto out;
	}
	vm->paused = true;
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int vm_resume(struct vm *vm)
{
	int r = 0;
	pthread_mutex_lock(&vm->lock);
	if (!vm->paused) {
		r = -EALREADY;
	} else {
		vm->paused = false;
		vm->pause_requested = false;
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

unsigned vm_vcpu_count(struct vm *vm)
{
	unsigned n = 0;
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		n += vm->vcpus[i] != NULL;
	pthread_mutex_unlock(&vm->lock);
	return n;
}

/* Stop and join every vCPU thread. */
static void stop_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (v) {
			v->stop_requested = true;
			vcpu_kick(v);
		}
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			vcpu_join(vm->vcpus[i]);
}

int vm_run(struct vm *vm)
{
	vm->started = time(NULL);
	int r = 0;
	for (unsigned i = 0; r == 0 && i < LAYOUT_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			r = vcpu_start(vm->vcpus[i]);
	if (r < 0) {
		fprintf(stderr, "minivmm: cannot start vCPU threads: %s\n", strerror(-r));
		vm_request_end(vm, VM_END_ERROR);
	} else {
		vm_main_loop(vm);
	}
	stop_vcpus(vm);
	switch (vm->end) {
	case VM_END_POWEROFF:
	case VM_END_STOP:
		return 0;
	case VM_END_REBOOT:
		fprintf(stderr, "minivmm: guest rebooted\n");
		return 0; /* --reboot exit (the default); cmd_run restarts for --reboot restart */
	case VM_END_SIGNAL:
		return 128 + vm->end_signal;
	case VM_END_NO_BOOT:
		fprintf(stderr, "minivmm: no bootable device\n");
		return 1;
	default:
		return 1;
	}
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	stop_vcpus(vm);
	vm_firmware_destroy(vm);
	vm_devices_destroy(vm);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		vcpu_destroy(vm->vcpus[i]);
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
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
