/* The virtio-net header (virtio 1.2, 5.1.6) that travels in front of every frame: between a guest
 * and its NIC, on the switch's port sockets, and on TAP devices opened with IFF_VNET_HDR
 * (TUNSETVNETHDRSZ 12).  One checker for all of them: a frame whose header or length a guest or a
 * peer got wrong is dropped and counted by whoever sees it first, never passed on.
 */
#ifndef MINIVMM_NET_VNET_HDR_H
#define MINIVMM_NET_VNET_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VNET_HDR_LEN 12 /* virtio_net_hdr_v1: the modern header, num_buffers included */

#define VNET_HDR_F_NEEDS_CSUM 1
#define VNET_HDR_F_DATA_VALID 2

#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP 3
#define VNET_GSO_TCPV6 4
#define VNET_GSO_ECN 0x80

#define ETH_HDR_LEN 14
#define ETH_VLAN_TAG_LEN 4
#define ETH_MTU 1500
/* Longest frame without segmentation offload: MTU + Ethernet header + one 802.1Q tag. */
#define ETH_MAX_FRAME (ETH_MTU + ETH_HDR_LEN + ETH_VLAN_TAG_LEN)
/* Longest segmentation-offload frame (a 64 KiB IP packet and its Ethernet header and tag). */
#define ETH_MAX_GSO_FRAME (65535 + ETH_HDR_LEN + ETH_VLAN_TAG_LEN)
/* Longest message on a port socket or a TAP: header + frame. */
#define VNET_MAX_MSG (VNET_HDR_LEN + ETH_MAX_GSO_FRAME)

struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* Why a frame is refused. */
enum vnet_bad {
	VNET_OK = 0,
	VNET_BAD_RUNT,	   /* shorter than an Ethernet header */
	VNET_BAD_OVERSIZE, /* longer than ETH_MAX_FRAME (ETH_MAX_GSO_FRAME with GSO) */
	VNET_BAD_FLAGS,	   /* unknown flags, or a checksum offload the receiver did not accept */
	VNET_BAD_CSUM,	   /* csum_start/csum_offset outside the frame */
	VNET_BAD_GSO,	   /* unknown type, not accepted, no NEEDS_CSUM, gso_size 0 or too big */
};

/* What the receiving side accepts (negotiated features, or all for a port socket). */
struct vnet_accept {
	bool csum; /* NEEDS_CSUM */
	bool tso4, tso6, ecn, ufo;
};

void vnet_hdr_get(const uint8_t *p, struct vnet_hdr *h); /* from 12 little-endian bytes */
void vnet_hdr_put(uint8_t *p, const struct vnet_hdr *h);
/* Check a header and the length of the frame that follows it. */
enum vnet_bad vnet_hdr_check(const struct vnet_hdr *h, size_t frame_len,
			     const struct vnet_accept *acc);
const char *vnet_bad_name(enum vnet_bad why);
/* A switch pushes (push) or strips an 802.1Q tag on a checked frame of frame_len bytes: move the
 * offsets counted from the frame's start by the tag's 4 bytes.  -ERANGE (h unchanged) when the
 * result would fail vnet_hdr_check: the checksum inside the Ethernet header or tag, a field past
 * 16 bits, the frame too long. */
int vnet_hdr_retag(struct vnet_hdr *h, size_t frame_len, bool push);
/* Fill in the checksum a NEEDS_CSUM frame left to the receiver (the header was checked), for a
 * receiver that cannot take the offload; clears NEEDS_CSUM. */
void vnet_complete_csum(struct vnet_hdr *h, uint8_t *frame, size_t len);

#endif
