/* ACPI PCI hot-plug register block (see pci_hotplug.h for the registers and the flow).  Every slot
 * is in one state: free, reserved (a function is being made), plugged, or ejected (the guest
 * released it, the VMM has yet to free the function); only plugged slots can be ejected. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci_hotplug.h"
#include "memory/layout.h"

enum { REG_UP = 0, REG_DOWN = 4, REG_EJECT = 8, REG_SLOTS = 12 };

struct pci_hotplug {
	struct pci_hotplug_ops ops;
	pthread_mutex_t lock;
	uint32_t slots;			     /* hot-pluggable */
	uint32_t reserved, plugged, ejected; /* disjoint subsets of slots */
	uint32_t up, down;		     /* pending events */
};

int pci_hotplug_create(uint32_t slots, const struct pci_hotplug_ops *ops, struct pci_hotplug **out)
{
	if (!ops || !out || (slots & 1))
		return -EINVAL;
	struct pci_hotplug *hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	int err = pthread_mutex_init(&hp->lock, NULL);
	if (err) {
		free(hp);
		return -err;
	}
	hp->ops = *ops;
	hp->slots = slots;
	*out = hp;
	return 0;
}

void pci_hotplug_destroy(struct pci_hotplug *hp)
{
	if (!hp)
		return;
	pthread_mutex_destroy(&hp->lock);
	free(hp);
}

void pci_hotplug_reset(struct pci_hotplug *hp)
{
	pthread_mutex_lock(&hp->lock);
	hp->up = hp->down = 0;
	pthread_mutex_unlock(&hp->lock);
}

uint32_t pci_hotplug_slots(struct pci_hotplug *hp)
{
	return hp->slots; /* fixed at creation */
}

static uint32_t bit(unsigned slot)
{
	return slot < 32 ? 1u << slot : 0;
}

void pci_hotplug_io(struct pci_hotplug *hp, uint16_t port, uint8_t *data, unsigned len,
		    bool is_write)
{
	unsigned off = (uint16_t)(port - LAYOUT_PORT_PCI_HOTPLUG);
	if (len != 4 || off % 4 || off >= PCI_HOTPLUG_LEN) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	uint32_t v = 0, eject = 0;
	if (is_write)
		memcpy(&v, data, 4);
	pthread_mutex_lock(&hp->lock);
	switch (off) {
	case REG_UP:
		if (!is_write) {
			v = hp->up;
			hp->up = 0;
		}
		break;
	case REG_DOWN:
		if (!is_write) {
			v = hp->down;
			hp->down = 0;
		}
		break;
	case REG_EJECT:
		if (is_write) {
			/* Only what is plugged in a hot-pluggable slot leaves. */
			eject = v & hp->plugged;
			hp->plugged &= ~eject;
			hp->ejected |= eject;
			hp->up &= ~eject;
			hp->down &= ~eject;
		}
		v = 0;
		break;
	case REG_SLOTS:
		v = hp->slots;
		break;
	}
	pthread_mutex_unlock(&hp->lock);
	if (!is_write)
		memcpy(data, &v, 4);
	for (unsigned s = 0; eject && s < 32; s++)
		if (eject & bit(s))
			hp->ops.eject(hp->ops.opaque, s);
}

int pci_hotplug_reserve(struct pci_hotplug *hp)
{
	int r = -ENOSPC;
	pthread_mutex_lock(&hp->lock);
	uint32_t free_slots = hp->slots & ~(hp->reserved | hp->plugged | hp->ejected);
	if (free_slots) {
		r = __builtin_ctz(free_slots);
		hp->reserved |= bit((unsigned)r);
	}
	pthread_mutex_unlock(&hp->lock);
	return r;
}

int pci_hotplug_release(struct pci_hotplug *hp, unsigned slot)
{
	int r = -EINVAL;
	pthread_mutex_lock(&hp->lock);
	if ((hp->reserved | hp->ejected) & bit(slot)) {
		hp->reserved &= ~bit(slot);
		hp->ejected &= ~bit(slot);
		r = 0;
	}
	pthread_mutex_unlock(&hp->lock);
	return r;
}

int pci_hotplug_insert(struct pci_hotplug *hp, unsigned slot)
{
	int r = -EINVAL;
	pthread_mutex_lock(&hp->lock);
	if (hp->reserved & bit(slot)) {
		hp->reserved &= ~bit(slot);
		hp->plugged |= bit(slot);
		hp->up |= bit(slot);
		r = 0;
	}
	pthread_mutex_unlock(&hp->lock);
	if (r == 0)
		hp->ops.notify(hp->ops.opaque);
	return r;
}

int pci_hotplug_remove(struct pci_hotplug *hp, unsigned slot)
{
	int r = 0;
	pthread_mutex_lock(&hp->lock);
	if (!(hp->slots & bit(slot)))
		r = -EPERM;
	else if (hp->ejected & bit(slot))
		r = -EINPROGRESS;
	else if (!(hp->plugged & bit(slot)))
		r = -ENOENT;
	else
		hp->down |= bit(slot);
	pthread_mutex_unlock(&hp->lock);
	if (r == 0)
		hp->ops.notify(hp->ops.opaque);
	return r;
}

bool pci_hotplug_ejected(struct pci_hotplug *hp, unsigned slot)
{
	pthread_mutex_lock(&hp->lock);
	bool e = hp->ejected & bit(slot);
	pthread_mutex_unlock(&hp->lock);
	return e;
}
