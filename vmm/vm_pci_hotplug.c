/* PCI hot-plug on bus 0 of a running VM: the register block (devices/pci_hotplug.h) wired to its
 * ports and to GPE0 of the ACPI PM device, and the removal of a function once the guest ejected
 * its slot.
 *
 * The hot-pluggable slots are the ones no device took when the machine was built.  A function is
 * freed only after the guest's _EJ0: the eject arrives as a port write on a vCPU thread, which
 * queues the teardown on the loop thread (where the function's event sources run, so no handler
 * of it is running there); the teardown pauses the vCPUs (none may be inside the function's BAR
 * handlers), frees the function (its ioeventfds, irqfds, MSI routes and BARs go with it), lets
 * the vCPUs go and releases the slot.  The verb that asked waits for that on the worker.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "devices/device.h"
#include "devices/io_bus.h"
#include "devices/pci.h"
#include "devices/pci_hotplug.h"
#include "lib/error.h"
#include "lib/event_loop.h"
#include "lib/log.h"
#include "memory/layout.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"

struct hp_slot {
	struct vm_pci_hotplug *h;
	unsigned slot;
	void (*free_fn)(void *opaque); /* frees the function in the slot; NULL: nothing there */
	void *opaque;
	bool gone; /* freed after an eject, waiting for the verb to see it */
};

struct vm_pci_hotplug {
	struct vm *vm;
	struct pci_hotplug *hp;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; gone changed */
	struct hp_slot slot[PCI_SLOTS];
};

static void hp_notify(void *opaque)
{
	struct vm_pci_hotplug *h = opaque;
	struct acpi_pm *pm = devices_find(h->vm->devices, "acpi-pm");
	if (pm)
		acpi_pm_raise_gpe(pm, ACPI_GPE_PCI_HOTPLUG);
}

/* On the loop thread: the guest has let go of the slot. */
static void teardown_on_loop(void *opaque)
{
	struct hp_slot *s = opaque;
	struct vm_pci_hotplug *h = s->h;
	int p = vm_pause(h->vm);
	if (p == -ESHUTDOWN)
		return; /* the VM's end frees everything */
	if (p < 0 && p != -EALREADY) {
		/* Freeing it under running vCPUs is not safe: keep it (the VM's end frees it). */
		log_warn("pci-hotplug", "slot %u: cannot pause the vCPUs (%s): its function stays",
			 s->slot, strerror(-p));
		return;
	}
	pthread_mutex_lock(&h->lock);
	void (*fn)(void *) = s->free_fn;
	void *o = s->opaque;
	s->free_fn = NULL;
	s->opaque = NULL;
	pthread_mutex_unlock(&h->lock);
	if (fn)
		fn(o);
	if (p == 0)
		vm_resume(h->vm);
	pci_hotplug_release(h->hp, s->slot);
	pthread_mutex_lock(&h->lock);
	s->gone = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	log_info("pci-hotplug", "slot %u: the guest ejected it; its function is freed", s->slot);
}

static void hp_eject(void *opaque, unsigned slot)
{
	struct vm_pci_hotplug *h = opaque;
	if (slot >= PCI_SLOTS)
		return;
	if (event_loop_call(h->vm->loop, teardown_on_loop, &h->slot[slot]) < 0)
		log_warn("pci-hotplug", "slot %u: cannot queue its removal", slot);
}

static void hp_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct vm_pci_hotplug *h = opaque;
	pci_hotplug_io(h->hp, (uint16_t)(LAYOUT_PORT_PCI_HOTPLUG + offset), data, len, is_write);
}

int vm_pci_hotplug_create(struct vm *vm)
{
	struct pci_bus *bus = vm->env.pci;
	if (!bus)
		return 0;
	struct vm_pci_hotplug *h = calloc(1, sizeof(*h));
	if (!h)
		return error_set(-ENOMEM, "PCI hot-plug: out of memory");
	h->vm = vm;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		h->slot[i] = (struct hp_slot){.h = h, .slot = i};
	/* What the machine has now are its boot devices: every other slot is hot-pluggable. */
	uint32_t slots = 0;
	pthread_mutex_lock(&bus->lock);
	for (unsigned i = 1; i < PCI_SLOTS; i++) {
		bool used = bus->slots[i];
		for (unsigned f = 0; f < 7; f++)
			used |= bus->functions[i][f] != NULL; /* 00:01.3 for firmware */
		if (!used)
			slots |= 1u << i;
	}
	pthread_mutex_unlock(&bus->lock);
	vm->pci_hotplug = h;
	struct pci_hotplug_ops ops = {.notify = hp_notify, .eject = hp_eject, .opaque = h};
	int r = pci_hotplug_create(slots, &ops, &h->hp);
	if (r == 0)
		r = io_bus_register(&vm->pio, LAYOUT_PORT_PCI_HOTPLUG, PCI_HOTPLUG_LEN, hp_io, h);
	if (r < 0)
		return error_set(r, "PCI hot-plug: ports 0x%x: %s", LAYOUT_PORT_PCI_HOTPLUG,
				 strerror(-r));
	return 0;
}

uint32_t vm_pci_hotplug_slots(const struct vm *vm)
{
	return vm->pci_hotplug && vm->pci_hotplug->hp ? pci_hotplug_slots(vm->pci_hotplug->hp) : 0;
}

void vm_pci_hotplug_reset(struct vm *vm)
{
	if (vm->pci_hotplug && vm->pci_hotplug->hp)
		pci_hotplug_reset(vm->pci_hotplug->hp);
}

void vm_pci_hotplug_destroy(struct vm *vm)
{
	struct vm_pci_hotplug *h = vm->pci_hotplug;
	if (!h)
		return;
	/* vCPUs stopped, the loop no longer runs: free what is still plugged. */
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		if (h->slot[i].free_fn)
			h->slot[i].free_fn(h->slot[i].opaque);
	if (h->hp) {
		io_bus_unregister(&vm->pio, LAYOUT_PORT_PCI_HOTPLUG, h);
		pci_hotplug_destroy(h->hp);
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	vm->pci_hotplug = NULL;
}

int vm_pci_hotplug_reserve(struct vm *vm)
{
	struct vm_pci_hotplug *h = vm->pci_hotplug;
	if (!h || !h->hp)
		return error_set(-EOPNOTSUPP, "this VM has no PCI hot-plug");
	int slot = pci_hotplug_reserve(h->hp);
	if (slot < 0)
		return error_set(slot, "no free hot-pluggable PCI slot");
	return slot;
}

void vm_pci_hotplug_cancel(struct vm *vm, unsigned slot)
{
	pci_hotplug_release(vm->pci_hotplug->hp, slot);
}

int vm_pci_hotplug_plug(struct vm *vm, unsigned slot, void (*free_fn)(void *), void *opaque)
{
	struct vm_pci_hotplug *h = vm->pci_hotplug;
	pthread_mutex_lock(&h->lock);
	h->slot[slot].free_fn = free_fn;
	h->slot[slot].opaque = opaque;
	h->slot[slot].gone = false;
	pthread_mutex_unlock(&h->lock);
	int r = pci_hotplug_insert(h->hp, slot);
	if (r < 0) {
		pthread_mutex_lock(&h->lock);
		h->slot[slot].free_fn = NULL;
		pthread_mutex_unlock(&h->lock);
		return error_set(r, "PCI slot %u: cannot announce it: %s", slot, strerror(-r));
	}
	return 0;
}

bool vm_pci_hotplug_has(struct vm *vm, unsigned slot)
{
	struct vm_pci_hotplug *h = vm->pci_hotplug;
	if (!h || slot >= PCI_SLOTS)
		return false;
	pthread_mutex_lock(&h->lock);
	bool has = h->slot[slot].free_fn != NULL;
	pthread_mutex_unlock(&h->lock);
	return has;
}

int vm_pci_hotplug_unplug(struct vm *vm, unsigned slot, int timeout_ms)
{
	struct vm_pci_hotplug *h = vm->pci_hotplug;
	if (!h || !h->hp)
		return error_set(-EOPNOTSUPP, "this VM has no PCI hot-plug");
	pthread_mutex_lock(&h->lock);
	h->slot[slot].gone = false;
	pthread_mutex_unlock(&h->lock);
	int r = pci_hotplug_remove(h->hp, slot);
	if (r == -EPERM)
		return error_set(r, "PCI slot %u holds a boot device: it cannot be removed", slot);
	if (r == -ENOENT)
		return error_set(r, "PCI slot %u holds nothing", slot);
	if (r < 0 && r != -EINPROGRESS)
		return error_set(r, "PCI slot %u: %s", slot, strerror(-r));
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	pthread_mutex_lock(&h->lock);
	while (!h->slot[slot].gone) {
		if (pthread_cond_timedwait(&h->cond, &h->lock, &until) == ETIMEDOUT)
			break;
	}
	bool gone = h->slot[slot].gone;
	pthread_mutex_unlock(&h->lock);
	if (!gone)
		return error_set(-ETIMEDOUT,
				 "the guest did not eject PCI slot %u within %d s (the request "
				 "stays: the guest may still release it)",
				 slot, timeout_ms / 1000);
	return 0;
}
