/* The VM's NICs: one virtio-net PCI function per --nic, in command-line order (Linux
 * virtio_net, eth0, eth1, ...), each on a switch port or a host TAP (nic_config.h).
 *
 * Control verbs: `nic-info` lists each NIC's MAC (as the guest set it), backend, receive mode
 * and counters (frames and bytes each way, drops, malformed frames the guest sent, frames the
 * guest's filter refused, queue pairs offered and in use and each pair's frames); `nic-announce`
 * asks each NIC's driver to announce its addresses (gratuitous ARP), e.g. after the VM moved to
 * another switch.
 *
 * A switch that goes away (killed, stopped, or it dropped the port) takes the NIC's link down:
 * the guest sees it, transmits are dropped, the VM runs on.  Once a second the loop tries to
 * join the switch again under the same port name; when a (restarted) switch answers, the link
 * comes back up.  The rejoin never waits on the switch: the request is sent and the reply is one
 * more event on the loop, so a switch that is alive but silent (stopped, wedged) costs the VM
 * nothing; an attempt unanswered for REJOIN_GIVE_UP_TICKS seconds is dropped and a new one
 * made.  A TAP that goes away stays down,
 * and so does a switch NIC of a VM under --chroot (lib/jail.h: the switch's socket is outside
 * the jail).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/virtio/net/nic_config.h"
#include "devices/virtio/net/virtio_net.h"
#include "lib/event_loop.h"
#include "lib/jail.h"
#include "lib/log.h"
#include "net/switch_proto.h"
#include "net/tap.h"
#include "devices/machine_config.h"
#include "lib/error.h"

struct nics;

/* A switch NIC's rejoin under way. */
struct rejoin {
	struct nics *g;
	unsigned index;
	struct switch_joining join; /* join.fd >= 0: waiting for the switch's reply */
	struct event_source *src;   /* join.fd's EPOLLIN */
	unsigned ticks;		    /* seconds the reply has been waited for */
};

struct nics {
	unsigned n;
	struct virtio_net *dev[NIC_MAX];
	struct nic_config cfg[NIC_MAX];
	uint8_t mac[NIC_MAX][6];
	char port[NIC_MAX][96];	     /* the switch port's name, VM.nicN */
	struct event_source *rejoin; /* the once-a-second timer, when a NIC is on a switch */
	bool jail_said[NIC_MAX];     /* told that --chroot keeps it from rejoining */
	struct rejoin rj[NIC_MAX];
	struct event_loop *rejoin_loop;
};

#define REJOIN_PERIOD_NS 1000000000ull
#define REJOIN_GIVE_UP_TICKS 5

static void rejoin_stop(struct rejoin *r)
{
	event_source_remove(r->src);
	r->src = NULL;
	switch_join_abandon(&r->join);
	r->ticks = 0;
}

static void nics_destroy(void *state)
{
	struct nics *g = state;
	event_source_remove(g->rejoin);
	for (unsigned i = 0; i < NIC_MAX; i++)
		rejoin_stop(&g->rj[i]);
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

static int nic_info(void *opaque, struct json_object *args, struct json_object *result)
{
	struct nics *g = opaque;
	(void)args;
	struct json_object *arr = json_object_new_array();
	for (unsigned i = 0; i < g->n; i++) {
		struct virtio_net_stats s;
		virtio_net_get_stats(g->dev[i], &s);
		struct json_object *o = json_object_new_object();
		char m[18];
		switch_mac_format(s.mac, m);
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
		ADD(rx_filtered);
#undef ADD
		json_object_object_add(o, "promisc", json_object_new_boolean(s.promisc));
		/* Queue pairs offered and in use, and each pair's frames (multi-queue). */
		json_object_object_add(o, "max_pairs", json_object_new_int((int)s.max_pairs));
		json_object_object_add(o, "pairs", json_object_new_int((int)s.pairs));
		struct json_object *rxq = json_object_new_array(), *txq = json_object_new_array();
		for (unsigned q = 0; q < s.max_pairs; q++) {
			json_object_array_add(rxq,
					      json_object_new_int64((int64_t)s.rx_queue_frames[q]));
			json_object_array_add(txq,
					      json_object_new_int64((int64_t)s.tx_queue_frames[q]));
		}
		json_object_object_add(o, "rx_queue_frames", rxq);
		json_object_object_add(o, "tx_queue_frames", txq);
		json_object_array_add(arr, o);
	}
	json_object_object_add(result, "nics", arr);
	return 0;
}

static int nic_announce(void *opaque, struct json_object *args, struct json_object *result)
{
	struct nics *g = opaque;
	(void)args;
	unsigned asked = 0;
	for (unsigned i = 0; i < g->n; i++)
		if (virtio_net_announce(g->dev[i]) == 0)
			asked++;
	if (g->n && !asked)
		return error_set(-ENOTSUP, "nic-announce: no NIC's driver takes announcements "
					   "(GUEST_ANNOUNCE not negotiated, or no driver yet)");
	json_object_object_add(result, "announced", json_object_new_int((int)asked));
	return 0;
}

static int open_backend(const struct nic_config *c, const char *port, const uint8_t mac[6])
{
	int fd;
	if (c->backend == NIC_TAP)
		fd = tap_open(c->name);
	else
		fd = switch_join(c->switch_path, port, mac, c->vlan);
	if (fd < 0)
		error_wrap(fd, "--nic %s=%s", c->backend == NIC_TAP ? "tap" : "switch", c->name);
	return fd;
}

/* The switch answered a rejoin (or closed the connection). */
static void rejoin_reply(void *opaque, uint32_t events)
{
	struct rejoin *r = opaque;
	struct nics *g = r->g;
	unsigned i = r->index;
	(void)events;
	int fd = switch_join_finish(&r->join);
	if (fd == -EAGAIN)
		return;
	rejoin_stop(r);
	if (fd < 0)
		return; /* refused or closed: next second again */
	if (virtio_net_reattach(g->dev[i], fd) < 0) {
		close(fd);
		return;
	}
	log_warn("virtio-net", "eth%u: joined switch %s again (port %s): link up", i,
		 g->cfg[i].name, g->port[i]);
}

/* The timer: every switch NIC whose link is down and that waits for no reply sends a new join
 * request; one that waited too long gives up its attempt. */
static void rejoin_tick(void *opaque, uint32_t events)
{
	struct nics *g = opaque;
	(void)events;
	for (unsigned i = 0; i < g->n; i++) {
		struct rejoin *r = &g->rj[i];
		if (g->cfg[i].backend != NIC_SWITCH || virtio_net_backend_up(g->dev[i]))
			continue;
		if (jail_chrooted()) {
			/* The switch's socket is outside the jail: say so once, not every second.
			 */
			if (!g->jail_said[i])
				log_warn("virtio-net",
					 "eth%u: cannot join switch %s again under --chroot (its "
					 "socket is outside the jail): link stays down",
					 i, g->cfg[i].name);
			g->jail_said[i] = true;
			continue;
		}
		if (r->join.fd >= 0) {
			if (++r->ticks < REJOIN_GIVE_UP_TICKS)
				continue;
			log_warn("virtio-net",
				 "eth%u: switch %s did not answer in %u s: trying again", i,
				 g->cfg[i].name, REJOIN_GIVE_UP_TICKS);
			rejoin_stop(r);
		}
		if (switch_join_begin(&r->join, g->cfg[i].switch_path, g->port[i], g->mac[i],
				      g->cfg[i].vlan) < 0)
			continue; /* no switch there yet: next second */
		if (event_loop_add_fd(g->rejoin_loop, r->join.fd, EPOLLIN, rejoin_reply, r,
				      &r->src) < 0)
			switch_join_abandon(&r->join);
	}
}

static int nics_create(struct device_env *env, void **state)
{
	const struct machine_config *cfg = env->machine;
	if (!cfg || !cfg->nnics) {
		*state = NULL;
		return 0;
	}
	struct nics *g = calloc(1, sizeof(*g));
	if (!g)
		return error_set(-ENOMEM, "virtio-net: out of memory");
	g->rejoin_loop = env->loop;
	for (unsigned i = 0; i < NIC_MAX; i++)
		g->rj[i] = (struct rejoin){.g = g, .index = i, .join.fd = -1};
	for (unsigned i = 0; i < cfg->nnics; i++) {
		const struct nic_config *c = &cfg->nics[i];
		g->cfg[i] = *c;
		if (c->has_mac)
			memcpy(g->mac[i], c->mac, 6);
		else
			nic_default_mac(cfg->name, i, g->mac[i]);
		snprintf(g->port[i], sizeof(g->port[i]), "%s.nic%u", cfg->name, i);
		int fd = open_backend(c, g->port[i], g->mac[i]);
		if (fd < 0) {
			nics_destroy(g);
			return fd;
		}
		struct virtio_net_env venv = {.pci = env->pci,
					      .mem = env->mem,
					      .loop = env->loop,
					      .fd = fd,
					      .is_socket = c->backend == NIC_SWITCH,
					      .queues = c->queues};
		memcpy(venv.mac, g->mac[i], 6);
		int r = virtio_net_create(&venv, &g->dev[i]);
		if (r < 0) {
			close(fd);
			error_set(r, "--nic %s: virtio-net: %s", c->name, strerror(-r));
			nics_destroy(g);
			return r;
		}
		g->n++;
	}
	int r = 0;
	for (unsigned i = 0; i < g->n && !g->rejoin && r == 0; i++)
		if (g->cfg[i].backend == NIC_SWITCH)
			r = event_loop_add_timer(env->loop, REJOIN_PERIOD_NS, REJOIN_PERIOD_NS,
						 rejoin_tick, g, &g->rejoin);
	if (r < 0) {
		error_set(r, "virtio-net: rejoin timer: %s", strerror(-r));
		nics_destroy(g);
		return r;
	}
	r = device_add_verb(env, "nic-info", "nic-info", nic_info, g);
	if (r == 0)
		r = device_add_verb(env, "nic-announce", "nic-announce", nic_announce, g);
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
