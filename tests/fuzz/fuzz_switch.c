/* The switch's frame path without sockets: each message from the input goes through what the
 * switch process does with a port's message (vnet_hdr_check with everything accepted, then
 * switch_forward from that port) on a switch with access ports on several VLANs and a trunk,
 * ports joining and leaving, time moving on and ageing the table; frames a receiver cannot take
 * with a checksum offload get it completed (vnet_complete_csum, as virtio-net does).  Checked:
 * a decision names only ports in use and never the input port, a tag is stripped only from a
 * frame long enough to hold one (the server copies from byte 16), and the learned-MAC counts
 * stay within the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/switch_core.h"
#include "net/vnet_hdr.h"
#include "tests/fuzz/fuzz_input.h"

static struct switch_core sw;
/* A freshly initialised switch of each kind, copied in before each input: the init's walk of the
 * whole forwarding table (4,096 entries, instrumented) was 60 % of an input.  The init itself
 * still runs, once per kind. */
static struct switch_core fresh[2];
static uint8_t msg[VNET_HDR_LEN + 2048];

static const struct vnet_accept all = {
    .csum = true, .tso4 = true, .tso6 = true, .ecn = true, .ufo = true};

static void check(const struct switch_core *s, unsigned in, size_t len,
		  const struct switch_decision *d)
{
	if (d->nout > SWITCH_MAX_PORTS)
		abort();
	for (unsigned i = 0; i < d->nout; i++) {
		if (d->out[i] >= SWITCH_MAX_PORTS || !s->ports[d->out[i]].used || d->out[i] == in)
			abort();
		if (d->op[i] == SWITCH_TAG_STRIP && len < ETH_HDR_LEN + ETH_VLAN_TAG_LEN)
			abort();
	}
	for (unsigned p = 0; p < SWITCH_MAX_PORTS; p++)
		if (s->ports[p].used && s->ports[p].nmacs > s->ports[p].mac_limit)
			abort();
	if (s->nfdb > SWITCH_FDB_MAX)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	switch_core_init(&fresh[0], false);
	switch_core_init(&fresh[1], true);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	uint8_t flags = take_u8(&in);
	uint64_t now = 0;

	sw = fresh[flags & 1];
	if (flags & 2)
		sw.aging_ns = 1000; /* entries age within an input */
	for (unsigned p = 0; p < 4; p++) {
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)p};
		uint16_t vlan = (flags & 1) ? (uint16_t)(p % 3) : 0; /* 0: native */
		switch_port_add(&sw, "p", mac, vlan, (flags & 1) && p == 3, 2 + p);
	}
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		unsigned port = (op >> 3) % SWITCH_MAX_PORTS;
		switch (op & 7) {
		case 0:
		case 1:
		case 2: { /* a message from a port: header and frame as the input has them */
			size_t len = take_u16(&in) % sizeof(msg);
			take_bytes(&in, msg, len);
			if (len < VNET_HDR_LEN)
				break; /* dropped by the server before the core */
			struct vnet_hdr h;
			vnet_hdr_get(msg, &h);
			size_t flen = len - VNET_HDR_LEN;
			if (vnet_hdr_check(&h, flen, &all) != VNET_OK)
				break;
			struct switch_decision d;
			if (switch_forward(&sw, port % 8, msg + VNET_HDR_LEN, flen, now, &d) == 0)
				check(&sw, port % 8, flen, &d);
			if (op & 0x80 && h.gso_type == VNET_GSO_NONE &&
			    (h.flags & VNET_HDR_F_NEEDS_CSUM))
				vnet_complete_csum(&h, msg + VNET_HDR_LEN, flen);
			break;
		}
		case 3: { /* a port joins: any VLAN, trunk or not, any MAC limit */
			uint8_t mac[6];
			take_bytes(&in, mac, 6);
			switch_port_add(&sw, "j", mac, take_u16(&in), op & 0x80, take_u8(&in));
			break;
		}
		case 4: /* a port leaves (a VM's crash) */
			if (sw.ports[port].used)
				switch_port_remove(&sw, port);
			break;
		case 5: /* time passes */
			now += take_u32(&in);
			switch_age(&sw, now);
			break;
		default: {
			uint8_t mac[6];
			take_bytes(&in, mac, 6);
			int p = switch_lookup(&sw, mac, take_u16(&in), now);
			if (p >= SWITCH_MAX_PORTS || (p >= 0 && !sw.ports[p].used))
				abort();
			break;
		}
		}
	}
	return 0;
}
