/* virtio-net (virtio 1.2, 5.1) on the virtio-pci transport: one receive and one transmit queue
 * over a host file descriptor that carries frames with a 12-byte virtio-net header in front of
 * each (a switch port socket, net/switch_proto.h, or a TAP with IFF_VNET_HDR, net/tap.h).
 *
 * Offered: MAC, STATUS (link up), MTU 1500, MRG_RXBUF, the checksum offloads both ways (CSUM,
 * GUEST_CSUM) and TSO4/TSO6/ECN both ways (HOST_*, GUEST_*): headers pass through unchanged, so
 * the host or the other guest does the work (or nobody, between two guests).  Every transmitted
 * header and length is checked (net/vnet_hdr.h) against what was negotiated: a runt, an
 * oversize frame, unknown flags, checksum offsets outside the frame or bad GSO fields drop the
 * frame and count it, and the queue goes on.  A received frame the guest did not negotiate the
 * offload for is fixed up (checksum completed in software) or, for GSO, dropped and counted.
 *
 * Control queue (net_ctrl.h): receive modes (promiscuous by default, as after reset), a table
 * of extra unicast and of multicast addresses, the MAC address (the config space follows it; a
 * device reset restores the one it was created with), and announce: virtio_net_announce asks the
 * driver to announce itself (gratuitous ARP), the driver's ACK clears the status bit.  With
 * CTRL_RX negotiated, frames the filter refuses are dropped and counted (rx_filtered).
 *
 * Multi-queue (VIRTIO_NET_F_MQ, offered with queues > 1): pair i is receive queue 2i and
 * transmit queue 2i+1, the control queue comes last; each queue has its own ioeventfd and MSI-X
 * vector (the transport's).  The driver picks the pairs in use with the control queue's MQ
 * command (1 after reset).  All pairs share the one host fd: the driver transmits on any pair,
 * received frames are steered over the pairs in use: a flow to the pair it last sent on, else by
 * a hash of the flow (rx_steer.h).
 *
 * Back-pressure: the device never waits.  Without receive buffers it stops reading the fd (a
 * switch then drops for this port, a TAP queues then drops); a transmit the fd cannot take yet
 * waits for EPOLLOUT with the chain held, and the guest's queue with it.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_NET_VIRTIO_NET_H
#define MINIVMM_DEVICES_VIRTIO_NET_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

struct pci_bus;
struct guest_memory;
struct event_loop;
struct virtio_net;
struct virtio_pci;

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2
#define VIRTIO_NET_CONFIG_LEN 12 /* mac, status, max_virtqueue_pairs, mtu */
#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RX_ELEMS 64 /* receive buffers one frame may take (mergeable) */
#define VIRTIO_NET_MAX_PAIRS 8 /* receive/transmit queue pairs of one NIC */

struct virtio_net_env {
	struct pci_bus *pci;
	const struct guest_memory *mem;
	struct event_loop *loop; /* required: the fd is a source on it */
	int fd;			 /* owned from here on (closed by destroy) */
	bool is_socket;		 /* a switch port (send/recv) rather than a TAP (read/write) */
	uint8_t mac[6];
	unsigned slot;	 /* 0: the first free PCI slot */
	unsigned queues; /* queue pairs, 1..VIRTIO_NET_MAX_PAIRS (0: 1) */
};

struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes, rx_drops; /* to the guest */
	uint64_t tx_frames, tx_bytes, tx_drops; /* from the guest */
	uint64_t tx_malformed;			/* part of tx_drops: refused headers/lengths */
	bool backend_up;
	uint64_t rx_filtered; /* part of rx_drops: not for this NIC (CTRL_RX filter) */
	uint8_t mac[6];	      /* the address now (the guest may set it) */
	bool promisc;
	unsigned max_pairs, pairs; /* queue pairs offered, in use */
	uint64_t rx_queue_frames[VIRTIO_NET_MAX_PAIRS], tx_queue_frames[VIRTIO_NET_MAX_PAIRS];
};

int virtio_net_create(const struct virtio_net_env *env, struct virtio_net **out);
void virtio_net_destroy(struct virtio_net *n);
void virtio_net_reset(struct virtio_net *n); /* machine reset */
void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s);
/* Loop thread: after the host side went away (link down), take fd (owned from here on) as the
 * new one; the link comes up again.  -EBUSY while the old one is still up (fd not taken). */
int virtio_net_reattach(struct virtio_net *n, int fd);
bool virtio_net_backend_up(struct virtio_net *n);
struct virtio_pci *virtio_net_transport(struct virtio_net *n); /* for tests */
/* Ask the driver to announce itself (VIRTIO_NET_S_ANNOUNCE and a config interrupt): -ENOTSUP
 * when it did not negotiate GUEST_ANNOUNCE or is not running. */
int virtio_net_announce(struct virtio_net *n);

#endif
