/* CPU hot-plug register block (see acpi_cpu_hotplug.h for the flow, acpi_cpus_aml.c for the AML).
 *
 *   +0 dword  write: selector; read: command data 2 (upper half of the CPU id: always 0 here)
 *   +4 byte   read: bit0 enabled, bit1 insert pending, bit2 remove pending
 *             write: bit1 clear insert, bit2 clear remove, bit3 eject
 *   +5 byte   write: command (0 next CPU with an event, 1 OST event, 2 OST status, 3 CPU id)
 *   +8 dword  read: command data (0: selector, 3: APIC ID); write: OST event / status
 * A selector past the last CPU reads 0 and ignores writes (QEMU's CVE-2021-4158 was a NULL
 * dereference on exactly that).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/acpi_cpu_hotplug.h"
#include "memory/layout.h"

enum { REG_SEL = 0, REG_FLAGS = 4, REG_CMD = 5, REG_DATA = 8 };
enum { CMD_NEXT_EVENT = 0, CMD_OST_EVENT = 1, CMD_OST_STATUS = 2, CMD_CPU_ID = 3 };
#define F_ENABLED 0x01
#define F_INSERT 0x02
#define F_REMOVE 0x04
#define F_EJECT 0x08

struct cpu_slot {
	bool enabled, inserting, removing;
	bool unplug; /* the VMM asked for removal; stays set after the guest acks the event */
};

struct acpi_cpu_hotplug {
	struct acpi_cpu_hotplug_ops ops;
	pthread_mutex_t lock;
	unsigned possible;
	uint32_t selector;
	uint8_t cmd;
	uint32_t ost_event;
	struct cpu_slot cpu[LAYOUT_MAX_VCPUS];
};

/* Callbacks decided under the lock and made after it is dropped. */
struct deferred {
	bool notify, eject, ost;
	unsigned cpu;
	uint32_t ost_event, ost_status;
};

int acpi_cpu_hotplug_create(unsigned possible, unsigned present,
			    const struct acpi_cpu_hotplug_ops *ops, struct acpi_cpu_hotplug **out)
{
	if (present < 1 || present > possible || possible > LAYOUT_MAX_VCPUS)
		return -EINVAL;
	return acpi_cpu_hotplug_create_mask(possible, present >= 64 ? ~0ULL : (1ULL << present) - 1,
					    ops, out);
}

int acpi_cpu_hotplug_create_mask(unsigned possible, uint64_t present,
				 const struct acpi_cpu_hotplug_ops *ops,
				 struct acpi_cpu_hotplug **out)
{
	struct acpi_cpu_hotplug *hp;

	if (!ops || !out || !(present & 1) || possible < 1 || possible > LAYOUT_MAX_VCPUS ||
	    (possible < 64 && present >> possible))
		return -EINVAL;
	hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	int err = pthread_mutex_init(&hp->lock, NULL);
	if (err) {
		free(hp);
		return -err;
	}
	hp->ops = *ops;
	hp->possible = possible;
	for (unsigned i = 0; i < possible; i++)
		hp->cpu[i].enabled = present >> i & 1;
	*out = hp;
	return 0;
}

void acpi_cpu_hotplug_reset(struct acpi_cpu_hotplug *hp)
{
	pthread_mutex_lock(&hp->lock);
	hp->selector = 0;
	hp->cmd = 0;
	hp->ost_event = 0;
	for (unsigned i = 0; i < hp->possible; i++) {
		hp->cpu[i].inserting = hp->cpu[i].removing = false;
		hp->cpu[i].unplug = false;
	}
	pthread_mutex_unlock(&hp->lock);
}

void acpi_cpu_hotplug_destroy(struct acpi_cpu_hotplug *hp)
{
	if (!hp)
		return;
	pthread_mutex_destroy(&hp->lock);
	free(hp);
}

static struct cpu_slot *selected(struct acpi_cpu_hotplug *hp)
{
	return hp->selector < hp->possible ? &hp->cpu[hp->selector] : NULL;
}

/* Command 0: move the selector to the next CPU (wrapping, from the current one) with an event. */
static void select_next_event(struct acpi_cpu_hotplug *hp)
{
	unsigned start = hp->selector < hp->possible ? hp->selector : 0;
	for (unsigned n = 0; n < hp->possible; n++) {
		unsigned i = (start + n) % hp->possible;
		if (hp->cpu[i].inserting || hp->cpu[i].removing) {
			hp->selector = i;
			return;
		}
	}
}

static uint32_t reg_read(struct acpi_cpu_hotplug *hp, unsigned off)
{
	struct cpu_slot *c = selected(hp);
	switch (off) {
	case REG_FLAGS:
		if (!c)
			return 0;
		return (c->enabled ? F_ENABLED : 0) | (c->inserting ? F_INSERT : 0) |
		       (c->removing ? F_REMOVE : 0);
	case REG_DATA:
		if (hp->cmd == CMD_NEXT_EVENT || (hp->cmd == CMD_CPU_ID && c))
			return hp->selector; /* the selector is the APIC ID */
		return 0;
	default: /* REG_SEL reads "command data 2", the CPU id's upper half; REG_CMD reads 0 */
		return 0;
	}
}

static void reg_write(struct acpi_cpu_hotplug *hp, unsigned off, uint32_t v, struct deferred *d)
{
	struct cpu_slot *c = selected(hp);
	switch (off) {
	case REG_SEL:
		hp->selector = v;
		break;
	case REG_FLAGS:
		if (!c)
			break;
		if (v & F_INSERT)
			c->inserting = false;
		if ((v & F_EJECT) && hp->selector != 0 && c->enabled && c->unplug) {
			c->enabled = false;
			c->removing = false;
			c->unplug = false;
			d->eject = true;
			d->cpu = hp->selector;
		}
		if (v & F_REMOVE)
			c->removing = false;
		break;
	case REG_CMD:
		hp->cmd = v;
		if (v == CMD_NEXT_EVENT)
			select_next_event(hp);
		break;
	case REG_DATA:
		if (!c)
			break;
		if (hp->cmd == CMD_OST_EVENT) {
			hp->ost_event = v;
		} else if (hp->cmd == CMD_OST_STATUS) {
			d->ost = true;
			d->cpu = hp->selector;
			d->ost_event = hp->ost_event;
			d->ost_status = v;
		}
		break;
	}
}

static void run_deferred(struct acpi_cpu_hotplug *hp, const struct deferred *d)
{
	if (d->eject && hp->ops.eject)
		hp->ops.eject(hp->ops.opaque, d->cpu);
	if (d->ost && hp->ops.ost)
		hp->ops.ost(hp->ops.opaque, d->cpu, d->ost_event, d->ost_status);
	if (d->notify && hp->ops.notify)
		hp->ops.notify(hp->ops.opaque);
}

void acpi_cpu_hotplug_io(struct acpi_cpu_hotplug *hp, uint16_t port, uint8_t *data, unsigned len,
			 bool is_write)
{
	unsigned off = (unsigned)port - LAYOUT_PORT_CPU_HOTPLUG;
	bool ok =
	    port >= LAYOUT_PORT_CPU_HOTPLUG && (((off == REG_SEL || off == REG_DATA) && len == 4) ||
						((off == REG_FLAGS || off == REG_CMD) && len == 1));
	struct deferred d = {0};

	if (!hp || !data)
		return;
	if (!ok) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	pthread_mutex_lock(&hp->lock);
	if (is_write) {
		uint32_t v = 0;
		for (unsigned i = 0; i < len; i++)
			v |= (uint32_t)data[i] << (8 * i);
		reg_write(hp, off, v, &d);
	} else {
		uint32_t v = reg_read(hp, off);
		for (unsigned i = 0; i < len; i++)
			data[i] = v >> (8 * i);
	}
	pthread_mutex_unlock(&hp->lock);
	run_deferred(hp, &d);
}

int acpi_cpu_hotplug_insert(struct acpi_cpu_hotplug *hp, unsigned cpu)
{
	struct deferred d = {.notify = true};

	if (!hp || cpu >= hp->possible)
		return -EINVAL;
	pthread_mutex_lock(&hp->lock);
	if (hp->cpu[cpu].enabled) {
		pthread_mutex_unlock(&hp->lock);
		return -EEXIST;
	}
	hp->cpu[cpu].enabled = true;
	hp->cpu[cpu].inserting = true;
	hp->cpu[cpu].removing = false;
	hp->cpu[cpu].unplug = false;
	pthread_mutex_unlock(&hp->lock);
	run_deferred(hp, &d);
	return 0;
}

int acpi_cpu_hotplug_remove(struct acpi_cpu_hotplug *hp, unsigned cpu)
{
	struct deferred d = {.notify = true};

	if (!hp || cpu >= hp->possible)
		return -EINVAL;
	if (cpu == 0)
		return -EPERM;
	pthread_mutex_lock(&hp->lock);
	if (!hp->cpu[cpu].enabled) {
		pthread_mutex_unlock(&hp->lock);
		return -ENOENT;
	}
	hp->cpu[cpu].removing = true;
	hp->cpu[cpu].unplug = true;
	pthread_mutex_unlock(&hp->lock);
	run_deferred(hp, &d);
	return 0;
}

bool acpi_cpu_hotplug_enabled(struct acpi_cpu_hotplug *hp, unsigned cpu)
{
	bool on;

	if (!hp || cpu >= hp->possible)
		return false;
	pthread_mutex_lock(&hp->lock);
	on = hp->cpu[cpu].enabled;
	pthread_mutex_unlock(&hp->lock);
	return on;
}
