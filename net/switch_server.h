/* The switch process: a switch_core (net/switch_core.h) behind the socket protocol of
 * net/switch_proto.h, with an optional TAP uplink (net/tap.h), all on one event loop.  A VM's
 * crash closes its port, never the switch.
 */
#ifndef MINIVMM_NET_SWITCH_SERVER_H
#define MINIVMM_NET_SWITCH_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct switch_server;

struct switch_options {
	const char *name;   /* for info */
	const char *path;   /* the socket to listen on (a stale one is replaced) */
	const char *uplink; /* TAP name, NULL: none */
	bool vlan_aware;    /* 802.1Q: ports join with a VLAN; the uplink is a trunk */
	unsigned mac_limit; /* learned MACs per VM port, 0: SWITCH_DEFAULT_MAC_LIMIT */
	unsigned aging_s;   /* 0: SWITCH_AGING_NS */
};

/* Open the uplink and the socket: -errno with a one-line message (-EADDRINUSE when a live
 * switch answers on the path). */
int switch_server_create(const struct switch_options *o, struct switch_server **out);
/* Serve until a stop request; returns 0 or -errno. */
int switch_server_run(struct switch_server *s);
void switch_server_destroy(struct switch_server *s); /* unlinks the socket */

#endif
