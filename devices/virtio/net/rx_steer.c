/* Receive steering over queue pairs (see rx_steer.h). */
#include "devices/virtio/net/rx_steer.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Hash of the flow: 0 for what is not a whole IP header (+ports for TCP/UDP). */
static uint32_t flow_hash(const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN)
		return 0;
	unsigned type = (unsigned)f[12] << 8 | f[13];
	const uint8_t *ip = f + ETH_HLEN;
	size_t left = len - ETH_HLEN;
	size_t l4;
	unsigned proto;
	uint32_t h = 2166136261u;
	if (type == ETH_P_IP) {
		if (left < 20 || (ip[0] >> 4) != 4)
			return 0;
		l4 = (size_t)(ip[0] & 15) * 4;
		if (l4 < 20 || l4 > left)
			return 0;
		h = fnv(h, ip + 12, 8); /* source and destination */
		proto = ip[9];
		if ((ip[6] & 0x3F) || ip[7]) /* a fragment: later ones have no ports */
			return h;
	} else if (type == ETH_P_IPV6) {
		if (left < 40 || (ip[0] >> 4) != 6)
			return 0;
		l4 = 40;
		h = fnv(h, ip + 8, 32);
		proto = ip[6]; /* extension headers: addresses only */
	} else {
		return 0;
	}
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && left - l4 >= 4)
		h = fnv(h, ip + l4, 4);
	return h;
}

unsigned net_rx_steer(const uint8_t *frame, size_t len, unsigned pairs)
{
	if (pairs <= 1)
		return 0;
	/* FNV's low bits are the parity of the bytes' low bits, and Linux picks even ports for
	 * connect(): mix every bit down (murmur3's finaliser) before taking the remainder. */
	uint32_t h = flow_hash(frame, len);
	h ^= h >> 16;
	h *= 0x85EBCA6Bu;
	h ^= h >> 13;
	h *= 0xC2B2AE35u;
	h ^= h >> 16;
	return h % pairs;
}
