/* The virtio-net header checker (see vnet_hdr.h). */
#include <errno.h>

#include "net/vnet_hdr.h"
#include "lib/endian.h"

void vnet_hdr_get(const uint8_t *p, struct vnet_hdr *h)
{
	h->flags = p[0];
	h->gso_type = p[1];
	h->hdr_len = get_le16(p + 2);
	h->gso_size = get_le16(p + 4);
	h->csum_start = get_le16(p + 6);
	h->csum_offset = get_le16(p + 8);
	h->num_buffers = get_le16(p + 10);
}

void vnet_hdr_put(uint8_t *p, const struct vnet_hdr *h)
{
	p[0] = h->flags;
	p[1] = h->gso_type;
	put_le16(p + 2, h->hdr_len);
	put_le16(p + 4, h->gso_size);
	put_le16(p + 6, h->csum_start);
	put_le16(p + 8, h->csum_offset);
	put_le16(p + 10, h->num_buffers);
}

enum vnet_bad vnet_hdr_check(const struct vnet_hdr *h, size_t frame_len,
			     const struct vnet_accept *acc)
{
	uint8_t gso = h->gso_type & ~VNET_GSO_ECN;
	if (frame_len < ETH_HDR_LEN)
		return VNET_BAD_RUNT;
	if (frame_len > (gso == VNET_GSO_NONE ? ETH_MAX_FRAME : ETH_MAX_GSO_FRAME))
		return VNET_BAD_OVERSIZE;
	if (h->flags & ~(VNET_HDR_F_NEEDS_CSUM | VNET_HDR_F_DATA_VALID))
		return VNET_BAD_FLAGS;
	if (h->flags & VNET_HDR_F_NEEDS_CSUM) {
		if (!acc->csum)
			return VNET_BAD_FLAGS;
		/* The 16-bit checksum field lies inside the frame, after the Ethernet header. */
		if (h->csum_start < ETH_HDR_LEN ||
		    (size_t)h->csum_start + h->csum_offset + 2 > frame_len)
			return VNET_BAD_CSUM;
	}
	if (gso == VNET_GSO_NONE) {
		if (h->gso_type & VNET_GSO_ECN)
			return VNET_BAD_GSO;
		return VNET_OK;
	}
	bool ok = (gso == VNET_GSO_TCPV4 && acc->tso4) || (gso == VNET_GSO_TCPV6 && acc->tso6) ||
		  (gso == VNET_GSO_UDP && acc->ufo);
	if (!ok || ((h->gso_type & VNET_GSO_ECN) && !acc->ecn))
		return VNET_BAD_GSO;
	/* Segmentation needs the checksum offload (Linux refuses it otherwise too), a segment size
	 * that makes progress, and no header longer than the frame. */
	if (!(h->flags & VNET_HDR_F_NEEDS_CSUM) || h->gso_size == 0 || h->hdr_len > frame_len)
		return VNET_BAD_GSO;
	return VNET_OK;
}

int vnet_hdr_retag(struct vnet_hdr *h, size_t frame_len, bool push)
{
	int d = push ? ETH_VLAN_TAG_LEN : -ETH_VLAN_TAG_LEN;
	int cs = h->csum_start + d, hl = h->hdr_len + d;
	int min_cs = ETH_HDR_LEN + (push ? ETH_VLAN_TAG_LEN : 0); /* after the new headers */
	size_t max = h->gso_type == VNET_GSO_NONE ? ETH_MAX_FRAME : ETH_MAX_GSO_FRAME;
	if (frame_len < ETH_HDR_LEN + (push ? 0 : ETH_VLAN_TAG_LEN) || frame_len + (size_t)d > max)
		return -ERANGE;
	if ((h->flags & VNET_HDR_F_NEEDS_CSUM) && (cs < min_cs || cs > 0xFFFF))
		return -ERANGE;
	if (h->gso_type != VNET_GSO_NONE && (hl < 0 || hl > 0xFFFF))
		return -ERANGE;
	if (h->flags & VNET_HDR_F_NEEDS_CSUM)
		h->csum_start = (uint16_t)cs;
	if (h->gso_type != VNET_GSO_NONE)
		h->hdr_len = (uint16_t)hl;
	return 0;
}

const char *vnet_bad_name(enum vnet_bad why)
{
	switch (why) {
	case VNET_OK:
		return "ok";
	case VNET_BAD_RUNT:
		return "runt";
	case VNET_BAD_OVERSIZE:
		return "oversize";
	case VNET_BAD_FLAGS:
		return "bad header flags";
	case VNET_BAD_CSUM:
		return "bad checksum offsets";
	case VNET_BAD_GSO:
		return "bad GSO fields";
	}
	return "?";
}

void vnet_complete_csum(struct vnet_hdr *h, uint8_t *frame, size_t len)
{
	if (!(h->flags & VNET_HDR_F_NEEDS_CSUM))
		return;
	/* The field holds the pseudo-header sum already: fold in the rest (RFC 1071). */
	uint32_t sum = 0;
	size_t i = h->csum_start;
	for (; i + 1 < len; i += 2)
		sum += (uint32_t)frame[i] << 8 | frame[i + 1];
	if (i < len)
		sum += (uint32_t)frame[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	uint16_t c = (uint16_t)~sum;
	uint8_t *f = frame + h->csum_start + h->csum_offset;
	f[0] = c >> 8;
	f[1] = c & 0xFF;
	h->flags &= ~VNET_HDR_F_NEEDS_CSUM;
}
