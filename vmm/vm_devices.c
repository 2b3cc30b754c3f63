/* The fixed devices of minivmm's machine and their wiring to KVM interrupts and the buses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "devices/acpi_pm.h"
#include "devices/kvm_irq.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/storage.h"
#include "vmm/vm_state.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "lib/event_loop.h"

static int irq_line(struct vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = level};
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static void serial_irq(void *opaque, bool level)
{
	irq_line(opaque, LAYOUT_IRQ_COM1, level);
}

static void sci_irq(void *opaque, bool level)
{
	irq_line(opaque, LAYOUT_IRQ_SCI, level);
}

static void acpi_sleep(void *opaque, unsigned slp_typ)
{
	if (slp_typ == ACPI_PM_SLP_TYP_S5)
		vm_request_end(opaque, VM_END_POWEROFF);
}

static void machine_reset(void *opaque)
{
	vm_request_end(opaque, VM_END_REBOOT);
}

static int pci_set_irq(void *opaque, unsigned gsi, bool level)
{
	return irq_line(opaque, gsi, level);
}

static int pci_signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct vm *vm = opaque;
	struct kvm_msi msi = {.address_lo = address, .address_hi = address >> 32, .data = data};
	int r = ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
	return r < 0 ? -errno : 0;
}

static void pm_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	acpi_pm_io(opaque, LAYOUT_PORT_ACPI_PM + offset, data, len, is_write);
}

static void gpe_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	acpi_pm_io(opaque, LAYOUT_PORT_ACPI_GPE0 + offset, data, len, is_write);
}

static void post_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write) /* POST codes are a write-only debugging aid */
		memset(data, 0xFF, len);
}

static int open_console(struct vm *vm, char *err, size_t errlen)
{
	switch (vm->cfg->console) {
	case VM_CONSOLE_STDIO:
		vm->console_fd = STDOUT_FILENO;
		return 0;
	case VM_CONSOLE_NONE:
		vm->console_fd = -1;
		return 0;
	default:
		vm->console_fd = open(vm->cfg->console_path,
				      O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (vm->console_fd < 0) {
			snprintf(err, errlen, "%s: %s", vm->cfg->console_path, strerror(errno));
			return -errno;
		}
		return 0;
	}
}

/* virtio (issue 12), until the core's per-VM event loop replaces it: irqfds/ioeventfds on KVM
 * and a loop on a thread of its own for the doorbell eventfds.  Without them devices still work
 * (MSI by KVM_SIGNAL_MSI, doorbells as MMIO exits). */
static void *dev_loop_main(void *opaque)
{
	event_loop_run(opaque);
	return NULL;
}

static void fast_irq_create(struct vm *vm)
{
	if (kvm_irq_create(vm->vm_fd, &vm->kvm_irq) < 0)
		return;
	vm->irq_ops = kvm_irq_ops(vm->kvm_irq);
	/* MINIVMM_IOEVENTFD=off: doorbells as MMIO exits, to measure what ioeventfds save
	 * (bench/disk.sh). */
	const char *ioev = getenv("MINIVMM_IOEVENTFD");
	if (ioev && !strcmp(ioev, "off"))
		return;
	if (event_loop_create(&vm->dev_loop) < 0)
		return;
	if (pthread_create(&vm->dev_loop_thread, NULL, dev_loop_main, vm->dev_loop) == 0)
		vm->dev_loop_started = true;
}

static void fast_irq_destroy(struct vm *vm)
{
	if (vm->dev_loop_started) {
		event_loop_stop(vm->dev_loop);
		pthread_join(vm->dev_loop_thread, NULL);
		vm->dev_loop_started = false;
	}
}

static void fast_irq_free(struct vm *vm)
{
	if (vm->dev_loop)
		event_loop_destroy(vm->dev_loop);
	vm->dev_loop = NULL;
	kvm_irq_destroy(vm->kvm_irq);
	vm->kvm_irq = NULL;
}

int vm_devices_create(struct vm *vm, char *err, size_t errlen)
{
	int r = open_console(vm, err, errlen);
	if (r < 0)
		return r;
	struct serial_ops sops = {.set_irq = serial_irq, .opaque = vm};
	struct acpi_pm_ops pops = {.set_sci = sci_irq, .sleep = acpi_sleep, .opaque = vm};
	struct pci_bus_ops bops = {.set_irq = pci_set_irq,
				   .signal_msi = pci_signal_msi,
				   .reset = machine_reset,
				   .opaque = vm};
	fast_irq_create(vm); /* virtio (issue 12) */
	if (vm->kvm_irq)
		bops.irq = &vm->irq_ops;
	const char *what = "serial";
	if ((r = serial_create(vm->console_fd, &sops, &vm->serial)) < 0)
		goto fail;
	what = "rtc";
	if ((r = rtc_create(vm->mem.size, &vm->rtc)) < 0)
		goto fail;
	what = "ACPI PM";
	if ((r = acpi_pm_create(&pops, &vm->pm)) < 0)
		goto fail;
	what = "PCI bus";
	if ((r = pci_bus_create(&vm->pio, &vm->mmio, &bops, &vm->pci)) < 0)
		goto fail;
	i8042_init(&vm->kbd, machine_reset, vm);
	what = "port registration";
	if ((r = io_bus_register(&vm->pio, LAYOUT_PORT_COM1, 8, serial_io, vm->serial)) < 0 ||
	    (r = io_bus_register(&vm->pio, LAYOUT_PORT_RTC, 2, rtc_io, vm->rtc)) < 0 ||
	    (r = io_bus_register(&vm->pio, LAYOUT_PORT_I8042, 1, i8042_data_io, &vm->kbd)) < 0 ||
	    (r = io_bus_register(&vm->pio, LAYOUT_PORT_I8042 + 4, 1, i8042_cmd_io, &vm->kbd)) < 0 ||
	    (r = io_bus_register(&vm->pio, LAYOUT_PORT_POST, 1, post_io, NULL)) < 0 ||
	    (r = io_bus_register(&vm->pio, LAYOUT_PORT_ACPI_PM, 12, pm_io, vm->pm)) < 0 ||
	    (r = io_bus_register(&vm->pio, LAYOUT_PORT_ACPI_GPE0, LAYOUT_PORT_ACPI_GPE0_LEN, gpe_io,
				 vm->pm)) < 0)
		goto fail;
	struct storage_env senv = {.pci = vm->pci,
				   .pio = &vm->pio,
				   .mem = &vm->mem,
				   .set_irq = pci_set_irq,
				   .irq_opaque = vm,
				   /* virtio (issue 12) */
				   .loop = vm->dev_loop_started ? vm->dev_loop : NULL,
				   .ncpus = vm->cfg->cpus};
	/* Disk modes need the state directory before any disk is opened. */
	if ((r = vm_state_prepare(vm->cfg, err, errlen)) < 0)
		return r;
	/* storage_create's messages name the image and the problem: pass them through. */
	if ((r = storage_create(&senv, vm->cfg->disks, vm->cfg->ndisks, &vm->storage, err,
				errlen)) < 0)
		return r;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", what, strerror(-r));
	return r;
}

void vm_devices_destroy(struct vm *vm)
{
	/* vCPUs are stopped: no handler can be running. */
	fast_irq_destroy(vm); /* virtio (issue 12): no doorbell callback runs from here on */
	storage_destroy(vm->storage);
	vm->storage = NULL;
	vm_state_release();
	pci_bus_destroy(vm->pci);
	vm->pci = NULL;
	fast_irq_free(vm);
	if (vm->pm)
		acpi_pm_destroy(vm->pm);
	vm->pm = NULL;
	rtc_destroy(vm->rtc);
	vm->rtc = NULL;
	serial_destroy(vm->serial);
	vm->serial = NULL;
	if (vm->console_fd > STDERR_FILENO)
		close(vm->console_fd);
	vm->console_fd = -1;
}
