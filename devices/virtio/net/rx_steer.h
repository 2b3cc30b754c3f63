/* Which receive queue a frame goes to when the driver uses several queue pairs
 * (VIRTIO_NET_F_MQ without RSS: the device steers on its own, virtio 1.2 5.1.6.5.5).  Linux's
 * driver tells the device nothing about steering; it picks a transmit queue per CPU (XPS).  So,
 * as a multi-queue TAP does for QEMU, a flow is received on the pair it last transmitted on: its
 * replies reach the CPU that sends.  A flow the guest has not sent on goes by a hash of the flow
 * (IPv4/IPv6 addresses and TCP/UDP ports), so one flow keeps its queue and its order, and
 * different flows spread over the queues.  The hash is symmetric (both directions of a flow hash
 * alike).  Frames that are not IP and frames cut short go to the first queue.  Frames come from
 * the peer and from the guest: every length is checked.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_NET_RX_STEER_H
#define MINIVMM_DEVICES_VIRTIO_NET_RX_STEER_H

#include <stddef.h>
#include <stdint.h>

#define NET_STEER_FLOWS 256 /* flows remembered; a newer flow of the same slot replaces */

/* The transmit pair each recent flow used (hash 0: a free slot). */
struct net_steer {
	uint32_t hash[NET_STEER_FLOWS];
	uint8_t pair[NET_STEER_FLOWS];
};

/* Forget every flow (a device reset). */
void net_steer_reset(struct net_steer *s);
/* The guest transmitted the Ethernet frame (len bytes, no virtio-net header) on pair `pair`. */
void net_steer_tx(struct net_steer *s, const uint8_t *frame, size_t len, unsigned pair);
/* The receive queue pair (0..pairs-1) of the Ethernet frame (len bytes, no virtio-net header). */
unsigned net_rx_steer(const struct net_steer *s, const uint8_t *frame, size_t len, unsigned pairs);

#endif
