/* NIC hot-plug (`minivmm control NAME nic-add|nic-remove|nic-hotplugged`): a virtio-net function
 * made on the running VM in a hot-pluggable PCI slot (vm_pci_hotplug.c), on a switch port or a
 * host TAP, with the syntax of --nic.
 *
 *   nic-add switch=SW[,mac=..][,vlan=N] | tap=TAP[,mac=..]   reply once the guest's driver runs
 *                                                           it: {"id", "slot", "mac"}
 *   nic-remove ID                                            reply once the guest ejected it and
 *                                                           the function is freed
 *   nic-hotplugged                                           the hot-plugged NICs
 * The ID is the PCI slot.  Without mac= the address is derived from the VM name and the slot (as
 * --nic derives it from the index), so a NIC plugged again gets the same address.  A hot-plugged
 * switch NIC whose switch goes away stays down (no rejoin, unlike a --nic one).
 */
#include <errno.h>
#include <pthread.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/pci.h"
#include "devices/virtio/net/nic_config.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/virtio_pci.h"
#include "lib/error.h"
#include "net/switch_proto.h"
#include "net/tap.h"
#include "vmm/control_internal.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"

#define DRIVER_WAIT_MS 20000 /* below the control client's default 30 s */
#define EJECT_WAIT_MS 20000
#define POLL_MS 100
#define HP_NIC_INDEX_BASE 100 /* MAC derivation: slot + this, apart from --nic's indexes */

struct hp_nic {
	struct vm *vm;
	unsigned slot;
	struct nic_config cfg;
	uint8_t mac[6];
	struct virtio_net *dev;
};

struct vm_nic_hotplug {
	pthread_mutex_t lock;	       /* nic[]: the loop frees a NIC while verbs read the list */
	struct hp_nic *nic[PCI_SLOTS]; /* by slot; owned by vm_pci_hotplug once plugged */
};

static void nic_free(void *opaque)
{
	struct hp_nic *n = opaque;
	struct vm_nic_hotplug *g = n->vm->nic_hotplug;
	if (g) {
		pthread_mutex_lock(&g->lock);
		g->nic[n->slot] = NULL;
		pthread_mutex_unlock(&g->lock);
	}
	virtio_net_destroy(n->dev);
	free(n);
}

static const char *one_string(struct json_object *args)
{
	if (!args || !json_object_is_type(args, json_type_array) ||
	    json_object_array_length(args) != 1)
		return NULL;
	struct json_object *v = json_object_array_get_idx(args, 0);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int open_backend(struct vm *vm, struct hp_nic *n)
{
	int fd;
	if (n->cfg.backend == NIC_TAP) {
		fd = tap_open(n->cfg.name);
	} else {
		int r = control_path_for(n->cfg.name, SWITCH_SOCKET_SUFFIX, n->cfg.switch_path,
					 sizeof(n->cfg.switch_path));
		if (r < 0)
			return error_wrap(r, "switch=%s", n->cfg.name);
		char port[96];
		snprintf(port, sizeof(port), "%s.slot%u", vm->cfg->name, n->slot);
		fd = switch_join(n->cfg.switch_path, port, n->mac, n->cfg.vlan);
	}
	if (fd < 0)
		return error_wrap(fd, "nic-add %s=%s", n->cfg.backend == NIC_TAP ? "tap" : "switch",
				  n->cfg.name);
	return fd;
}

/* Polls (the guest's driver start is no event the worker could wait on). */
static bool driver_running(struct vm *vm, unsigned slot)
{
	struct vm_nic_hotplug *g = vm->nic_hotplug;
	pthread_mutex_lock(&g->lock);
	bool on = g->nic[slot] && virtio_pci_running(virtio_net_transport(g->nic[slot]->dev));
	pthread_mutex_unlock(&g->lock);
	return on;
}

/* Polls (the guest's driver start is no event the worker could wait on); the NIC may be ejected
 * meanwhile, so it is looked up by slot each time. */
static bool wait_driver(struct vm *vm, unsigned slot)
{
	for (int waited = 0; waited < DRIVER_WAIT_MS; waited += POLL_MS) {
		if (driver_running(vm, slot))
			return true;
		struct timespec t = {0, POLL_MS * 1000000L};
		nanosleep(&t, NULL);
	}
	return driver_running(vm, slot);
}

static int verb_nic_add(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	const char *spec = one_string(args);
	if (!spec)
		return error_set(-EINVAL, "usage: nic-add switch=NAME[,mac=..][,vlan=N] | "
					  "tap=TAP[,mac=..]");
	struct hp_nic *n = calloc(1, sizeof(*n));
	if (!n)
		return error_set(-ENOMEM, "nic-add: out of memory");
	n->vm = vm;
	int r = nic_config_parse(spec, &n->cfg);
	if (r < 0) {
		free(n);
		return r;
	}
	int slot = vm_pci_hotplug_reserve(vm);
	if (slot < 0) {
		free(n);
		return slot;
	}
	n->slot = (unsigned)slot;
	if (n->cfg.has_mac)
		memcpy(n->mac, n->cfg.mac, 6);
	else
		nic_default_mac(vm->cfg->name, HP_NIC_INDEX_BASE + n->slot, n->mac);
	int fd = open_backend(vm, n);
	if (fd < 0) {
		vm_pci_hotplug_cancel(vm, n->slot);
		free(n);
		return fd;
	}
	struct virtio_net_env venv = {.pci = vm->env.pci,
				      .mem = vm->env.mem,
				      .loop = vm->env.loop,
				      .fd = fd,
				      .is_socket = n->cfg.backend == NIC_SWITCH,
				      .slot = n->slot};
	memcpy(venv.mac, n->mac, 6);
	r = virtio_net_create(&venv, &n->dev);
	if (r < 0) {
		close(fd);
		vm_pci_hotplug_cancel(vm, n->slot);
		free(n);
		return error_set(r, "nic-add: virtio-net in slot %d: %s", slot, strerror(-r));
	}
	char m[18]; /* now: once plugged, the guest may eject and free it at any time */
	switch_mac_format(n->mac, m);
	pthread_mutex_lock(&vm->nic_hotplug->lock);
	vm->nic_hotplug->nic[n->slot] = n;
	pthread_mutex_unlock(&vm->nic_hotplug->lock);
	r = vm_pci_hotplug_plug(vm, n->slot, nic_free, n);
	if (r < 0) {
		pthread_mutex_lock(&vm->nic_hotplug->lock);
		vm->nic_hotplug->nic[n->slot] = NULL;
		pthread_mutex_unlock(&vm->nic_hotplug->lock);
		virtio_net_destroy(n->dev);
		vm_pci_hotplug_cancel(vm, n->slot);
		free(n);
		return r;
	}
	json_object_object_add(result, "id", json_object_new_int(slot));
	json_object_object_add(result, "slot", json_object_new_int(slot));
	json_object_object_add(result, "mac", json_object_new_string(m));
	if (!wait_driver(vm, (unsigned)slot))
		return error_set(-ETIMEDOUT,
				 "NIC %d (slot %d, %s) is plugged but the guest's driver did not "
				 "start it within %d s",
				 slot, slot, m, DRIVER_WAIT_MS / 1000);
	return 0;
}

static int verb_nic_remove(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	const char *s = one_string(args);
	char *end;
	unsigned long id = s && *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || *end)
		return error_set(-EINVAL, "usage: nic-remove ID (from nic-add or nic-hotplugged)");
	if (id >= PCI_SLOTS || !vm_pci_hotplug_has(vm, id))
		return error_set(-ENOENT,
				 "no hot-plugged NIC %lu (nic-hotplugged lists them; NICs "
				 "given with --nic cannot be removed)",
				 id);
	int r = vm_pci_hotplug_unplug(vm, (unsigned)id, EJECT_WAIT_MS);
	if (r < 0)
		return r;
	json_object_object_add(result, "removed", json_object_new_int((int)id));
	return 0;
}

static int verb_nic_hotplugged(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	(void)args;
	struct json_object *arr = json_object_new_array();
	pthread_mutex_lock(&vm->nic_hotplug->lock);
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		struct hp_nic *n = vm->nic_hotplug->nic[i];
		if (!n)
			continue;
		struct json_object *o = json_object_new_object();
		char m[18];
		switch_mac_format(n->mac, m);
		json_object_object_add(o, "id", json_object_new_int((int)i));
		json_object_object_add(o, "mac", json_object_new_string(m));
		json_object_object_add(
		    o, "backend",
		    json_object_new_string(n->cfg.backend == NIC_TAP ? "tap" : "switch"));
		json_object_object_add(o, "name", json_object_new_string(n->cfg.name));
		json_object_object_add(
		    o, "driver",
		    json_object_new_boolean(virtio_pci_running(virtio_net_transport(n->dev))));
		json_object_array_add(arr, o);
	}
	pthread_mutex_unlock(&vm->nic_hotplug->lock);
	json_object_object_add(result, "nics", arr);
	return 0;
}

struct json_object *vm_nic_hotplug_ids(struct vm *vm)
{
	struct json_object *a = json_object_new_array();
	struct vm_nic_hotplug *g = vm->nic_hotplug;
	if (!a || !g)
		return a;
	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		if (g->nic[i])
			json_object_array_add(a, json_object_new_int((int)i));
	pthread_mutex_unlock(&g->lock);
	return a;
}

int vm_nic_hotplug_register(struct vm *vm)
{
	if (!vm->pci_hotplug)
		return 0;
	vm->nic_hotplug = calloc(1, sizeof(*vm->nic_hotplug));
	if (!vm->nic_hotplug)
		return error_set(-ENOMEM, "NIC hot-plug: out of memory");
	pthread_mutex_init(&vm->nic_hotplug->lock, NULL);
	int r = device_add_verb(&vm->env, "nic-add",
				"nic-add switch=NAME[,mac=..][,vlan=N] | tap=TAP[,mac=..]",
				verb_nic_add, vm);
	if (r == 0)
		r = device_add_verb(&vm->env, "nic-remove", "nic-remove ID", verb_nic_remove, vm);
	if (r == 0)
		r = device_add_verb(&vm->env, "nic-hotplugged", "nic-hotplugged",
				    verb_nic_hotplugged, vm);
	return r;
}
