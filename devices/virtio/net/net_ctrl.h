/* The virtio-net control queue's commands (virtio 1.2, 5.1.6.5) and the receive filter they set,
 * without a transport (unit-tested through tests/device/test_virtio_net.c):
 *
 *   RX PROMISC / ALLMULTI (one byte, 0 or 1)   receive modes
 *   MAC TABLE_SET (le32 n, n MACs, le32 m, m MACs)   extra unicast and the multicast addresses
 *   MAC ADDR_SET (6 bytes)                     the NIC's own address (a unicast, not zero)
 *   ANNOUNCE ACK (no data)                     the driver announced itself (clears the status bit)
 *   MQ VQ_PAIRS_SET (le16 pairs)               queue pairs in use, 1..max_virtqueue_pairs
 *
 * Every length and count comes from the guest: a command whose data is shorter or longer than its
 * counts say, an address of the wrong kind, an unknown class or command gets VIRTIO_NET_ERR and
 * changes nothing.  A table longer than NET_MAC_TABLE_MAX accepts every address of that kind
 * (as QEMU does), so a guest in many multicast groups still hears them.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_NET_NET_CTRL_H
#define MINIVMM_DEVICES_VIRTIO_NET_NET_CTRL_H

#include <stdbool.h>
#include <stdint.h>

struct sg_list;

#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1
#define NET_MAC_TABLE_MAX 64

struct net_rx_filter {
	uint8_t mac[6]; /* the NIC's own address */
	bool promisc, allmulti;
	bool uni_overflow, multi_overflow; /* the driver gave more than the table holds */
	unsigned n_uni, n_multi;
	uint8_t uni[NET_MAC_TABLE_MAX][6], multi[NET_MAC_TABLE_MAX][6];
};

/* What reset leaves: promiscuous (as QEMU: a driver that never sets a mode hears everything),
 * empty tables, the address `mac`. */
void net_rx_filter_reset(struct net_rx_filter *f, const uint8_t mac[6]);
/* Does a frame to `dst` pass? */
bool net_rx_filter_accept(const struct net_rx_filter *f, const uint8_t dst[6]);

/* What a command did beyond the filter. */
struct net_ctrl_effect {
	bool mac_changed;  /* f->mac is new */
	bool announce_ack; /* the driver acknowledged an announce */
	unsigned pairs;	   /* MQ VQ_PAIRS_SET: the queue pairs now in use (0: not set) */
};

/* Run the command in `out` (the chain's device-readable part: class, command, data): returns
 * VIRTIO_NET_OK or VIRTIO_NET_ERR.  `announce` says whether ANNOUNCE ACK was negotiated,
 * `max_pairs` the device's queue pairs when MQ was (0: it was not). */
uint8_t net_ctrl_run(struct net_rx_filter *f, const struct sg_list *out, bool announce,
		     unsigned max_pairs, struct net_ctrl_effect *eff);

#endif
