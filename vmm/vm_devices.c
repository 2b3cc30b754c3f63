/* The machine's devices as the VM sees them: the environment they are created in (buses, memory,
 * the loop, the control socket, the console) and its KVM side: interrupt lines, MSIs, the
 * in-kernel interrupt controllers' reset, and the requests devices make (power off, reset). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "devices/device.h"
#include "devices/kvm_irq.h"
#include "vmm/control.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"
#include "vmm/vm_internal.h"
#include "lib/event_loop.h"
#include "lib/worker.h"
#include "lib/log.h"
#include "lib/error.h"

static int kvm_set_irq(void *opaque, unsigned gsi, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level l = {.irq = gsi, .level = level};
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int kvm_signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct vm *vm = opaque;
	struct kvm_msi msi = {.address_lo = address, .address_hi = address >> 32, .data = data};
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

static const struct device_irq_ops kvm_line_ops = {
    .set_irq = kvm_set_irq,
    .signal_msi = kvm_signal_msi,
};

/* werror=stop: pausing waits for the vCPUs, which may wait for the loop (where this is asked
 * from): the worker does it. */
static void io_error_pause_job(void *opaque)
{
	int r = vm_pause(opaque);
	if (r < 0 && r != -EALREADY)
		log_error(NULL, "cannot pause after a disk error: %s", strerror(-r));
}

static void device_request(void *opaque, enum device_request why)
{
	struct vm *vm = opaque;
	static const enum vm_end map[] = {
	    [DEVICE_REQUEST_POWEROFF] = VM_END_POWEROFF,
	    [DEVICE_REQUEST_RESET] = VM_END_REBOOT,
	    [DEVICE_REQUEST_NO_BOOT] = VM_END_NO_BOOT,
	};
	if (why == DEVICE_REQUEST_PAUSE) {
		if (worker_submit(vm->worker, io_error_pause_job, vm) < 0)
			log_error(NULL, "cannot pause after a disk error");
		return;
	}
	vm_request_end(vm, map[why]);
}

static int open_console(struct vm *vm)
{
	switch (vm->cfg->console) {
	case VM_CONSOLE_STDIO:
		vm->console_fd = STDOUT_FILENO;
		return 0;
	case VM_CONSOLE_NONE:
		vm->console_fd = -1;
		return 0;
	default:
		/* Truncated once per run; a reboot in place keeps appending to it. */
		vm->console_fd = open(vm->cfg->console_path,
				      O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (vm->console_fd < 0)
			return error_set(-errno, "%s: %s", vm->cfg->console_path, strerror(errno));
		return 0;
	}
}

/* irqfds with MSI routes, resample irqfds and ioeventfds (devices/kvm_irq.h).  Without them
 * devices still work: MSIs by KVM_SIGNAL_MSI, doorbells as MMIO exits.  MINIVMM_IOEVENTFD=off
 * keeps the irqfds but makes doorbells MMIO exits, to measure what ioeventfds save
 * (bench/disk.sh). */
static void fast_irq_create(struct vm *vm)
{
	if (kvm_irq_create(vm->vm_fd, &vm->kvm_irq) < 0)
		return;
	vm->irq_ops = kvm_irq_ops(vm->kvm_irq);
	const char *ioev = getenv("MINIVMM_IOEVENTFD");
	if (ioev && !strcmp(ioev, "off")) {
		vm->irq_ops.ioeventfd_add = NULL;
		vm->irq_ops.ioeventfd_del = NULL;
	}
}

/* What the devices see of the command line. */
static void machine_config_fill(struct machine_config *m, const struct vm_config *cfg)
{
	*m = (struct machine_config){
	    .name = cfg->name,
	    .cpus = cfg->cpus,
	    .boot_cpus = vm_config_boot_cpus(cfg),
	    .kernel_boot = cfg->kernel != NULL,
	    .firmware_efi = cfg->firmware_efi,
	    .disks = cfg->disks,
	    .ndisks = cfg->ndisks,
	    .nics = cfg->nics,
	    .nnics = cfg->nnics,
	    .memory_mib = cfg->memory_mib,
	    .memory_min_mib = cfg->memory_min_mib,
	    .balloon_off = cfg->balloon_off,
	    .balloon_mib = cfg->balloon_mib,
	    .pagefusion = cfg->pagefusion,
	    .no_free_page_reporting = cfg->no_free_page_reporting,
	};
}

/* Devices register verbs through their env, without knowing the control server. */
static int add_verb(void *control, const char *verb, const char *usage, device_verb_fn fn,
		    void *opaque)
{
	return control_register_verb(control, verb, usage, fn, opaque);
}

int vm_devices_create(struct vm *vm)
{
	int r = open_console(vm);
	if (r < 0)
		return r;
	fast_irq_create(vm);
	machine_config_fill(&vm->machine, vm->cfg);
	vm->env = (struct device_env){
	    .pio = &vm->pio,
	    .mmio = &vm->mmio,
	    .mem = &vm->mem,
	    .loop = vm->loop,
	    .add_verb = vm->control ? add_verb : NULL,
	    .control = vm->control,
	    .machine = &vm->machine,
	    .console_fd = vm->console_fd,
	    .irq = &kvm_line_ops,
	    .fast_irq = vm->kvm_irq ? &vm->irq_ops : NULL,
	    .request = device_request,
	    .opaque = vm,
	};
	/* Disk modes need the state directory before any disk is opened. */
	if ((r = vm_state_prepare(vm->cfg)) < 0)
		return r;
	vm->state_prepared = true;
	return devices_create(&vm->env, &vm->devices);
}

void vm_devices_destroy(struct vm *vm)
{
	/* vCPUs are stopped and the loop no longer runs: no handler can be running. */
	devices_destroy(vm->devices);
	vm->devices = NULL;
	if (vm->state_prepared)
		vm_state_release();
	vm->state_prepared = false;
	kvm_irq_destroy(vm->kvm_irq); /* after the devices: none signals an irqfd now */
	vm->kvm_irq = NULL;
	if (vm->console_fd > STDERR_FILENO)
		close(vm->console_fd);
	vm->console_fd = -1;
}

struct storage *vm_storage(struct vm *vm)
{
	return devices_find(vm->devices, "storage");
}

/* The in-kernel PICs and IOAPIC as at power-on: every IOAPIC pin masked, the PICs uninitialised
 * (their edge/level register, which firmware sets, is kept).  The PIT is left to the guest,
 * which programs it before use. */
int vm_irqchip_reset(struct vm *vm)
{
	for (unsigned id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_IOAPIC; id++) {
		struct kvm_irqchip chip = {.chip_id = id};
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return -errno;
		if (id == KVM_IRQCHIP_IOAPIC) {
			struct kvm_ioapic_state *io = &chip.chip.ioapic;
			uint64_t base = io->base_address;
			memset(io, 0, sizeof(*io));
			io->base_address = base;
			for (unsigned pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++)
				io->redirtbl[pin].fields.mask = 1;
		} else {
			struct kvm_pic_state *pic = &chip.chip.pic;
			uint8_t elcr = pic->elcr, elcr_mask = pic->elcr_mask;
			memset(pic, 0, sizeof(*pic));
			pic->elcr = elcr;
			pic->elcr_mask = elcr_mask;
		}
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return -errno;
	}
	return 0;
}
