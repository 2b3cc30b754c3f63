/* virtio-net control commands and the receive filter (see net_ctrl.h). */
#include <string.h>

#include "devices/virtio/net/net_ctrl.h"
#include "memory/sg_list.h"
#include "lib/endian.h"

void net_rx_filter_reset(struct net_rx_filter *f, const uint8_t mac[6])
{
	memset(f, 0, sizeof(*f));
	memcpy(f->mac, mac, 6);
	f->promisc = true;
}

static bool in_table(const uint8_t (*t)[6], unsigned n, const uint8_t mac[6])
{
	for (unsigned i = 0; i < n; i++)
		if (!memcmp(t[i], mac, 6))
			return true;
	return false;
}

bool net_rx_filter_accept(const struct net_rx_filter *f, const uint8_t dst[6])
{
	static const uint8_t bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	if (f->promisc)
		return true;
	if (dst[0] & 1) {
		if (!memcmp(dst, bcast, 6) || f->allmulti || f->multi_overflow)
			return true;
		return in_table(f->multi, f->n_multi, dst);
	}
	if (!memcmp(dst, f->mac, 6) || f->uni_overflow)
		return true;
	return in_table(f->uni, f->n_uni, dst);
}

/* One table of MAC_TABLE_SET at byte *off of out: its entries into t (when they fit), *n and
 * *overflow set; false when the data is too short for its count or an address is of the wrong
 * kind. */
static bool read_table(const struct sg_list *out, uint64_t *off, bool multicast, uint8_t (*t)[6],
		       unsigned *n, bool *overflow)
{
	uint8_t le[4];
	if (sg_list_to_buf(out, *off, le, 4) != 4)
		return false;
	uint64_t count = get_le32(le);
	*off += 4;
	if (count * 6 > out->bytes - *off) /* count < 2^32: no overflow in 64 bits */
		return false;
	*overflow = count > NET_MAC_TABLE_MAX;
	*n = *overflow ? 0 : (unsigned)count;
	for (unsigned i = 0; i < *n; i++) {
		sg_list_to_buf(out, *off + 6ULL * i, t[i], 6);
		if (!!(t[i][0] & 1) != multicast)
			return false;
	}
	*off += count * 6;
	return true;
}

static uint8_t mac_table_set(struct net_rx_filter *f, const struct sg_list *out)
{
	struct net_rx_filter nf = *f; /* all or nothing */
	uint64_t off = 2;
	if (!read_table(out, &off, false, nf.uni, &nf.n_uni, &nf.uni_overflow) ||
	    !read_table(out, &off, true, nf.multi, &nf.n_multi, &nf.multi_overflow) ||
	    off != out->bytes)
		return VIRTIO_NET_ERR;
	*f = nf;
	return VIRTIO_NET_OK;
}

uint8_t net_ctrl_run(struct net_rx_filter *f, const struct sg_list *out, bool announce,
		     unsigned max_pairs, struct net_ctrl_effect *eff)
{
	uint8_t hdr[2], data[6];
	static const uint8_t zero[6];
	memset(eff, 0, sizeof(*eff));
	if (sg_list_to_buf(out, 0, hdr, 2) != 2)
		return VIRTIO_NET_ERR;
	uint64_t dlen = out->bytes - 2;
	switch (hdr[0] << 8 | hdr[1]) {
	case VIRTIO_NET_CTRL_RX << 8 | VIRTIO_NET_CTRL_RX_PROMISC:
	case VIRTIO_NET_CTRL_RX << 8 | VIRTIO_NET_CTRL_RX_ALLMULTI:
		if (dlen != 1 || sg_list_to_buf(out, 2, data, 1) != 1 || data[0] > 1)
			return VIRTIO_NET_ERR;
		if (hdr[1] == VIRTIO_NET_CTRL_RX_PROMISC)
			f->promisc = data[0];
		else
			f->allmulti = data[0];
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC << 8 | VIRTIO_NET_CTRL_MAC_TABLE_SET:
		return mac_table_set(f, out);
	case VIRTIO_NET_CTRL_MAC << 8 | VIRTIO_NET_CTRL_MAC_ADDR_SET:
		if (dlen != 6 || sg_list_to_buf(out, 2, data, 6) != 6 || (data[0] & 1) ||
		    !memcmp(data, zero, 6))
			return VIRTIO_NET_ERR;
		eff->mac_changed = memcmp(f->mac, data, 6) != 0;
		memcpy(f->mac, data, 6);
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_ANNOUNCE << 8 | VIRTIO_NET_CTRL_ANNOUNCE_ACK:
		if (!announce || dlen != 0)
			return VIRTIO_NET_ERR;
		eff->announce_ack = true;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MQ << 8 | VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: {
		if (!max_pairs || dlen != 2 || sg_list_to_buf(out, 2, data, 2) != 2)
			return VIRTIO_NET_ERR;
		unsigned pairs = get_le16(data);
		if (pairs < 1 || pairs > max_pairs)
			return VIRTIO_NET_ERR;
		eff->pairs = pairs;
		return VIRTIO_NET_OK;
	}
	}
	return VIRTIO_NET_ERR;
}
