/* The VM's NICs: one virtio-net PCI function per --nic, in command-line order (Linux
 * virtio_net, eth0, eth1, ...), each on a switch port or a host TAP (nic_config.h).
 *
 * Control verb: `nic-info` lists each NIC's MAC, backend and counters (frames and bytes each
 * way, drops, malformed frames the guest sent).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/virtio/net/nic_config.h"
#include "devices/virtio/net/virtio_net.h"
#include "net/switch_proto.h"
#include "net/tap.h"
#include "devices/machine_config.h"

struct nics {
	unsigned n;
	struct virtio_net *dev[NIC_MAX];
	struct nic_config cfg[NIC_MAX];
	uint8_t mac[NIC_MAX][6];
};

static void nics_destroy(void *state)
{
	struct nics *g = state;
	for (unsigned i = g->n; i-- > 0;)
		virtio_net_destroy(g->dev[i]);
	free(g);
}

static void nics_reset(void *state)
{
	struct nics *g = state;
	for (unsigned i = 0; i < g->n; i++)
		virtio_net_reset(g->dev[i]);
}

static int nic_info(void *opaque, struct json_object *args, struct json_object *result, char *err,
		    size_t errlen)
{
	struct nics *g = opaque;
	(void)args;
	(void)err;
	(void)errlen;
	struct json_object *arr = json_object_new_array();
	for (unsigned i = 0; i < g->n; i++) {
		struct virtio_net_stats s;
		virtio_net_get_stats(g->dev[i], &s);
		struct json_object *o = json_object_new_object();
		char m[18];
		switch_mac_format(g->mac[i], m);
		json_object_object_add(o, "index", json_object_new_int((int)i));
		json_object_object_add(o, "mac", json_object_new_string(m));
		json_object_object_add(
		    o, "backend",
		    json_object_new_string(g->cfg[i].backend == NIC_TAP ? "tap" : "switch"));
		json_object_object_add(o, "name", json_object_new_string(g->cfg[i].name));
		json_object_object_add(o, "link",
				       json_object_new_string(s.backend_up ? "up" : "down"));
#define ADD(k) json_object_object_add(o, #k, json_object_new_int64((int64_t)s.k))
		ADD(rx_frames);
		ADD(rx_bytes);
		ADD(rx_drops);
		ADD(tx_frames);
		ADD(tx_bytes);
		ADD(tx_drops);
		ADD(tx_malformed);
#undef ADD
		json_object_array_add(arr, o);
	}
	json_object_object_add(result, "nics", arr);
	return 0;
}

static int open_backend(const struct device_env *env, const struct nic_config *c, unsigned i,
			const uint8_t mac[6], char *err, size_t errlen)
{
	char msg[400];
	int fd;
	if (c->backend == NIC_TAP) {
		fd = tap_open(c->name, msg, sizeof(msg));
	} else {
		char port[96];
		snprintf(port, sizeof(port), "%s.nic%u", env->machine->name, i);
		fd = switch_join(c->switch_path, port, mac, c->vlan, msg, sizeof(msg));
	}
	if (fd < 0)
		snprintf(err, errlen, "--nic %s=%s: %s", c->backend == NIC_TAP ? "tap" : "switch",
			 c->name, msg);
	return fd;
}

static int nics_create(struct device_env *env, void **state, char *err, size_t errlen)
{
	const struct machine_config *cfg = env->machine;
	if (!cfg || !cfg->nnics) {
		*state = NULL;
		return 0;
	}
	struct nics *g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < cfg->nnics; i++) {
		const struct nic_config *c = &cfg->nics[i];
		g->cfg[i] = *c;
		if (c->has_mac)
			memcpy(g->mac[i], c->mac, 6);
		else
			nic_default_mac(cfg->name, i, g->mac[i]);
		int fd = open_backend(env, c, i, g->mac[i], err, errlen);
		if (fd < 0) {
			nics_destroy(g);
			return fd;
		}
		struct virtio_net_env venv = {.pci = env->pci,
					      .mem = env->mem,
					      .loop = env->loop,
					      .fd = fd,
					      .is_socket = c->backend == NIC_SWITCH};
		memcpy(venv.mac, g->mac[i], 6);
		int r = virtio_net_create(&venv, &g->dev[i]);
		if (r < 0) {
			close(fd);
			snprintf(err, errlen, "--nic %s: virtio-net: %s", c->name, strerror(-r));
			nics_destroy(g);
			return r;
		}
		g->n++;
	}
	int r = device_add_verb(env, "nic-info", "nic-info", nic_info, g, err, errlen);
	if (r < 0) {
		nics_destroy(g);
		return r;
	}
	*state = g;
	return 0;
}

static void nics_destroy_any(void *state)
{
	if (state)
		nics_destroy(state);
}

static void nics_reset_any(void *state)
{
	if (state)
		nics_reset(state);
}

static const struct device_ops virtio_net_device = {
    .name = "virtio-net",
    .create = nics_create,
    .reset = nics_reset_any,
    .destroy = nics_destroy_any,
};
DEVICE(virtio_net_device, DEVICE_LEVEL_PCI);
