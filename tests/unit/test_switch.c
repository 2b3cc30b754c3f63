/* The switch's forwarding logic without VMs: learning, flooding, aging, station moves, VLANs,
 * MAC limits, counters and the virtio-net header checker. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/switch_core.h"
#include "net/vnet_hdr.h"

#define SEC 1000000000ULL

static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void mac_of(uint8_t m[6], unsigned n)
{
	uint8_t v[6] = {0x02, 0, 0, 0, (uint8_t)(n >> 8), (uint8_t)n};
	memcpy(m, v, 6);
}

/* An Ethernet frame dst <- src, optionally tagged. */
static size_t frame(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], int vlan)
{
	memset(f, 0, 64);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	if (vlan >= 0) {
		f[12] = 0x81;
		f[13] = 0x00;
		f[14] = (uint8_t)(vlan >> 8);
		f[15] = (uint8_t)vlan;
		f[16] = 0x08;
	} else {
		f[12] = 0x08;
	}
	return 64;
}

static struct switch_core *new_switch(bool vlan_aware)
{
	struct switch_core *s = malloc(sizeof(*s));
	assert_non_null(s);
	switch_core_init(s, vlan_aware);
	return s;
}

static bool has_out(const struct switch_decision *d, unsigned p)
{
	for (unsigned i = 0; i < d->nout; i++)
		if (d->out[i] == p)
			return true;
	return false;
}

static void test_learning_and_flooding(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	int a = switch_port_add(s, "a", NULL, 0, false, 8);
	int b = switch_port_add(s, "b", NULL, 0, false, 8);
	int c = switch_port_add(s, "c", NULL, 0, false, 8);
	assert_true(a == 0 && b == 1 && c == 2);
	uint8_t ma[6], mb[6], f[64];
	mac_of(ma, 1);
	mac_of(mb, 2);
	struct switch_decision d;

	/* a -> broadcast: flooded to b and c, not back to a; not counted as unknown unicast. */
	assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, ma, -1), 1, &d), 0);
	assert_int_equal(d.nout, 2);
	assert_true(has_out(&d, b) && has_out(&d, c) && !has_out(&d, a));
	assert_int_equal(s->flooded, 0);
	/* b -> a: a was learned, so only a. */
	assert_int_equal(switch_forward(s, b, f, frame(f, ma, mb, -1), 2, &d), 0);
	assert_int_equal(d.nout, 1);
	assert_int_equal(d.out[0], a);
	assert_false(d.flooded);
	/* a -> b: b learned from the last frame: no flooding any more. */
	assert_int_equal(switch_forward(s, a, f, frame(f, mb, ma, -1), 3, &d), 0);
	assert_int_equal(d.nout, 1);
	assert_int_equal(d.out[0], b);
	assert_int_equal(s->flooded, 0);
	/* unknown unicast floods and is counted */
	uint8_t mx[6];
	mac_of(mx, 99);
	assert_int_equal(switch_forward(s, a, f, frame(f, mx, ma, -1), 4, &d), 0);
	assert_int_equal(d.nout, 2);
	assert_true(d.flooded);
	assert_int_equal(s->flooded, 1);
	assert_int_equal(s->ports[a].c.rx_frames, 3);
	assert_int_equal(s->ports[a].c.rx_bytes, 3 * 64);
	assert_int_equal(s->ports[a].nmacs, 1);
	assert_int_equal(s->nfdb, 2);
	/* a frame to a MAC behind its own port goes nowhere */
	assert_int_equal(switch_forward(s, b, f, frame(f, mb, mb, -1), 5, &d), 0);
	assert_int_equal(d.nout, 0);
	free(s);
}

static void test_bad_frames(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	int a = switch_port_add(s, "a", NULL, 0, false, 8);
	switch_port_add(s, "b", NULL, 0, false, 8);
	uint8_t ma[6], f[64];
	mac_of(ma, 1);
	struct switch_decision d;
	frame(f, BCAST, ma, -1);
	assert_int_equal(switch_forward(s, a, f, 13, 1, &d), -EINVAL); /* runt */
	frame(f, ma, BCAST, -1);
	assert_int_equal(switch_forward(s, a, f, 64, 1, &d), -EINVAL); /* multicast source */
	assert_int_equal(s->ports[a].c.rx_drops, 2);
	assert_int_equal(s->nfdb, 0);
	free(s);
}

static void test_aging_and_moves(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	s->aging_ns = 10 * SEC;
	int a = switch_port_add(s, "a", NULL, 0, false, 8);
	int b = switch_port_add(s, "b", NULL, 0, false, 8);
	int c = switch_port_add(s, "c", NULL, 0, false, 8);
	uint8_t ma[6], f[64];
	mac_of(ma, 1);
	struct switch_decision d;
	switch_forward(s, a, f, frame(f, BCAST, ma, -1), 1 * SEC, &d);
	assert_int_equal(switch_lookup(s, ma, 0, 5 * SEC), a);
	/* seen again at 9 s: still there at 15 s */
	switch_forward(s, a, f, frame(f, BCAST, ma, -1), 9 * SEC, &d);
	assert_int_equal(switch_lookup(s, ma, 0, 15 * SEC), a);
	/* the station moves to c */
	switch_forward(s, c, f, frame(f, BCAST, ma, -1), 16 * SEC, &d);
	assert_int_equal(switch_lookup(s, ma, 0, 16 * SEC), c);
	assert_int_equal(s->ports[a].nmacs, 0);
	assert_int_equal(s->ports[c].nmacs, 1);
	/* aged out after 10 s of silence */
	switch_age(s, 25 * SEC);
	assert_int_equal(s->nfdb, 1);
	switch_age(s, 27 * SEC);
	assert_int_equal(s->nfdb, 0);
	assert_int_equal(switch_lookup(s, ma, 0, 27 * SEC), -1);
	assert_int_equal(s->ports[c].nmacs, 0);
	/* a removed port forgets its MACs and gets no more frames */
	switch_forward(s, b, f, frame(f, BCAST, ma, -1), 30 * SEC, &d);
	switch_port_remove(s, b);
	assert_int_equal(s->nfdb, 0);
	switch_forward(s, a, f, frame(f, ma, ma + 0, -1), 31 * SEC, &d);
	assert_false(has_out(&d, b));
	free(s);
}

static void test_mac_limit(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	int a = switch_port_add(s, "a", NULL, 0, false, 2);
	switch_port_add(s, "b", NULL, 0, false, 2);
	uint8_t m[6], f[64];
	struct switch_decision d;
	for (unsigned i = 1; i <= 2; i++) {
		mac_of(m, i);
		assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, m, -1), i, &d), 0);
	}
	mac_of(m, 3);
	assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, m, -1), 3, &d), -EINVAL);
	assert_int_equal(s->ports[a].c.rx_drops, 1);
	assert_int_equal(s->ports[a].nmacs, 2);
	/* a known one still passes */
	mac_of(m, 1);
	assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, m, -1), 4, &d), 0);
	free(s);
}

static void test_table_full(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	int a = switch_port_add(s, "a", NULL, 0, false, SWITCH_FDB_MAX + 10);
	uint8_t m[6], f[64];
	struct switch_decision d;
	for (unsigned i = 0; i < SWITCH_FDB_MAX; i++) {
		mac_of(m, i);
		m[3] = (uint8_t)(i >> 16);
		assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, m, -1), 1, &d), 0);
	}
	assert_int_equal(s->nfdb, SWITCH_FDB_MAX);
	mac_of(m, 0);
	m[2] = 0x77;
	assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, m, -1), 1, &d), -EINVAL);
	switch_port_remove(s, a);
	assert_int_equal(s->nfdb, 0);
	free(s);
}

static void test_vlans(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(true);
	int a10 = switch_port_add(s, "a", NULL, 10, false, 8);
	int b10 = switch_port_add(s, "b", NULL, 10, false, 8);
	int c20 = switch_port_add(s, "c", NULL, 20, false, 8);
	int up = switch_port_add(s, "uplink", NULL, 0, true, 8);
	int n1 = switch_port_add(s, "n", NULL, 0, false, 8); /* native VLAN 1 */
	assert_int_equal(switch_port_add(s, "x", NULL, 4095, false, 8), -EINVAL);
	uint8_t ma[6], mc[6], f[64];
	mac_of(ma, 1);
	mac_of(mc, 3);
	struct switch_decision d;

	/* VLAN 10 broadcast: b10 untouched, the trunk gets a tag pushed, not c20 or n1. */
	assert_int_equal(switch_forward(s, a10, f, frame(f, BCAST, ma, -1), 1, &d), 0);
	assert_int_equal(d.vlan, 10);
	assert_int_equal(d.nout, 2);
	for (unsigned i = 0; i < d.nout; i++) {
		if (d.out[i] == b10)
			assert_int_equal(d.op[i], SWITCH_TAG_KEEP);
		else
			assert_true(d.out[i] == up && d.op[i] == SWITCH_TAG_PUSH);
	}
	/* c20 cannot reach a10's MAC: learned in VLAN 10 only; flooded within 20 */
	assert_int_equal(switch_forward(s, c20, f, frame(f, ma, mc, -1), 2, &d), 0);
	assert_true(d.flooded);
	assert_false(has_out(&d, a10));
	assert_false(has_out(&d, b10));
	assert_true(has_out(&d, up));
	/* a tagged frame on an access port is dropped */
	assert_int_equal(switch_forward(s, a10, f, frame(f, BCAST, ma, 20), 3, &d), -EINVAL);
	/* from the trunk, tagged 10 reaches a10 with the tag stripped; untagged is VLAN 1 */
	uint8_t mu[6];
	mac_of(mu, 7);
	assert_int_equal(switch_forward(s, up, f, frame(f, ma, mu, 10), 4, &d), 0);
	assert_int_equal(d.nout, 1);
	assert_int_equal(d.out[0], a10);
	assert_int_equal(d.op[0], SWITCH_TAG_STRIP);
	assert_int_equal(switch_forward(s, up, f, frame(f, BCAST, mu, -1), 5, &d), 0);
	assert_int_equal(d.nout, 1);
	assert_int_equal(d.out[0], n1);
	/* VLAN 0 and 4095 tags are refused on the trunk */
	assert_int_equal(switch_forward(s, up, f, frame(f, BCAST, mu, 4095), 6, &d), -EINVAL);
	assert_int_equal(switch_forward(s, up, f, frame(f, BCAST, mu, 0), 6, &d), -EINVAL);
	free(s);
}

static void test_no_vlan_on_plain_switch(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	assert_int_equal(switch_port_add(s, "a", NULL, 10, false, 8), -EINVAL);
	int a = switch_port_add(s, "a", NULL, 0, false, 8);
	int b = switch_port_add(s, "b", NULL, 0, false, 8);
	uint8_t ma[6], f[64];
	mac_of(ma, 1);
	struct switch_decision d;
	/* tags pass untouched */
	assert_int_equal(switch_forward(s, a, f, frame(f, BCAST, ma, 30), 1, &d), 0);
	assert_int_equal(d.nout, 1);
	assert_int_equal(d.out[0], b);
	assert_int_equal(d.op[0], SWITCH_TAG_KEEP);
	free(s);
}

static void test_port_limit(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	for (int i = 0; i < SWITCH_MAX_PORTS; i++)
		assert_int_equal(switch_port_add(s, "p", NULL, 0, false, 1), i);
	assert_int_equal(switch_port_add(s, "p", NULL, 0, false, 1), -ENOSPC);
	switch_port_remove(s, 5);
	assert_int_equal(switch_port_add(s, "p", NULL, 0, false, 1), 5);
	free(s);
}

/* A frame from a port that left (or never was) learns nothing and goes nowhere: otherwise a later
 * frame to its source would be sent to a free port (found by fuzz_switch). */
static void test_frame_from_removed_port(void **state)
{
	(void)state;
	struct switch_core *s = new_switch(false);
	uint8_t a[6], b[6], f[64];
	struct switch_decision d;
	mac_of(a, 1);
	mac_of(b, 2);
	assert_int_equal(switch_port_add(s, "p0", NULL, 0, false, 8), 0);
	assert_int_equal(switch_port_add(s, "p1", NULL, 0, false, 8), 1);
	switch_port_remove(s, 1);
	assert_int_equal(switch_forward(s, 1, f, frame(f, BCAST, b, -1), 0, &d), -EINVAL);
	assert_int_equal(d.nout, 0);
	assert_int_equal(switch_lookup(s, b, 0, 0), -1); /* not learned on the free port */
	assert_int_equal(s->nfdb, 0);
	assert_int_equal(switch_forward(s, SWITCH_MAX_PORTS, f, frame(f, BCAST, b, -1), 0, &d),
			 -EINVAL);
	assert_int_equal(switch_forward(s, 7, f, frame(f, BCAST, b, -1), 0, &d), -EINVAL);
	/* p0 talking to b: flooded to nobody (no other port), never to the free one */
	assert_int_equal(switch_forward(s, 0, f, frame(f, b, a, -1), 0, &d), 0);
	assert_int_equal(d.nout, 0);
	free(s);
}

static void test_vnet_hdr(void **state)
{
	(void)state;
	struct vnet_accept all = {.csum = true, .tso4 = true, .tso6 = true, .ecn = true};
	struct vnet_accept none = {0};
	struct vnet_hdr h = {0};
	assert_int_equal(vnet_hdr_check(&h, 60, &none), VNET_OK);
	assert_int_equal(vnet_hdr_check(&h, 13, &none), VNET_BAD_RUNT);
	assert_int_equal(vnet_hdr_check(&h, ETH_MAX_FRAME + 1, &all), VNET_BAD_OVERSIZE);
	h.flags = 0x80;
	assert_int_equal(vnet_hdr_check(&h, 60, &all), VNET_BAD_FLAGS);
	h.flags = VNET_HDR_F_NEEDS_CSUM;
	h.csum_start = 34;
	h.csum_offset = 16;
	assert_int_equal(vnet_hdr_check(&h, 60, &none), VNET_BAD_FLAGS);
	assert_int_equal(vnet_hdr_check(&h, 60, &all), VNET_OK);
	h.csum_offset = 25; /* the field would end past the frame */
	assert_int_equal(vnet_hdr_check(&h, 60, &all), VNET_BAD_CSUM);
	h.csum_start = 0xFFFF;
	h.csum_offset = 0xFFFF;
	assert_int_equal(vnet_hdr_check(&h, 60, &all), VNET_BAD_CSUM);
	/* GSO */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM,
			      .gso_type = VNET_GSO_TCPV4,
			      .hdr_len = 54,
			      .gso_size = 1448,
			      .csum_start = 34,
			      .csum_offset = 16};
	assert_int_equal(vnet_hdr_check(&h, 30000, &all), VNET_OK);
	assert_int_equal(vnet_hdr_check(&h, ETH_MAX_GSO_FRAME + 1, &all), VNET_BAD_OVERSIZE);
	struct vnet_accept no_tso = {.csum = true};
	assert_int_equal(vnet_hdr_check(&h, 30000, &no_tso), VNET_BAD_GSO);
	h.gso_size = 0;
	assert_int_equal(vnet_hdr_check(&h, 30000, &all), VNET_BAD_GSO);
	h.gso_size = 1448;
	h.gso_type = 2; /* no such type */
	assert_int_equal(vnet_hdr_check(&h, 30000, &all), VNET_BAD_GSO);
	h.gso_type = VNET_GSO_UDP; /* UFO not accepted */
	assert_int_equal(vnet_hdr_check(&h, 30000, &all), VNET_BAD_GSO);
	h.gso_type = VNET_GSO_TCPV6;
	h.flags = 0; /* GSO without the checksum offload */
	assert_int_equal(vnet_hdr_check(&h, 30000, &all), VNET_BAD_GSO);
	h.flags = VNET_HDR_F_NEEDS_CSUM;
	h.hdr_len = 40000;
	assert_int_equal(vnet_hdr_check(&h, 30000, &all), VNET_BAD_GSO);
	h.hdr_len = 54;
	h.gso_type = VNET_GSO_NONE | VNET_GSO_ECN;
	assert_int_equal(vnet_hdr_check(&h, 1000, &all), VNET_BAD_GSO);

	uint8_t raw[VNET_HDR_LEN];
	h = (struct vnet_hdr){1, 4, 0x1234, 0x5678, 0x9abc, 0xdef0, 0x1357};
	vnet_hdr_put(raw, &h);
	struct vnet_hdr g;
	vnet_hdr_get(raw, &g);
	assert_memory_equal(&g, &h, sizeof(h));
	assert_int_equal(raw[2], 0x34);
}

/* A UDP checksum completed in software matches the one computed whole. */
/* Tag push/strip moves the header's offsets, and refuses values that would wrap or leave the
 * bounds vnet_hdr_check sets. */
static void test_vnet_hdr_retag(void **state)
{
	(void)state;
	static const struct vnet_accept all = {
	    .csum = true, .tso4 = true, .tso6 = true, .ecn = true, .ufo = true};
	struct vnet_hdr h = {.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};
	assert_int_equal(vnet_hdr_retag(&h, 60, true), 0);
	assert_int_equal(h.csum_start, 38);
	assert_int_equal(vnet_hdr_check(&h, 64, &all), VNET_OK);
	assert_int_equal(vnet_hdr_retag(&h, 64, false), 0);
	assert_int_equal(h.csum_start, 34);
	/* stripping would put the checksum inside the Ethernet header */
	h.csum_start = 16;
	assert_int_equal(vnet_hdr_retag(&h, 64, false), -ERANGE);
	assert_int_equal(h.csum_start, 16);
	/* a full-size frame cannot take a tag */
	h = (struct vnet_hdr){0};
	assert_int_equal(vnet_hdr_retag(&h, ETH_MAX_FRAME, true), -ERANGE);
	assert_int_equal(vnet_hdr_retag(&h, ETH_MAX_FRAME - 4, true), 0);
	/* nor a stripped frame shorter than its tag */
	assert_int_equal(vnet_hdr_retag(&h, 16, false), -ERANGE);
	/* GSO: hdr_len moves too, and must not wrap below zero or past 16 bits */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM,
			      .gso_type = VNET_GSO_TCPV4,
			      .gso_size = 1448,
			      .hdr_len = 2,
			      .csum_start = 38,
			      .csum_offset = 16};
	assert_int_equal(vnet_hdr_retag(&h, 30000, false), -ERANGE);
	h.hdr_len = 0xFFFE;
	assert_int_equal(vnet_hdr_retag(&h, 30000, true), -ERANGE);
	h.hdr_len = 70;
	assert_int_equal(vnet_hdr_retag(&h, 30000, true), 0);
	assert_int_equal(h.hdr_len, 74);
	assert_int_equal(vnet_hdr_retag(&h, ETH_MAX_GSO_FRAME - 3, true), -ERANGE);
	h.csum_start = 0xFFFD;
	assert_int_equal(vnet_hdr_retag(&h, 30000, true), -ERANGE);
}

static void test_complete_csum(void **state)
{
	(void)state;
	uint8_t f[14 + 20 + 8 + 5] = {0};
	size_t len = sizeof(f);
	memcpy(f + 42, "hello", 5);
	f[34 + 4] = 0;
	f[34 + 5] = 13; /* UDP length */
	/* pseudo-header sum left in the field, as a NEEDS_CSUM sender does (value arbitrary here)
	 */
	f[34 + 6] = 0x12;
	f[34 + 7] = 0x34;
	struct vnet_hdr h = {.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
	vnet_complete_csum(&h, f, len);
	assert_int_equal(h.flags, 0);
	/* a receiver's check: pseudo-header + segment (checksum field included) sums to 0xFFFF */
	uint32_t sum = 0x1234; /* the pseudo-header the sender had left in the field */
	for (size_t i = 34; i + 1 < len; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	if ((len - 34) & 1)
		sum += (uint32_t)f[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	assert_int_equal(sum, 0xFFFF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_learning_and_flooding),
	    cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_aging_and_moves),
	    cmocka_unit_test(test_mac_limit),
	    cmocka_unit_test(test_table_full),
	    cmocka_unit_test(test_vlans),
	    cmocka_unit_test(test_no_vlan_on_plain_switch),
	    cmocka_unit_test(test_port_limit),
	    cmocka_unit_test(test_frame_from_removed_port),
	    cmocka_unit_test(test_vnet_hdr),
	    cmocka_unit_test(test_complete_csum),
	    cmocka_unit_test(test_vnet_hdr_retag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
