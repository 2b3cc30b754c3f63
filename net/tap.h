/* Host TAP devices (/dev/net/tun, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR): every frame read or
 * written is a 12-byte virtio-net header (net/vnet_hdr.h) and the Ethernet frame, so checksum
 * and segmentation offloads pass through between a guest and the host stack.
 */
#ifndef MINIVMM_NET_TAP_H
#define MINIVMM_NET_TAP_H

#include <stddef.h>

#define TAP_NAME_MAX 15 /* IFNAMSIZ - 1 */

/* Open (creating it when missing and permitted) the TAP device `name`, non-blocking, with the
 * offloads turned on and the link set up where permitted.  Returns the fd or -errno with a
 * one-line message naming the device. */
int tap_open(const char *name);

#endif
