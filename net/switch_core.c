/* The switch's forwarding logic (see switch_core.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/switch_core.h"

#define ETH_P_8021Q 0x8100

static unsigned fdb_hash(const uint8_t mac[6], uint16_t vlan)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (int i = 0; i < 6; i++)
		h = (h ^ mac[i]) * 16777619u;
	h = (h ^ (vlan & 0xFF)) * 16777619u;
	h = (h ^ (vlan >> 8)) * 16777619u;
	return h % SWITCH_FDB_MAX;
}

void switch_core_init(struct switch_core *s, bool vlan_aware)
{
	memset(s, 0, sizeof(*s));
	s->vlan_aware = vlan_aware;
	s->aging_ns = SWITCH_AGING_NS;
	for (int i = 0; i < SWITCH_FDB_MAX; i++) {
		s->bucket[i] = -1;
		s->fdb[i].port = -1;
		s->fdb[i].next = i + 1 < SWITCH_FDB_MAX ? i + 1 : -1;
	}
	s->free_head = 0;
}

static void fdb_unlink(struct switch_core *s, int idx)
{
	struct switch_fdb_entry *e = &s->fdb[idx];
	int *p = &s->bucket[fdb_hash(e->mac, e->vlan)];
	while (*p != idx)
		p = &s->fdb[*p].next;
	*p = e->next;
	if (e->port >= 0 && s->ports[e->port].nmacs)
		s->ports[e->port].nmacs--;
	e->port = -1;
	e->next = s->free_head;
	s->free_head = idx;
	s->nfdb--;
}

static int fdb_find(struct switch_core *s, const uint8_t mac[6], uint16_t vlan)
{
	for (int i = s->bucket[fdb_hash(mac, vlan)]; i >= 0; i = s->fdb[i].next)
		if (s->fdb[i].vlan == vlan && !memcmp(s->fdb[i].mac, mac, 6))
			return i;
	return -1;
}

int switch_port_add(struct switch_core *s, const char *name, const uint8_t mac[6], uint16_t vlan,
		    bool trunk, unsigned mac_limit)
{
	if (vlan > SWITCH_VLAN_MAX || (vlan && !s->vlan_aware))
		return -EINVAL;
	for (unsigned i = 0; i < SWITCH_MAX_PORTS; i++) {
		struct switch_port *p = &s->ports[i];
		if (p->used)
			continue;
		memset(p, 0, sizeof(*p));
		p->used = true;
		p->trunk = trunk;
		p->vlan = vlan ? vlan : SWITCH_VLAN_NATIVE;
		p->mac_limit = mac_limit;
		snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
		if (mac)
			memcpy(p->mac, mac, 6);
		return (int)i;
	}
	return -ENOSPC;
}

void switch_port_remove(struct switch_core *s, unsigned port)
{
	if (port >= SWITCH_MAX_PORTS || !s->ports[port].used)
		return;
	for (int i = 0; i < SWITCH_FDB_MAX; i++)
		if (s->fdb[i].port == (int)port)
			fdb_unlink(s, i);
	s->ports[port].used = false;
}

static bool expired(const struct switch_core *s, const struct switch_fdb_entry *e, uint64_t now)
{
	return now > e->seen_ns && now - e->seen_ns > s->aging_ns;
}

int switch_lookup(struct switch_core *s, const uint8_t mac[6], uint16_t vlan, uint64_t now_ns)
{
	int i = fdb_find(s, mac, vlan);
	if (i < 0)
		return -1;
	if (expired(s, &s->fdb[i], now_ns)) {
		fdb_unlink(s, i);
		return -1;
	}
	return s->fdb[i].port;
}

void switch_age(struct switch_core *s, uint64_t now_ns)
{
	for (int i = 0; i < SWITCH_FDB_MAX; i++)
		if (s->fdb[i].port >= 0 && expired(s, &s->fdb[i], now_ns))
			fdb_unlink(s, i);
}

/* Learn (src, vlan) on port `in`: false when the port may not (limit reached, table full). */
static bool learn(struct switch_core *s, unsigned in, const uint8_t *src, uint16_t vlan,
		  uint64_t now)
{
	struct switch_port *p = &s->ports[in];
	int i = fdb_find(s, src, vlan);
	if (i >= 0 && expired(s, &s->fdb[i], now)) {
		fdb_unlink(s, i);
		i = -1;
	}
	if (i >= 0 && s->fdb[i].port == (int)in) {
		s->fdb[i].seen_ns = now;
		return true;
	}
	if (p->nmacs >= p->mac_limit)
		return false;
	if (i >= 0) { /* the station moved to this port */
		struct switch_port *old = &s->ports[s->fdb[i].port];
		if (old->nmacs)
			old->nmacs--;
	} else {
		if (s->free_head < 0)
			return false;
		i = s->free_head;
		s->free_head = s->fdb[i].next;
		memcpy(s->fdb[i].mac, src, 6);
		s->fdb[i].vlan = vlan;
		unsigned b = fdb_hash(src, vlan);
		s->fdb[i].next = s->bucket[b];
		s->bucket[b] = i;
		s->nfdb++;
	}
	s->fdb[i].port = (int)in;
	s->fdb[i].seen_ns = now;
	p->nmacs++;
	return true;
}

/* Does port `o` carry VLAN `vlan`, and with which tag operation for a frame that came tagged or
 * not? */
static bool egress(const struct switch_core *s, unsigned o, uint16_t vlan, bool tagged,
		   enum switch_tag_op *op)
{
	const struct switch_port *p = &s->ports[o];
	*op = SWITCH_TAG_KEEP;
	if (!s->vlan_aware)
		return true;
	bool want_tag = p->trunk && vlan != SWITCH_VLAN_NATIVE;
	if (!p->trunk && p->vlan != vlan)
		return false;
	if (want_tag && !tagged)
		*op = SWITCH_TAG_PUSH;
	else if (!want_tag && tagged)
		*op = SWITCH_TAG_STRIP;
	return true;
}

int switch_forward(struct switch_core *s, unsigned in, const uint8_t *frame, size_t len,
		   uint64_t now_ns, struct switch_decision *d)
{
	d->nout = 0;
	d->flooded = false;
	/* A frame from a port that is not there (left, or never joined) would be learned on it and
	 * later forwarded to it: refused, with nothing counted. */
	if (in >= SWITCH_MAX_PORTS || !s->ports[in].used)
		return -EINVAL;
	struct switch_port *p = &s->ports[in];
	p->c.rx_frames++;
	p->c.rx_bytes += len;
	const uint8_t *dst = frame, *src = frame + 6;
	if (len < 14 || (src[0] & 1)) /* runt, or a multicast source: never learned or passed */
		goto drop;
	uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
	bool tagged = type == ETH_P_8021Q;
	uint16_t vlan = 0;
	if (s->vlan_aware) {
		if (tagged) {
			if (!p->trunk || len < 18)
				goto drop; /* access ports take untagged frames only */
			vlan = (uint16_t)((frame[14] << 8 | frame[15]) & 0xFFF);
			if (vlan == 0 || vlan > SWITCH_VLAN_MAX)
				goto drop;
		} else {
			vlan = p->trunk ? SWITCH_VLAN_NATIVE : p->vlan;
		}
	}
	d->vlan = vlan;
	if (!learn(s, in, src, vlan, now_ns))
		goto drop;
	if (!(dst[0] & 1)) {
		int o = switch_lookup(s, dst, vlan, now_ns);
		if (o == (int)in)
			return 0; /* the destination is behind the port it came from */
		if (o >= 0) {
			if (egress(s, (unsigned)o, vlan, tagged, &d->op[0]))
				d->out[d->nout++] = (uint8_t)o;
			return 0;
		}
		s->flooded++;
		d->flooded = true;
	}
	for (unsigned o = 0; o < SWITCH_MAX_PORTS; o++) {
		if (o == in || !s->ports[o].used)
			continue;
		if (egress(s, o, vlan, tagged, &d->op[d->nout]))
			d->out[d->nout++] = (uint8_t)o;
	}
	return 0;
drop:
	p->c.rx_drops++;
	return -EINVAL;
}
