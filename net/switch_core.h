/* The forwarding logic of the virtual switch, without sockets or time sources (unit-tested):
 * ports, a learning MAC table with aging, flooding of broadcast, multicast and unknown unicast,
 * per-port counters, 802.1Q VLANs per port and a limit of learned MACs per port.
 *
 * VLANs (only on a --vlan-aware switch; otherwise tags pass untouched and all ports share one
 * domain): an access port belongs to one VLAN (1..4094): frames enter untagged (a tagged one is
 * dropped) and leave untagged.  A trunk port (the uplink) carries every VLAN: VLAN 1 untagged
 * (native), the others tagged.  Frames never cross VLANs; the MAC table is keyed by (MAC, VLAN).
 *
 * A frame from a source MAC the port may not learn (multicast source, or the port's limit
 * reached) is dropped and counted.  Not thread-safe: the switch process owns it on its loop.
 */
#ifndef MINIVMM_NET_SWITCH_CORE_H
#define MINIVMM_NET_SWITCH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWITCH_MAX_PORTS 64
#define SWITCH_FDB_MAX 4096
#define SWITCH_AGING_NS (300ULL * 1000000000) /* 802.1D's default */
#define SWITCH_DEFAULT_MAC_LIMIT 64
#define SWITCH_VLAN_NATIVE 1
#define SWITCH_VLAN_MAX 4094

struct switch_counters {
	uint64_t rx_frames, rx_bytes; /* into the switch from the port */
	uint64_t tx_frames, tx_bytes; /* out of the switch to the port */
	uint64_t rx_drops;	      /* malformed, wrong tag, or over the MAC limit */
	uint64_t tx_drops;	      /* the port did not take the frame (not reading, gone) */
};

struct switch_port {
	bool used, trunk;
	uint16_t vlan;	    /* access VLAN (vlan-aware switches) */
	unsigned mac_limit; /* learned MACs at most */
	unsigned nmacs;	    /* learned now */
	char name[64];
	uint8_t mac[6]; /* what the port announced at join (zero: none) */
	struct switch_counters c;
};

struct switch_fdb_entry {
	uint8_t mac[6];
	uint16_t vlan; /* 0 on a switch that is not vlan-aware */
	int port;      /* -1: free */
	uint64_t seen_ns;
	int next; /* hash chain */
};

struct switch_core {
	bool vlan_aware;
	uint64_t aging_ns;
	struct switch_port ports[SWITCH_MAX_PORTS];
	struct switch_fdb_entry fdb[SWITCH_FDB_MAX];
	int bucket[SWITCH_FDB_MAX];
	int free_head;
	unsigned nfdb;
	uint64_t flooded; /* frames flooded for want of a learned destination (unicast only) */
};

/* What to do with the frame on one output port. */
enum switch_tag_op {
	SWITCH_TAG_KEEP,  /* as it came */
	SWITCH_TAG_PUSH,  /* add an 802.1Q tag with `vlan` */
	SWITCH_TAG_STRIP, /* remove the tag it came with */
};

struct switch_decision {
	unsigned nout;
	uint8_t out[SWITCH_MAX_PORTS];
	enum switch_tag_op op[SWITCH_MAX_PORTS];
	uint16_t vlan;
	bool flooded;
};

void switch_core_init(struct switch_core *s, bool vlan_aware);
/* Add a port: -ENOSPC when all are used, -EINVAL for a VLAN outside 1..4094 (or a VLAN on a
 * switch that is not vlan-aware).  vlan 0: the native VLAN. */
int switch_port_add(struct switch_core *s, const char *name, const uint8_t mac[6], uint16_t vlan,
		    bool trunk, unsigned mac_limit);
/* Free a port and forget what it learned. */
void switch_port_remove(struct switch_core *s, unsigned port);

/* Decide for one frame from `in` (length len, the Ethernet frame without vnet header): learns
 * its source, fills d.  Returns 0, or -EINVAL when the frame is dropped (counted in rx_drops) or
 * `in` is not a port in use (nothing learned or counted). */
int switch_forward(struct switch_core *s, unsigned in, const uint8_t *frame, size_t len,
		   uint64_t now_ns, struct switch_decision *d);
/* Forget entries not seen for aging_ns. */
void switch_age(struct switch_core *s, uint64_t now_ns);
/* Where (mac, vlan) was learned: the port, or -1. */
int switch_lookup(struct switch_core *s, const uint8_t mac[6], uint16_t vlan, uint64_t now_ns);

#endif
