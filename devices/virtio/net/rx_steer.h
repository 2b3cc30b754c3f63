/* Which receive queue a frame goes to when the driver uses several queue pairs
 * (VIRTIO_NET_F_MQ without RSS: the device steers on its own, virtio 1.2 5.1.6.5.5): a hash of
 * the flow (IPv4/IPv6 addresses and TCP/UDP ports), so one flow keeps its queue and its order,
 * and different flows spread over the queues.  Frames that are not IP, fragments and frames cut
 * short go to the first queue.  Frames come from the peer: every length is checked.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_NET_RX_STEER_H
#define MINIVMM_DEVICES_VIRTIO_NET_RX_STEER_H

#include <stddef.h>
#include <stdint.h>

/* The receive queue pair (0..pairs-1) of the Ethernet frame (len bytes, no virtio-net header). */
unsigned net_rx_steer(const uint8_t *frame, size_t len, unsigned pairs);

#endif
