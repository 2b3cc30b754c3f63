/* Receive steering over queue pairs (see rx_steer.h). */
#include <stdbool.h>
#include <string.h>

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

/* Hash of the two ends (address alen bytes at a and b, ports at pa and pb or none), the lower end
 * first: both directions of a flow hash alike. */
static uint32_t ends_hash(const uint8_t *a, const uint8_t *b, size_t alen, const uint8_t *pa,
			  const uint8_t *pb)
{
	int c = memcmp(a, b, alen);
	if (c == 0 && pa)
		c = memcmp(pa, pb, 2);
	if (c > 0) {
		const uint8_t *t = a;
		a = b, b = t;
		t = pa, pa = pb, pb = t;
	}
	uint32_t h = fnv(2166136261u, a, alen);
	h = fnv(h, b, alen);
	if (pa) {
		h = fnv(h, pa, 2);
		h = fnv(h, pb, 2);
	}
	return h;
}

/* Symmetric hash of the flow: 0 for what is not a whole IP header (+ports for TCP/UDP). */
static uint32_t flow_hash(const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN)
		return 0;
	unsigned type = (unsigned)f[12] << 8 | f[13];
	const uint8_t *ip = f + ETH_HLEN;
	size_t left = len - ETH_HLEN;
	size_t l4, alen;
	const uint8_t *addrs;
	unsigned proto;
	bool ports;
	if (type == ETH_P_IP) {
		if (left < 20 || (ip[0] >> 4) != 4)
			return 0;
		l4 = (size_t)(ip[0] & 15) * 4;
		if (l4 < 20 || l4 > left)
			return 0;
		addrs = ip + 12, alen = 4;
		proto = ip[9];
		ports = !(ip[6] & 0x3F) && !ip[7]; /* a fragment: later ones have no ports */
	} else if (type == ETH_P_IPV6) {
		if (left < 40 || (ip[0] >> 4) != 6)
			return 0;
		l4 = 40;
		addrs = ip + 8, alen = 16;
		proto = ip[6]; /* extension headers: addresses only */
		ports = true;
	} else {
		return 0;
	}
	ports = ports && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && left - l4 >= 4;
	uint32_t h = ends_hash(addrs, addrs + alen, alen, ports ? ip + l4 : NULL,
			       ports ? ip + l4 + 2 : NULL);
	/* FNV's low bits are the parity of the bytes' low bits, and Linux picks even ports for
	 * connect(): mix every bit down (murmur3's finaliser) before taking a remainder. */
	h ^= h >> 16;
	h *= 0x85EBCA6Bu;
	h ^= h >> 13;
	h *= 0xC2B2AE35u;
	h ^= h >> 16;
	return h ? h : 1; /* 0 marks a free slot */
}

void net_steer_reset(struct net_steer *s)
{
	memset(s, 0, sizeof(*s));
}

void net_steer_tx(struct net_steer *s, const uint8_t *frame, size_t len, unsigned pair)
{
	uint32_t h = flow_hash(frame, len);
	if (!h || pair > UINT8_MAX)
		return;
	unsigned slot = h % NET_STEER_FLOWS;
	s->hash[slot] = h;
	s->pair[slot] = (uint8_t)pair;
}

unsigned net_rx_steer(const struct net_steer *s, const uint8_t *frame, size_t len, unsigned pairs)
{
	if (pairs <= 1)
		return 0;
	uint32_t h = flow_hash(frame, len);
	if (!h)
		return 0;
	unsigned slot = h % NET_STEER_FLOWS;
	if (s->hash[slot] == h && s->pair[slot] < pairs)
		return s->pair[slot]; /* where the flow last transmitted */
	return (h >> 8) % pairs; /* not the slot's bits: a new flow of a full table spreads too */
}
