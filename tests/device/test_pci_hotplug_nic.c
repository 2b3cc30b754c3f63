/* A virtio-net function hot-plugged into an ACPI hot-plug slot and ejected by the guest while a
 * transmit is in flight (the switch's end does not read, so the device holds a chain and waits
 * for EPOLLOUT).  The eject's teardown runs on the loop thread, as vm_pci_hotplug.c does it: the
 * function leaves the bus (config space and BAR gone, ioeventfds removed), the slot is free again,
 * and a new NIC in the same slot works.  Under ASan a use of the freed device fails the test.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "devices/pci_hotplug.h"
#include "devices/virtio/net/virtio_net.h"
#include "memory/layout.h"
#include "net/vnet_hdr.h"
#include "tests/device/virtio_fixture.h"

#define TXB 0x100000ULL
#define QSIZE 64
#define FRAME 1514

struct rig {
	struct vf f;
	struct pci_hotplug *hp;
	struct virtio_net *net;
	int peer;
	unsigned slot;
	unsigned notifies;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool torn_down;
};

static void on_notify(void *o)
{
	((struct rig *)o)->notifies++;
}

/* On the loop thread: nothing of the NIC's runs meanwhile. */
static void teardown(void *o)
{
	struct rig *r = o;
	virtio_net_destroy(r->net);
	r->net = NULL;
	pci_hotplug_release(r->hp, r->slot);
	pthread_mutex_lock(&r->lock);
	r->torn_down = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void on_eject(void *o, unsigned slot)
{
	struct rig *r = o;
	assert_int_equal(slot, r->slot);
	assert_int_equal(event_loop_call(r->f.loop, teardown, r), 0);
}

static void plug(struct rig *r)
{
	int slot = pci_hotplug_reserve(r->hp);
	assert_true(slot > 0);
	r->slot = (unsigned)slot;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	int small = 4096; /* a few frames fill it */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	r->peer = sv[1];
	struct virtio_net_env env = {.pci = r->f.bus,
				     .mem = &r->f.mem,
				     .loop = r->f.loop,
				     .fd = sv[0],
				     .is_socket = true,
				     .mac = {2, 0, 0, 0, 0, 1},
				     .slot = r->slot};
	assert_int_equal(virtio_net_create(&env, &r->net), 0);
	assert_int_equal(pci_hotplug_insert(r->hp, r->slot), 0);
	r->f.devfn = r->slot << 3;
	pci_config_write(r->f.bus, r->f.devfn, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	r->f.bar = (pci_config_read(r->f.bus, r->f.devfn, PCI_BAR0, 4) & ~0xFULL) |
		   (uint64_t)pci_config_read(r->f.bus, r->f.devfn, PCI_BAR0 + 4, 4) << 32;
	memset(r->f.avail_idx, 0, sizeof(r->f.avail_idx));
	memset(r->f.next_desc, 0, sizeof(r->f.next_desc));
	vf_msix_enable(&r->f, 3);
	uint8_t s = vf_negotiate(&r->f, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_NET_F_MAC);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	vf_w(&r->f, VF_COMMON(0x10), 2, 0);
	vf_queue_setup(&r->f, 0, QSIZE, 1);
	vf_queue_setup(&r->f, 1, QSIZE, 2);
	vf_set_status(&r->f, s | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vf_status(&r->f) & VIRTIO_STATUS_DRIVER_OK);
}

/* Post n frames on the transmit queue and kick once. */
static void tx_frames(struct rig *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = TXB + 0x1000ULL * i;
		uint8_t *p = vf_ram(&r->f, gpa, 0x1000);
		memset(p, 0, VNET_HDR_LEN);
		memset(p + VNET_HDR_LEN, (int)i, FRAME);
		struct vf_buf b = {gpa, VNET_HDR_LEN + FRAME, false};
		vf_post(&r->f, 1, &b, 1);
	}
	vf_kick(&r->f, 1);
}

static uint32_t hp_rd(struct rig *r, unsigned off)
{
	uint8_t d[4];
	pci_hotplug_io(r->hp, (uint16_t)(LAYOUT_PORT_PCI_HOTPLUG + off), d, 4, false);
	return get_le32(d);
}

static void hp_wr(struct rig *r, unsigned off, uint32_t v)
{
	uint8_t d[4];
	put_le32(d, v);
	pci_hotplug_io(r->hp, (uint16_t)(LAYOUT_PORT_PCI_HOTPLUG + off), d, 4, true);
}

static void wait_torn_down(struct rig *r)
{
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < 100 && !r->torn_down; i++) { /* bounded only to stop a hang */
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += 1;
		pthread_cond_timedwait(&r->cond, &r->lock, &t);
	}
	bool done = r->torn_down;
	r->torn_down = false;
	pthread_mutex_unlock(&r->lock);
	assert_true(done);
}

static void test_eject_with_transmit_in_flight(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	assert_int_equal(vf_init(&r->f, true), 0);
	struct pci_hotplug_ops ops = {on_notify, on_eject, r};
	assert_int_equal(pci_hotplug_create(0xFFFFFFFEu, &ops, &r->hp), 0);
	vf_loop_start(&r->f);

	plug(r);
	assert_int_equal(r->notifies, 1);
	assert_int_equal(hp_rd(r, 0), 1u << r->slot); /* PCNT's Notify (SLxx, 1) */
	uint64_t bar = r->f.bar;
	assert_true(r->f.nioev > 0);
	/* More frames than the socket takes: the device holds the rest and waits for EPOLLOUT. */
	tx_frames(r, 32);
	for (int i = 0; i < 2000 && vf_used_idx(&r->f, 1) == 0; i++)
		usleep(500);
	uint16_t used = vf_used_idx(&r->f, 1);
	assert_true(used > 0 && used < 32);

	/* The VMM asks for the slot back; the guest's PCNT reads the request, its _EJ0 writes. */
	assert_int_equal(pci_hotplug_remove(r->hp, r->slot), 0);
	assert_int_equal(hp_rd(r, 4), 1u << r->slot);
	hp_wr(r, 8, 1u << r->slot);
	wait_torn_down(r);

	assert_null(r->net);
	assert_int_equal(pci_config_read(r->f.bus, r->slot << 3, PCI_VENDOR_ID, 2), 0xFFFF);
	assert_int_equal(vf_r(&r->f, VF_COMMON(0x14), 1), ~0ULL); /* the BAR is gone */
	assert_int_equal(r->f.nioev, 0);			  /* and its doorbells */
	/* The peer reading now wakes nothing freed; its socket sees the device's end closed. */
	char buf[4096];
	while (recv(r->peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	struct pollfd p = {.fd = r->peer, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(p.revents & (POLLHUP | POLLIN));
	close(r->peer);
	hp_wr(r, 8, 1u << r->slot); /* a second eject of the empty slot does nothing */
	assert_int_equal(pci_hotplug_remove(r->hp, r->slot), -ENOENT);

	/* The slot is free again: a new NIC there works. */
	unsigned slot = r->slot;
	plug(r);
	assert_int_equal(r->slot, slot);
	(void)bar;
	tx_frames(r, 1);
	for (int i = 0; i < 2000 && vf_used_idx(&r->f, 1) != 1; i++)
		usleep(500);
	assert_int_equal(vf_used_idx(&r->f, 1), 1);
	assert_true(recv(r->peer, buf, sizeof(buf), 0) > 0);

	vf_loop_stop(&r->f);
	virtio_net_destroy(r->net);
	close(r->peer);
	pci_hotplug_destroy(r->hp);
	vf_fini(&r->f);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eject_with_transmit_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
