/* virtio-net on the virtio-pci transport, without a CPU: the NIC's host side is one end of a
 * SOCK_SEQPACKET pair (as a switch port), the test is both the guest driver and the peer.
 * Transmit and receive with the vnet header, mergeable buffers, back-pressure without buffers,
 * and hostile input from both sides: bad headers, runts, oversize and bad GSO frames (dropped
 * and counted, the queue goes on) and malformed rings (DEVICE_NEEDS_RESET).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "devices/virtio/net/nic_config.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/net/net_ctrl.h"
#include "net/vnet_hdr.h"
#include "tests/device/virtio_fixture.h"

#define TXB 0x100000ULL /* transmit buffers: TXB + 0x10000 * i */
#define RXB 0x800000ULL /* receive buffers: RXB + 0x1000 * i */
#define QSIZE 64
#define WANT                                                                                       \
	(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_RING_EVENT_IDX | 1ULL << VIRTIO_NET_F_MAC | \
	 1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_CSUM |                                 \
	 1ULL << VIRTIO_NET_F_GUEST_CSUM | 1ULL << VIRTIO_NET_F_HOST_TSO4 |                        \
	 1ULL << VIRTIO_NET_F_GUEST_TSO4 | 1ULL << VIRTIO_NET_F_MRG_RXBUF)

struct t {
	struct vf f;
	struct virtio_net *net;
	int peer; /* the switch's end */
	unsigned ntx;
	uint16_t rx_used_seen;
	uint16_t nctrl, nrx; /* control commands sent, receive buffers posted */
	unsigned ctrlq;	     /* the control queue: 2 * queue pairs */
};

static const uint8_t MAC[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

static struct t *t_new_pairs(unsigned pairs)
{
	struct t *t = calloc(1, sizeof(*t));
	t->ctrlq = 2 * pairs;
	assert_non_null(t);
	assert_int_equal(vf_init(&t->f, true), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	t->peer = sv[1];
	struct virtio_net_env env = {.pci = t->f.bus,
				     .mem = &t->f.mem,
				     .loop = t->f.loop,
				     .fd = sv[0],
				     .is_socket = true,
				     .queues = pairs};
	memcpy(env.mac, MAC, 6);
	assert_int_equal(virtio_net_create(&env, &t->net), 0);
	vf_loop_start(&t->f);
	vf_enable(&t->f);
	return t;
}

static struct t *t_new(void)
{
	return t_new_pairs(1);
}

static void t_free(struct t *t)
{
	vf_loop_stop(&t->f);
	virtio_net_destroy(t->net);
	close(t->peer);
	vf_fini(&t->f);
	free(t);
}

static void t_start(struct t *t, uint64_t want)
{
	vf_msix_enable(&t->f, 3);
	uint8_t s = vf_negotiate(&t->f, want);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	vf_w(&t->f, VF_COMMON(0x10), 2, 0);
	vf_queue_setup(&t->f, 0, QSIZE, 1);
	vf_queue_setup(&t->f, 1, QSIZE, 2);
	if (want & 1ULL << VIRTIO_NET_F_CTRL_VQ)
		vf_queue_setup(&t->f, 2, QSIZE, 2);
	vf_set_status(&t->f, s | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_DRIVER_OK);
	t->ntx = 0;
	t->rx_used_seen = 0;
}

static struct virtio_net_stats stats(struct t *t)
{
	struct virtio_net_stats s;
	virtio_net_get_stats(t->net, &s);
	return s;
}

/* Bounded only to stop a hang: the loop thread does the work. */
static void wait_used(struct t *t, unsigned q, uint16_t n)
{
	for (int i = 0; i < 20000 && vf_used_idx(&t->f, q) != n; i++)
		usleep(200);
	assert_int_equal(vf_used_idx(&t->f, q), n);
}

/* Transmit: header (as given) and frame of flen bytes (byte i = i ^ seed), in two buffers. */
static void tx(struct t *t, const struct vnet_hdr *h, size_t hlen, size_t flen, uint8_t seed)
{
	uint64_t gpa = TXB + 0x10000ULL * (t->ntx % 64);
	uint8_t *p = vf_ram(&t->f, gpa, 0x10000);
	uint8_t raw[VNET_HDR_LEN];
	vnet_hdr_put(raw, h);
	memcpy(p, raw, hlen);
	for (size_t i = 0; i < flen; i++)
		p[hlen + i] = (uint8_t)(i ^ seed);
	struct vf_buf b[2] = {{gpa, (uint32_t)hlen, false}, {gpa + hlen, (uint32_t)flen, false}};
	vf_post(&t->f, 1, b, flen ? 2 : 1);
	vf_kick(&t->f, 1);
	wait_used(t, 1, (uint16_t)++t->ntx);
}

static ssize_t peer_recv(struct t *t, uint8_t *buf, size_t len)
{
	struct pollfd p = {.fd = t->peer, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1) /* bounded only to stop a hang */
		return -1;
	return recv(t->peer, buf, len, 0);
}

static bool peer_idle(struct t *t)
{
	uint8_t b[16];
	return recv(t->peer, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void config_and_identity(void **state)
{
	(void)state;
	struct t *t = t_new();
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, PCI_DEVICE_ID, 2), 0x1041);
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, 0x0B, 1), 0x02); /* network */
	for (int i = 0; i < 6; i++)
		assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + i, 1), MAC[i]);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 6, 2), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 10, 2), 1500);
	t_free(t);
}

static void transmit_passes_header_and_frame(void **state)
{
	(void)state;
	struct t *t = t_new();
	t_start(t, WANT);
	struct vnet_hdr h = {0};
	tx(t, &h, VNET_HDR_LEN, 60, 7);
	uint8_t buf[VNET_MAX_MSG];
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), VNET_HDR_LEN + 60);
	for (int i = 0; i < 60; i++)
		assert_int_equal(buf[VNET_HDR_LEN + i], (uint8_t)(i ^ 7));
	/* a TSO frame with its checksum left to the receiver passes as it is */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM,
			      .gso_type = VNET_GSO_TCPV4,
			      .hdr_len = 54,
			      .gso_size = 1448,
			      .csum_start = 34,
			      .csum_offset = 16,
			      .num_buffers = 9};
	tx(t, &h, VNET_HDR_LEN, 20000, 3);
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), VNET_HDR_LEN + 20000);
	struct vnet_hdr g;
	vnet_hdr_get(buf, &g);
	assert_int_equal(g.gso_type, VNET_GSO_TCPV4);
	assert_int_equal(g.gso_size, 1448);
	assert_int_equal(g.num_buffers, 0); /* not passed on from the guest */
	struct virtio_net_stats s = stats(t);
	assert_int_equal(s.tx_frames, 2);
	assert_int_equal(s.tx_bytes, 20060);
	assert_int_equal(s.tx_drops, 0);
	t_free(t);
}

static void hostile_transmits_are_dropped_and_counted(void **state)
{
	(void)state;
	struct t *t = t_new();
	/* without HOST_TSO6 and HOST_ECN */
	t_start(t, WANT);
	struct vnet_hdr ok = {0}, h;
	tx(t, &ok, 8, 0, 0);				/* shorter than the header */
	tx(t, &ok, VNET_HDR_LEN, 10, 0);		/* runt */
	tx(t, &ok, VNET_HDR_LEN, ETH_MAX_FRAME + 1, 0); /* oversize without GSO */
	h = (struct vnet_hdr){.flags = 0x40};
	tx(t, &h, VNET_HDR_LEN, 60, 0); /* unknown flag */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 50, .csum_offset = 9};
	tx(t, &h, VNET_HDR_LEN, 60, 0); /* checksum field past the end */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM,
			      .gso_type = VNET_GSO_TCPV4,
			      .hdr_len = 54,
			      .gso_size = 0,
			      .csum_start = 34,
			      .csum_offset = 16};
	tx(t, &h, VNET_HDR_LEN, 3000, 0); /* GSO with segment size 0 */
	h.gso_size = 1448;
	h.gso_type = VNET_GSO_TCPV6;
	tx(t, &h, VNET_HDR_LEN, 3000, 0); /* TSO6 not negotiated */
	h.gso_type = VNET_GSO_TCPV4 | VNET_GSO_ECN;
	tx(t, &h, VNET_HDR_LEN, 3000, 0); /* ECN not negotiated */
	h.gso_type = 0x17;
	tx(t, &h, VNET_HDR_LEN, 3000, 0); /* no such type */
	h.gso_type = VNET_GSO_TCPV4;
	tx(t, &h, VNET_HDR_LEN, ETH_MAX_GSO_FRAME + 1, 0); /* oversize even for GSO */
	assert_true(peer_idle(t));
	struct virtio_net_stats s = stats(t);
	assert_int_equal(s.tx_malformed, 10);
	assert_int_equal(s.tx_drops, 10);
	assert_int_equal(s.tx_frames, 0);
	/* the queue goes on */
	assert_false(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	tx(t, &ok, VNET_HDR_LEN, 60, 1);
	uint8_t buf[VNET_MAX_MSG];
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), VNET_HDR_LEN + 60);
	/* without CSUM negotiated, NEEDS_CSUM is refused too */
	t_start(t, WANT & ~(1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_HOST_TSO4));
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
	tx(t, &h, VNET_HDR_LEN, 60, 0);
	assert_true(peer_idle(t));
	assert_int_equal(stats(t).tx_malformed, 11);
	t_free(t);
}

static void malformed_transmit_ring_needs_reset(void **state)
{
	(void)state;
	struct t *t = t_new();
	t_start(t, WANT);
	int before = t->f.signal_msi_count;
	(void)before;
	struct vf_buf b = {VF_RAM + 0x1000, 100, false}; /* outside RAM */
	vf_post(&t->f, 1, &b, 1);
	vf_kick(&t->f, 1);
	for (int i = 0; i < 20000 && !(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(200);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(peer_idle(t));
	/* a reset brings it back */
	t_start(t, WANT);
	assert_false(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	struct vnet_hdr ok = {0};
	tx(t, &ok, VNET_HDR_LEN, 60, 1);
	uint8_t buf[128];
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), VNET_HDR_LEN + 60);
	t_free(t);
}

static void post_rx(struct t *t, unsigned first, unsigned n, uint32_t len)
{
	for (unsigned i = first; i < first + n; i++) {
		struct vf_buf b = {RXB + 0x1000ULL * i, len, true};
		vf_post(&t->f, 0, &b, 1);
	}
	vf_kick(&t->f, 0);
}

static void peer_send(struct t *t, const struct vnet_hdr *h, size_t flen, uint8_t seed)
{
	uint8_t *m = malloc(VNET_HDR_LEN + flen);
	vnet_hdr_put(m, h);
	for (size_t i = 0; i < flen; i++)
		m[VNET_HDR_LEN + i] = (uint8_t)(i ^ seed);
	assert_int_equal(send(t->peer, m, VNET_HDR_LEN + flen, 0), (ssize_t)(VNET_HDR_LEN + flen));
	free(m);
}

static void receive_mergeable_and_back_pressure(void **state)
{
	(void)state;
	struct t *t = t_new();
	t_start(t, WANT);
	post_rx(t, 0, 4, 1024);
	/* a 3000-byte TSO frame takes three 1 KiB buffers */
	struct vnet_hdr h = {.flags = VNET_HDR_F_NEEDS_CSUM,
			     .gso_type = VNET_GSO_TCPV4,
			     .hdr_len = 54,
			     .gso_size = 1448,
			     .csum_start = 34,
			     .csum_offset = 16};
	peer_send(t, &h, 3000, 5);
	wait_used(t, 0, 3);
	uint32_t id, len, total = 0;
	for (uint16_t i = 0; i < 3; i++) {
		vf_used(&t->f, 0, i, &id, &len);
		assert_int_equal(id, i);
		total += len;
	}
	assert_int_equal(total, VNET_HDR_LEN + 3000);
	uint8_t *b0 = vf_ram(&t->f, RXB, 0x4000);
	struct vnet_hdr g;
	vnet_hdr_get(b0, &g);
	assert_int_equal(g.num_buffers, 3);
	assert_int_equal(g.gso_type, VNET_GSO_TCPV4);
	for (size_t i = 0; i < 3000; i++) {
		size_t off = VNET_HDR_LEN + i; /* buffers are 0x1000 apart, 1024 used each */
		assert_int_equal(b0[(off / 1024) * 0x1000 + off % 1024], (uint8_t)(i ^ 5));
	}
	/* one buffer left: a 2000-byte frame does not fit; it waits, nothing is lost */
	h = (struct vnet_hdr){0};
	peer_send(t, &h, 1400, 9);
	peer_send(t, &h, 1400, 10);
	usleep(20000); /* only lets a wrong device deliver early; the asserts below do not wait */
	assert_int_equal(vf_used_idx(&t->f, 0), 3);
	post_rx(t, 4, 4, 1024);
	wait_used(t, 0, 7);
	vf_used(&t->f, 0, 3, &id, &len);
	assert_int_equal(len, 1024);
	vf_used(&t->f, 0, 4, &id, &len);
	assert_int_equal(len, VNET_HDR_LEN + 1400 - 1024);
	struct virtio_net_stats s = stats(t);
	assert_int_equal(s.rx_frames, 3);
	assert_int_equal(s.rx_drops, 0);
	t_free(t);
}

static void hostile_peer_frames_are_dropped(void **state)
{
	(void)state;
	struct t *t = t_new();
	/* the guest takes no offloads: no GUEST_TSO4 and no GUEST_CSUM */
	t_start(t, WANT & ~(1ULL << VIRTIO_NET_F_GUEST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_CSUM));
	post_rx(t, 0, 8, 2048);
	uint8_t junk[5] = {1, 2, 3, 4, 5};
	assert_int_equal(send(t->peer, junk, sizeof(junk), 0), 5); /* shorter than a header */
	struct vnet_hdr h = {.flags = 0x80};
	peer_send(t, &h, 60, 0); /* bad flags */
	h = (struct vnet_hdr){0};
	peer_send(t, &h, 8, 0); /* runt */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM,
			      .gso_type = VNET_GSO_TCPV4,
			      .hdr_len = 54,
			      .gso_size = 1448,
			      .csum_start = 34,
			      .csum_offset = 16};
	peer_send(t, &h, 3000, 0); /* GSO the guest did not negotiate */
	/* a checksum offload the guest cannot take is completed here */
	h = (struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
	peer_send(t, &h, 60, 0x33);
	wait_used(t, 0, 1);
	struct virtio_net_stats s = stats(t);
	assert_int_equal(s.rx_drops, 4);
	assert_int_equal(s.rx_frames, 1);
	uint8_t *b = vf_ram(&t->f, RXB, 2048);
	struct vnet_hdr g;
	vnet_hdr_get(b, &g);
	assert_int_equal(g.flags, 0);
	uint32_t sum = 0;
	for (size_t i = 34; i < 60; i += 2)
		sum += (uint32_t)b[VNET_HDR_LEN + i] << 8 | b[VNET_HDR_LEN + i + 1];
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	uint16_t seeded = (uint16_t)((40 ^ 0x33) << 8 | (41 ^ 0x33)); /* what the field held */
	(void)seeded;
	/* the segment now sums (with the pseudo-header that was in the field) to 0xFFFF */
	uint32_t with_pseudo = sum + seeded;
	while (with_pseudo >> 16)
		with_pseudo = (with_pseudo & 0xFFFF) + (with_pseudo >> 16);
	assert_int_equal(with_pseudo, 0xFFFF);
	/* a readable receive buffer breaks the ring */
	struct vf_buf rb = {RXB, 2048, false};
	for (int i = 0; i < 7; i++) /* use up the good ones first */
		peer_send(t, &(struct vnet_hdr){0}, 60, 0);
	wait_used(t, 0, 8);
	vf_post(&t->f, 0, &rb, 1);
	vf_kick(&t->f, 0);
	peer_send(t, &(struct vnet_hdr){0}, 60, 0);
	for (int i = 0; i < 20000 && !(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(200);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	t_free(t);
}

/* A guest that takes checksum offload gets frames received straight into its buffers (the
 * header peeked and checked first): a bad frame is dropped without touching a buffer. */
static void hostile_peer_frames_direct(void **state)
{
	(void)state;
	struct t *t = t_new();
	t_start(t, WANT & ~(1ULL << VIRTIO_NET_F_GUEST_TSO4));
	post_rx(t, 0, 4, 2048);
	uint8_t junk[5] = {1, 2, 3, 4, 5};
	assert_int_equal(send(t->peer, junk, sizeof(junk), 0), 5); /* shorter than a header */
	peer_send(t, &(struct vnet_hdr){.flags = 0x80}, 60, 0);	   /* bad flags */
	peer_send(t, &(struct vnet_hdr){0}, 8, 0);		   /* runt */
	peer_send(t, &(struct vnet_hdr){0}, ETH_MAX_FRAME + 1, 0); /* oversize without GSO */
	peer_send(t, &(struct vnet_hdr){0}, VNET_MAX_MSG + 10, 0); /* past any message */
	peer_send(
	    t, /* checksum field past the frame */
	    &(struct vnet_hdr){.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 58, .csum_offset = 6},
	    60, 0);
	struct vnet_hdr h = {.flags = VNET_HDR_F_NEEDS_CSUM,
			     .gso_type = VNET_GSO_TCPV4,
			     .hdr_len = 54,
			     .gso_size = 1448,
			     .csum_start = 34,
			     .csum_offset = 16};
	peer_send(t, &h, 3000, 0); /* GSO the guest did not negotiate */
	/* the checksum offload passes to a guest that took it, num_buffers set */
	h = (struct vnet_hdr){
	    .flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6, .num_buffers = 77};
	peer_send(t, &h, 60, 0x44);
	wait_used(t, 0, 1);
	struct virtio_net_stats s = stats(t);
	assert_int_equal(s.rx_drops, 7);
	assert_int_equal(s.rx_frames, 1);
	uint32_t id, len;
	vf_used(&t->f, 0, 0, &id, &len);
	assert_int_equal(id, 0); /* the first buffer: none was spent on the dropped ones */
	assert_int_equal(len, VNET_HDR_LEN + 60);
	uint8_t *b = vf_ram(&t->f, RXB, 2048);
	struct vnet_hdr g;
	vnet_hdr_get(b, &g);
	assert_int_equal(g.flags, VNET_HDR_F_NEEDS_CSUM);
	assert_int_equal(g.csum_start, 34);
	assert_int_equal(g.num_buffers, 1);
	for (size_t i = 0; i < 60; i++)
		assert_int_equal(b[VNET_HDR_LEN + i], (uint8_t)(i ^ 0x44));
	t_free(t);
}

/* --- control queue ----------------------------------------------------------------------- */

#define CTB 0x1C00000ULL /* control command at CTB, its ack byte at CTB + 0x1000 */
#define WANT_CTRL                                                                                  \
	(WANT | 1ULL << VIRTIO_NET_F_CTRL_VQ | 1ULL << VIRTIO_NET_F_CTRL_RX |                      \
	 1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR | 1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE)

/* Send one command (class, command, data as len bytes) as Linux does: header and data in two
 * readable buffers, then the ack byte; returns the ack. */
static uint8_t ctrl(struct t *t, const uint8_t *cmd, size_t len)
{
	memcpy(vf_ram(&t->f, CTB, len), cmd, len);
	uint8_t *ack = vf_ram(&t->f, CTB + 0x1000, 1);
	*ack = 0xAA;
	struct vf_buf b[3] = {
	    {CTB, 2, false}, {CTB + 2, (uint32_t)len - 2, false}, {CTB + 0x1000, 1, true}};
	if (len > 2)
		vf_post(&t->f, t->ctrlq, b, 3);
	else
		vf_post(&t->f, t->ctrlq, (struct vf_buf[]){b[0], b[2]}, 2);
	vf_kick(&t->f, t->ctrlq);
	wait_used(t, t->ctrlq, ++t->nctrl);
	return *ack;
}

/* A 60-byte frame to dst from the peer. */
static void peer_send_to(struct t *t, const uint8_t dst[6])
{
	uint8_t m[VNET_HDR_LEN + 60] = {0};
	memcpy(m + VNET_HDR_LEN, dst, 6);
	memcpy(m + VNET_HDR_LEN + 6, (uint8_t[]){0x02, 0, 0, 0, 0, 0x01}, 6);
	m[VNET_HDR_LEN + 12] = 0x08;
	assert_int_equal(send(t->peer, m, sizeof(m), 0), (ssize_t)sizeof(m));
}

/* Is a frame to dst delivered (true) or filtered?  A broadcast (always delivered) follows it:
 * once both are counted, the first was decided. */
static bool passes(struct t *t, const uint8_t dst[6])
{
	static const uint8_t bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	struct virtio_net_stats s = stats(t);
	uint64_t frames = s.rx_frames, seen = s.rx_frames + s.rx_filtered;
	while (t->nrx < frames + 2) {
		post_rx(t, t->nrx, 1, 2048);
		t->nrx++;
	}
	peer_send_to(t, dst);
	peer_send_to(t, bcast);
	for (int i = 0; i < 20000; i++) { /* bounded only against a hang */
		s = stats(t);
		if (s.rx_frames + s.rx_filtered == seen + 2)
			break;
		usleep(200);
	}
	assert_int_equal(s.rx_frames + s.rx_filtered, seen + 2);
	return s.rx_frames == frames + 2;
}

static void control_queue_filters_and_addresses(void **state)
{
	(void)state;
	static const uint8_t other[6] = {0x02, 0, 0, 0, 0, 0x99},
			     extra[6] = {0x02, 0, 0, 0, 0, 0x77}, mc1[6] = {0x01, 0, 0x5e, 0, 0, 1},
			     mc9[6] = {0x01, 0, 0x5e, 0, 0, 9},
			     newmac[6] = {0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE};
	struct t *t = t_new();
	t_start(t, WANT_CTRL);
	assert_true(passes(t, other)); /* promiscuous after reset */
	assert_int_equal(ctrl(t, (uint8_t[]){0, 0, 0}, 3), VIRTIO_NET_OK); /* promisc off */
	assert_false(passes(t, other));
	assert_true(passes(t, MAC));
	assert_false(passes(t, mc1));
	uint64_t filtered = stats(t).rx_filtered;
	assert_int_equal(filtered, 2);
	/* tables: one extra unicast, one multicast */
	uint8_t tbl[2 + 4 + 6 + 4 + 6] = {1, 0, 1, 0, 0, 0};
	memcpy(tbl + 6, extra, 6);
	tbl[12] = 1;
	memcpy(tbl + 16, mc1, 6);
	assert_int_equal(ctrl(t, tbl, sizeof(tbl)), VIRTIO_NET_OK);
	assert_true(passes(t, extra));
	assert_true(passes(t, mc1));
	assert_false(passes(t, mc9));
	assert_int_equal(ctrl(t, (uint8_t[]){0, 1, 1}, 3), VIRTIO_NET_OK); /* allmulti */
	assert_true(passes(t, mc9));
	assert_int_equal(ctrl(t, (uint8_t[]){0, 1, 0}, 3), VIRTIO_NET_OK);
	/* hostile commands: refused, nothing changes */
	assert_int_equal(ctrl(t, (uint8_t[]){0, 0, 0, 0}, 4), VIRTIO_NET_ERR); /* 2 data bytes */
	assert_int_equal(ctrl(t, (uint8_t[]){0, 0, 7}, 3), VIRTIO_NET_ERR);    /* not 0 or 1 */
	assert_int_equal(ctrl(t, (uint8_t[]){0, 0}, 2), VIRTIO_NET_ERR);       /* no data */
	assert_int_equal(ctrl(t, (uint8_t[]){9, 0, 0}, 3), VIRTIO_NET_ERR);    /* unknown class */
	assert_int_equal(ctrl(t, (uint8_t[]){0, 9, 0}, 3), VIRTIO_NET_ERR);    /* unknown command */
	uint8_t huge[2 + 4 + 12] = {1, 0, 0xFF, 0xFF, 0xFF, 0xFF};	       /* 2^32-1 entries */
	assert_int_equal(ctrl(t, huge, sizeof(huge)), VIRTIO_NET_ERR);
	uint8_t bad[sizeof(tbl)];
	memcpy(bad, tbl, sizeof(tbl));
	memcpy(bad + 6, mc9, 6); /* a multicast in the unicast table */
	assert_int_equal(ctrl(t, bad, sizeof(bad)), VIRTIO_NET_ERR);
	uint8_t longer[sizeof(tbl) + 1];
	memcpy(longer, tbl, sizeof(tbl));
	longer[sizeof(tbl)] = 0; /* a byte past the counts */
	assert_int_equal(ctrl(t, longer, sizeof(longer)), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, tbl, sizeof(tbl) - 1), VIRTIO_NET_ERR); /* short of its count */
	assert_int_equal(ctrl(t, (uint8_t[]){1, 1, 1, 2, 3, 4, 5, 6}, 8), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, (uint8_t[]){1, 1, 0, 0, 0, 0, 0, 0}, 8), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, (uint8_t[]){1, 1, 2, 2, 3, 4, 5}, 7), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, (uint8_t[]){3, 0, 1}, 3), VIRTIO_NET_ERR); /* ack with data */
	assert_true(passes(t, extra)); /* the tables as they were */
	assert_false(passes(t, mc9));
	assert_false(passes(t, other));
	/* more multicast addresses than the table holds: every multicast passes */
	uint8_t many[2 + 4 + 4 + 6 * 65] = {1, 0, 0, 0, 0, 0, 65};
	for (int i = 0; i < 65; i++)
		memcpy(many + 10 + 6 * i, (uint8_t[]){0x01, 0, 0x5e, 1, 0, (uint8_t)i}, 6);
	assert_int_equal(ctrl(t, many, sizeof(many)), VIRTIO_NET_OK);
	assert_true(passes(t, mc9));
	assert_false(passes(t, extra)); /* the unicast table is empty now */
	/* a new address: config space follows, the filter too */
	uint8_t set[8] = {1, 1};
	memcpy(set + 2, newmac, 6);
	assert_int_equal(ctrl(t, set, sizeof(set)), VIRTIO_NET_OK);
	for (int i = 0; i < 6; i++)
		assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + i, 1), newmac[i]);
	assert_true(passes(t, newmac));
	assert_false(passes(t, MAC));
	assert_int_equal(stats(t).mac[5], 0xEE);
	/* announce: the status bit until the driver's ack */
	assert_int_equal(virtio_net_announce(t->net), 0);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 6, 2),
			 VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	assert_int_equal(ctrl(t, (uint8_t[]){3, 0}, 2), VIRTIO_NET_OK);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 6, 2), VIRTIO_NET_S_LINK_UP);
	/* a command without an ack byte breaks the queue */
	vf_post(&t->f, 2, (struct vf_buf[]){{CTB, 3, false}}, 1);
	vf_kick(&t->f, 2);
	for (int i = 0; i < 20000 && !(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(200);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	/* reset: the address it was created with */
	vf_set_status(&t->f, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + i, 1), MAC[i]);
	t_free(t);
}

/* Without GUEST_ANNOUNCE there is nothing to ask. */
static void announce_needs_the_feature(void **state)
{
	(void)state;
	struct t *t = t_new();
	assert_int_equal(virtio_net_announce(t->net), -ENOTSUP); /* no driver yet */
	t_start(t, WANT | 1ULL << VIRTIO_NET_F_CTRL_VQ);
	assert_int_equal(virtio_net_announce(t->net), -ENOTSUP);
	assert_int_equal(ctrl(t, (uint8_t[]){3, 0}, 2), VIRTIO_NET_ERR);
	t_free(t);
}

static void peer_gone_drops_transmits(void **state)
{
	(void)state;
	struct t *t = t_new();
	t_start(t, WANT);
	int fires = t->f.route_fires[0] + t->f.signal_msi_count;
	close(t->peer);
	for (int i = 0; i < 20000 && stats(t).backend_up; i++)
		usleep(200);
	assert_false(stats(t).backend_up);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 6, 2), 0); /* link down */
	/* and told through the configuration-change vector */
	assert_true(t->f.route_fires[0] + t->f.signal_msi_count > fires);
	struct vnet_hdr ok = {0};
	tx(t, &ok, VNET_HDR_LEN, 60, 1);
	assert_int_equal(stats(t).tx_drops, 1);
	t->peer = socket(AF_UNIX, SOCK_DGRAM, 0); /* for t_free */
	t_free(t);
}

struct reattach {
	struct virtio_net *net;
	int fd, ret;
};

static void reattach_on_loop(void *arg)
{
	struct reattach *r = arg;
	r->ret = virtio_net_reattach(r->net, r->fd);
}

/* A switch that comes back (the device layer joins it again): the new host side is taken, the
 * link is up again and told, frames flow both ways; a NIC still up takes no second one. */
static void peer_back_after_reattach(void **state)
{
	(void)state;
	struct t *t = t_new();
	t_start(t, WANT);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	struct reattach r = {t->net, sv[0], 0};
	assert_int_equal(event_loop_call_wait(t->f.loop, reattach_on_loop, &r), 0);
	assert_int_equal(r.ret, -EBUSY); /* the first peer is still there */
	close(t->peer);
	for (int i = 0; i < 20000 && virtio_net_backend_up(t->net); i++)
		usleep(200);
	assert_false(virtio_net_backend_up(t->net));
	int fires = t->f.route_fires[0] + t->f.signal_msi_count;
	assert_int_equal(event_loop_call_wait(t->f.loop, reattach_on_loop, &r), 0);
	assert_int_equal(r.ret, 0);
	t->peer = sv[1];
	assert_true(virtio_net_backend_up(t->net));
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 6, 2), VIRTIO_NET_S_LINK_UP);
	assert_true(t->f.route_fires[0] + t->f.signal_msi_count > fires);
	struct vnet_hdr ok = {0};
	uint8_t buf[VNET_MAX_MSG];
	tx(t, &ok, VNET_HDR_LEN, 60, 3);
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), VNET_HDR_LEN + 60);
	assert_int_equal(buf[VNET_HDR_LEN + 5], 5 ^ 3);
	assert_int_equal(stats(t).tx_drops, 0);
	t_free(t);
}

/* --- multi-queue ------------------------------------------------------------------------- */

#define MQ_PAIRS 4
#define WANT_MQ (WANT_CTRL | 1ULL << VIRTIO_NET_F_MQ)

/* Every pair's queues (receive 2i on vector 2i+1, transmit 2i+1 on 2i+2) and the control queue. */
static void t_start_mq(struct t *t, uint64_t want)
{
	vf_msix_enable(&t->f, 2 * MQ_PAIRS + 2);
	uint8_t s = vf_negotiate(&t->f, want);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	vf_w(&t->f, VF_COMMON(0x10), 2, 0);
	for (unsigned q = 0; q <= 2 * MQ_PAIRS; q++)
		vf_queue_setup(&t->f, q, QSIZE, (uint16_t)(q + 1));
	vf_set_status(&t->f, s | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_DRIVER_OK);
	t->nctrl = 0;
}

#define FLOW_FRAME 64

/* A UDP/IPv4 frame (FLOW_FRAME bytes at e) of flow `port`: 169.254.0.1:port <-> 169.254.0.2:5000,
 * from the peer (to_guest) or its reply from the guest. */
static void udp_frame(uint8_t *e, uint16_t port, bool to_guest)
{
	static const uint8_t peer_ip[4] = {169, 254, 0, 1}, guest_ip[4] = {169, 254, 0, 2};
	static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
	uint8_t *ip = e + 14, pp[2] = {(uint8_t)(port >> 8), (uint8_t)port}, gp[2] = {0x13, 0x88};
	memset(e, 0, FLOW_FRAME);
	memcpy(e, to_guest ? MAC : peer_mac, 6);
	memcpy(e + 6, to_guest ? peer_mac : MAC, 6);
	e[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 50; /* total length */
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	memcpy(ip + 12, to_guest ? peer_ip : guest_ip, 4);
	memcpy(ip + 16, to_guest ? guest_ip : peer_ip, 4);
	memcpy(ip + 20, to_guest ? pp : gp, 2); /* source port */
	memcpy(ip + 22, to_guest ? gp : pp, 2); /* destination port */
}

/* A UDP/IPv4 frame of flow `port` from the peer. */
static void peer_send_udp(struct t *t, uint16_t port)
{
	uint8_t m[VNET_HDR_LEN + FLOW_FRAME] = {0};
	udp_frame(m + VNET_HDR_LEN, port, true);
	assert_int_equal(send(t->peer, m, sizeof(m), 0), (ssize_t)sizeof(m));
}

/* The guest sends flow `port`'s reply on pair `pair` (frame: FLOW_FRAME bytes, or `cut` bytes of
 * it); the peer gets it. */
static void guest_send_udp(struct t *t, unsigned pair, uint16_t port, size_t cut)
{
	unsigned q = 2 * pair + 1;
	uint64_t gpa = TXB + 0x10000ULL * (pair + 1);
	uint8_t *p = vf_ram(&t->f, gpa, VNET_HDR_LEN + FLOW_FRAME);
	memset(p, 0, VNET_HDR_LEN);
	udp_frame(p + VNET_HDR_LEN, port, false);
	struct vf_buf b = {gpa, (uint32_t)(VNET_HDR_LEN + cut), false};
	uint16_t before = vf_used_idx(&t->f, q);
	vf_post(&t->f, q, &b, 1);
	vf_kick(&t->f, q);
	wait_used(t, q, (uint16_t)(before + 1));
	uint8_t buf[VNET_MAX_MSG];
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), (ssize_t)(VNET_HDR_LEN + cut));
}

static uint16_t rx_used_total(struct t *t)
{
	uint16_t n = 0;
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		n += vf_used_idx(&t->f, 2 * i);
	return n;
}

/* Send `n` frames of flows first.. and wait until all are in receive queues. */
static void steer_flows(struct t *t, uint16_t first, unsigned n)
{
	uint16_t before = rx_used_total(t);
	for (unsigned i = 0; i < n; i++)
		peer_send_udp(t, (uint16_t)(first + i));
	for (int i = 0; i < 20000 && rx_used_total(t) != before + n; i++) /* against a hang */
		usleep(200);
	assert_int_equal(rx_used_total(t), before + n);
}

static void multi_queue_pairs_and_steering(void **state)
{
	(void)state;
	struct t *t = t_new_pairs(MQ_PAIRS);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 8, 2), MQ_PAIRS);
	assert_int_equal(vf_r(&t->f, VF_COMMON(0x12), 2), 2 * MQ_PAIRS + 1); /* num_queues */
	t_start_mq(t, WANT_MQ);
	for (unsigned i = 0; i < MQ_PAIRS; i++) { /* 48 buffers on every receive queue */
		for (unsigned b = 0; b < 48; b++) {
			struct vf_buf rb = {RXB + 0x1000ULL * (i * 48 + b), 2048, true};
			vf_post(&t->f, 2 * i, &rb, 1);
		}
		vf_kick(&t->f, 2 * i);
	}
	/* After reset one pair is in use: every flow lands in receive queue 0. */
	steer_flows(t, 1000, 8);
	assert_int_equal(vf_used_idx(&t->f, 0), 8);
	assert_int_equal(stats(t).pairs, 1);
	/* Hostile VQ_PAIRS_SET: 0, more than offered, short or long data: refused, nothing changes
	 */
	const uint8_t bad[][5] = {{4, 0, 0, 0}, {4, 0, MQ_PAIRS + 1, 0}, {4, 0, 0xFF, 0xFF},
				  {4, 0, 2},	{4, 0, 2, 0, 0},	 {4, 1, 2, 0}};
	const size_t badlen[] = {4, 4, 4, 3, 5, 4};
	for (size_t i = 0; i < sizeof(badlen) / sizeof(badlen[0]); i++)
		assert_int_equal(ctrl(t, bad[i], badlen[i]), VIRTIO_NET_ERR);
	assert_int_equal(stats(t).pairs, 1);
	/* All four pairs: flows spread over every queue, one flow keeps its queue. */
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, MQ_PAIRS, 0}, 4), VIRTIO_NET_OK);
	assert_int_equal(stats(t).pairs, MQ_PAIRS);
	steer_flows(t, 2000, 16);
	struct virtio_net_stats s = stats(t);
	unsigned used_queues = 0;
	uint64_t sum = 0;
	for (unsigned i = 0; i < MQ_PAIRS; i++) {
		used_queues += s.rx_queue_frames[i] != 0;
		sum += s.rx_queue_frames[i];
		assert_int_equal(s.rx_queue_frames[i], vf_used_idx(&t->f, 2 * i));
	}
	assert_int_equal(sum, 24);
	assert_int_equal(used_queues, MQ_PAIRS);
	/* Even ports only (Linux's connect() prefers them): still every queue. */
	uint64_t before[MQ_PAIRS];
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		before[i] = s.rx_queue_frames[i];
	for (uint16_t p = 40000; p < 40032; p += 2)
		steer_flows(t, p, 1);
	s = stats(t);
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		assert_true(s.rx_queue_frames[i] > before[i]);
	uint16_t idx[MQ_PAIRS];
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		idx[i] = vf_used_idx(&t->f, 2 * i);
	steer_flows(t, 2005, 1); /* again: the queue it took the first time */
	steer_flows(t, 2005, 1);
	unsigned grew = 0;
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		if (vf_used_idx(&t->f, 2 * i) != idx[i]) {
			assert_int_equal(vf_used_idx(&t->f, 2 * i), idx[i] + 2);
			grew++;
		}
	assert_int_equal(grew, 1);
	/* Transmit on the last pair's queue: the peer gets it, counted for that pair. */
	uint8_t *p = vf_ram(&t->f, TXB, 0x1000);
	memset(p, 0, VNET_HDR_LEN + 60);
	p[VNET_HDR_LEN + 5] = 0x42;
	struct vf_buf tb = {TXB, VNET_HDR_LEN + 60, false};
	unsigned txq = 2 * (MQ_PAIRS - 1) + 1;
	vf_post(&t->f, txq, &tb, 1);
	vf_kick(&t->f, txq);
	wait_used(t, txq, 1);
	uint8_t buf[VNET_MAX_MSG];
	assert_int_equal(peer_recv(t, buf, sizeof(buf)), VNET_HDR_LEN + 60);
	assert_int_equal(buf[VNET_HDR_LEN + 5], 0x42);
	assert_int_equal(stats(t).tx_queue_frames[MQ_PAIRS - 1], 1);
	/* Back to one pair, then a reset: one pair again. */
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, 1, 0}, 4), VIRTIO_NET_OK);
	uint16_t q0 = vf_used_idx(&t->f, 0);
	steer_flows(t, 3000, 4);
	assert_int_equal(vf_used_idx(&t->f, 0), q0 + 4);
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, 2, 0}, 4), VIRTIO_NET_OK);
	vf_set_status(&t->f, 0);
	assert_int_equal(stats(t).pairs, 1);
	t_free(t);
}

/* 48 buffers on every receive queue. */
static void mq_post_rx(struct t *t)
{
	for (unsigned i = 0; i < MQ_PAIRS; i++) {
		for (unsigned b = 0; b < 48; b++) {
			struct vf_buf rb = {RXB + 0x1000ULL * (i * 48 + b), 2048, true};
			vf_post(&t->f, 2 * i, &rb, 1);
		}
		vf_kick(&t->f, 2 * i);
	}
}

/* The receive queue a frame of flow `port` from the peer lands in. */
static unsigned rx_queue_of(struct t *t, uint16_t port)
{
	uint16_t idx[MQ_PAIRS];
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		idx[i] = vf_used_idx(&t->f, 2 * i);
	steer_flows(t, port, 1);
	for (unsigned i = 0; i < MQ_PAIRS; i++)
		if (vf_used_idx(&t->f, 2 * i) != idx[i])
			return i;
	fail();
	return 0;
}

static void multi_queue_replies_follow_transmit(void **state)
{
	(void)state;
	struct t *t = t_new_pairs(MQ_PAIRS);
	t_start_mq(t, WANT_MQ);
	mq_post_rx(t);
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, MQ_PAIRS, 0}, 4), VIRTIO_NET_OK);
	/* Each flow first lands where its hash says; once the guest sent on another pair, the
	 * flow's frames land on that pair's receive queue, and move when the guest moves. */
	unsigned on[8];
	for (uint16_t f = 0; f < 8; f++) {
		unsigned hashed = rx_queue_of(t, (uint16_t)(40000 + 2 * f));
		assert_int_equal(rx_queue_of(t, (uint16_t)(40000 + 2 * f)), hashed);
		on[f] = (hashed + 1 + f % 3) % MQ_PAIRS;
		guest_send_udp(t, on[f], (uint16_t)(40000 + 2 * f), FLOW_FRAME);
	}
	for (uint16_t f = 0; f < 8; f++)
		assert_int_equal(rx_queue_of(t, (uint16_t)(40000 + 2 * f)), on[f]);
	guest_send_udp(t, (on[0] + 1) % MQ_PAIRS, 40000, FLOW_FRAME);
	assert_int_equal(rx_queue_of(t, 40000), (on[0] + 1) % MQ_PAIRS);
	/* A transmit cut inside its IP header notes nothing (the flow stays where it was). */
	guest_send_udp(t, (on[1] + 1) % MQ_PAIRS, 40002, 14 + 10);
	assert_int_equal(rx_queue_of(t, 40002), on[1]);
	/* Fewer pairs in use: a flow noted on a pair no longer in use goes by its hash. */
	guest_send_udp(t, 3, 40004, FLOW_FRAME);
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, 2, 0}, 4), VIRTIO_NET_OK);
	assert_true(rx_queue_of(t, 40004) < 2);
	/* A reset forgets the flows. */
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, MQ_PAIRS, 0}, 4), VIRTIO_NET_OK);
	unsigned hashed = rx_queue_of(t, 40100);
	guest_send_udp(t, (hashed + 1) % MQ_PAIRS, 40100, FLOW_FRAME);
	assert_int_equal(rx_queue_of(t, 40100), (hashed + 1) % MQ_PAIRS);
	vf_set_status(&t->f, 0);
	t_start_mq(t, WANT_MQ);
	mq_post_rx(t);
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, MQ_PAIRS, 0}, 4), VIRTIO_NET_OK);
	assert_int_equal(rx_queue_of(t, 40100), hashed);
	t_free(t);
}

static void multi_queue_needs_the_feature(void **state)
{
	(void)state;
	struct t *t = t_new_pairs(MQ_PAIRS);
	t_start_mq(t, WANT_CTRL); /* MQ not negotiated: the command is refused */
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, 2, 0}, 4), VIRTIO_NET_ERR);
	assert_int_equal(stats(t).pairs, 1);
	t_free(t);
	/* A one-pair NIC does not offer MQ. */
	t = t_new();
	t_start(t, WANT_CTRL | 1ULL << VIRTIO_NET_F_MQ);
	assert_int_equal(ctrl(t, (uint8_t[]){4, 0, 1, 0}, 4), VIRTIO_NET_ERR);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 8, 2), 1);
	t_free(t);
}

static void nic_options(void **state)
{
	(void)state;
	struct nic_config c;
	assert_int_equal(nic_config_parse("switch=sw0", &c), 0);
	assert_int_equal(c.backend, NIC_SWITCH);
	assert_string_equal(c.name, "sw0");
	assert_false(c.has_mac);
	assert_int_equal(nic_config_parse("switch=sw0,mac=02:aa:bb:cc:dd:ee,vlan=10", &c), 0);
	assert_true(c.has_mac);
	assert_int_equal(c.mac[1], 0xaa);
	assert_int_equal(c.vlan, 10);
	assert_int_equal(nic_config_parse("tap=tap0", &c), 0);
	assert_int_equal(c.backend, NIC_TAP);
	assert_int_equal(c.queues, 1);
	assert_int_equal(nic_config_parse("tap=tap0,queues=8", &c), 0);
	assert_int_equal(c.queues, 8);
	const char *bad[] = {"",
			     "switch=a,queues=0",
			     "switch=a,queues=9",
			     "switch=a,queues=",
			     "switch=a,queues=2x",
			     "switch=",
			     "switch=a,tap=b",
			     "tap=a,vlan=3",
			     "switch=a,vlan=0",
			     "switch=a,vlan=4095",
			     "switch=a,mac=01:00:00:00:00:01", /* multicast */
			     "switch=a,mac=00:00:00:00:00:00",
			     "switch=a,mac=02:00:00:00:00",
			     "switch=a,mac=02:00:00:00:00:0g",
			     "switch=a,",
			     "switch=../x",
			     "tap=averyveryverylongname",
			     "mac=02:00:00:00:00:01",
			     "switch=a,speed=10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(nic_config_parse(bad[i], &c), -EINVAL);
	/* stable, locally administered, unicast, distinct per VM and index */
	uint8_t a[6], b[6], c2[6];
	nic_default_mac("vm1", 0, a);
	nic_default_mac("vm1", 0, b);
	assert_memory_equal(a, b, 6);
	assert_int_equal(a[0], 0x02);
	nic_default_mac("vm1", 1, b);
	nic_default_mac("vm2", 0, c2);
	assert_memory_not_equal(a, b, 6);
	assert_memory_not_equal(a, c2, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_and_identity),
	    cmocka_unit_test(transmit_passes_header_and_frame),
	    cmocka_unit_test(hostile_transmits_are_dropped_and_counted),
	    cmocka_unit_test(malformed_transmit_ring_needs_reset),
	    cmocka_unit_test(receive_mergeable_and_back_pressure),
	    cmocka_unit_test(hostile_peer_frames_are_dropped),
	    cmocka_unit_test(hostile_peer_frames_direct),
	    cmocka_unit_test(control_queue_filters_and_addresses),
	    cmocka_unit_test(announce_needs_the_feature),
	    cmocka_unit_test(peer_gone_drops_transmits),
	    cmocka_unit_test(peer_back_after_reattach),
	    cmocka_unit_test(multi_queue_pairs_and_steering),
	    cmocka_unit_test(multi_queue_replies_follow_transmit),
	    cmocka_unit_test(multi_queue_needs_the_feature),
	    cmocka_unit_test(nic_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
