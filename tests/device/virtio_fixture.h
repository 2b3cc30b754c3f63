/* Test bench for virtio-pci devices without a CPU: a real PCI bus whose KVM side is faked (MSI
 * routes, irqfds and ioeventfds recorded and counted, INTx level kept), a guest RAM buffer, and a
 * minimal driver that negotiates features, sets up split queues and posts chains, the way Linux's
 * virtio_pci_modern does it. */
#ifndef MINIVMM_TESTS_VIRTIO_FIXTURE_H
#define MINIVMM_TESTS_VIRTIO_FIXTURE_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/io_bus.h"
#include "devices/irq_ops.h"
#include "devices/pci.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_pci.h"
#include "lib/event_loop.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define VF_RAM (32 * 1024 * 1024)
#define VF_MAX_IOEVENTFD 64
#define VF_RING(q) (0x10000ULL + (uint64_t)(q)*0x4000) /* desc, avail +0x1000, used +0x2000 */
#define VF_MSI_GSI0 100

struct vf_ioeventfd {
	uint64_t addr;
	unsigned len;
	bool match;
	uint64_t data;
	int fd;
};

struct vf {
	struct io_bus pio, mmio;
	struct pci_bus *bus;
	struct guest_memory mem;
	unsigned devfn;
	uint64_t bar;
	/* fake KVM */
	struct irq_ops irq;
	bool use_irq_ops;
	pthread_mutex_t lock;
	unsigned nroutes;
	uint64_t route_addr[64];
	uint32_t route_data[64];
	int route_fires[64];
	int signal_msi_count;
	bool intx;
	int intx_fires, intx_resample_fd;
	struct vf_ioeventfd ioev[VF_MAX_IOEVENTFD];
	unsigned nioev;
	/* the event loop, run by a thread, when the device gets one */
	struct event_loop *loop;
	pthread_t loop_thread;
	bool loop_running;
	/* driver-side queue state */
	uint16_t qsize[VIRTIO_PCI_MAX_QUEUES];
	uint16_t avail_idx[VIRTIO_PCI_MAX_QUEUES];
	uint16_t next_desc[VIRTIO_PCI_MAX_QUEUES];
};

static inline int vf_set_irq(void *o, unsigned gsi, bool level)
{
	struct vf *f = o;
	(void)gsi;
	f->intx = level;
	return 0;
}

static inline int vf_signal_msi(void *o, uint64_t a, uint32_t d)
{
	struct vf *f = o;
	(void)a;
	(void)d;
	__atomic_add_fetch(&f->signal_msi_count, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static inline void vf_reset(void *o)
{
	(void)o;
}

static inline int vf_route_add(void *o, uint64_t a, uint32_t d)
{
	struct vf *f = o;
	pthread_mutex_lock(&f->lock);
	int r = f->nroutes < 64 ? (int)(VF_MSI_GSI0 + f->nroutes) : -ENOSPC;
	if (r >= 0) {
		f->route_addr[f->nroutes] = a;
		f->route_data[f->nroutes++] = d;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static inline int vf_route_set(void *o, int gsi, uint64_t a, uint32_t d)
{
	struct vf *f = o;
	f->route_addr[gsi - VF_MSI_GSI0] = a;
	f->route_data[gsi - VF_MSI_GSI0] = d;
	return 0;
}

static inline int vf_route_fire(void *o, int gsi)
{
	struct vf *f = o;
	__atomic_add_fetch(&f->route_fires[gsi - VF_MSI_GSI0], 1, __ATOMIC_SEQ_CST);
	return 0;
}

static inline void vf_route_del(void *o, int gsi)
{
	(void)o;
	(void)gsi;
}

static inline int vf_intx_add(void *o, unsigned gsi, int *rfd)
{
	struct vf *f = o;
	(void)gsi;
	f->intx_resample_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	*rfd = f->intx_resample_fd;
	return 0;
}

static inline int vf_intx_fire(void *o, int h)
{
	struct vf *f = o;
	(void)h;
	__atomic_add_fetch(&f->intx_fires, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static inline void vf_intx_del(void *o, int h)
{
	struct vf *f = o;
	(void)h;
	close(f->intx_resample_fd);
}

static inline int vf_ioev_add(void *o, uint64_t addr, unsigned len, bool match, uint64_t data,
			      int fd)
{
	struct vf *f = o;
	if (f->nioev == VF_MAX_IOEVENTFD)
		return -ENOSPC;
	f->ioev[f->nioev++] = (struct vf_ioeventfd){addr, len, match, data, fd};
	return 0;
}

static inline void vf_ioev_del(void *o, uint64_t addr, unsigned len, bool match, uint64_t data,
			       int fd)
{
	struct vf *f = o;
	for (unsigned i = 0; i < f->nioev; i++)
		if (f->ioev[i].addr == addr && f->ioev[i].fd == fd && f->ioev[i].len == len &&
		    f->ioev[i].match == match && f->ioev[i].data == data) {
			f->ioev[i] = f->ioev[--f->nioev];
			return;
		}
}

static inline void *vf_loop_main(void *arg)
{
	event_loop_run(arg);
	return NULL;
}

/* The bus and RAM; with_loop: irq ops and an event loop run by a thread (the fast paths). */
static inline int vf_init(struct vf *f, bool with_loop)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->irq = (struct irq_ops){.msi_route_add = vf_route_add,
				  .msi_route_set = vf_route_set,
				  .msi_route_fire = vf_route_fire,
				  .msi_route_del = vf_route_del,
				  .intx_add = vf_intx_add,
				  .intx_fire = vf_intx_fire,
				  .intx_del = vf_intx_del,
				  .ioeventfd_add = vf_ioev_add,
				  .ioeventfd_del = vf_ioev_del,
				  .opaque = f};
	if (io_bus_init(&f->pio) || io_bus_init(&f->mmio))
		return -1;
	struct pci_bus_ops ops = {.set_irq = vf_set_irq,
				  .signal_msi = vf_signal_msi,
				  .reset = vf_reset,
				  .opaque = f,
				  .irq = with_loop ? &f->irq : NULL};
	if (pci_bus_create(&f->pio, &f->mmio, &ops, &f->bus) < 0)
		return -1;
	if (guest_memory_create(&f->mem, VF_RAM) < 0)
		return -1;
	if (with_loop) {
		if (event_loop_create(&f->loop) < 0)
			return -1;
	}
	return 0;
}

static inline void vf_loop_start(struct vf *f)
{
	if (f->loop && !f->loop_running)
		f->loop_running = pthread_create(&f->loop_thread, NULL, vf_loop_main, f->loop) == 0;
}

static inline void vf_loop_stop(struct vf *f)
{
	if (!f->loop_running)
		return;
	event_loop_stop(f->loop);
	pthread_join(f->loop_thread, NULL);
	f->loop_running = false;
}

static inline void vf_fini(struct vf *f)
{
	vf_loop_stop(f);
	if (f->loop)
		event_loop_destroy(f->loop);
	pci_bus_destroy(f->bus);
	guest_memory_destroy(&f->mem);
	io_bus_destroy(&f->pio);
	io_bus_destroy(&f->mmio);
	pthread_mutex_destroy(&f->lock);
}

static inline void *vf_ram(struct vf *f, uint64_t gpa, uint64_t len)
{
	return guest_memory_ptr(&f->mem, gpa, len);
}

/* BAR0 accesses. */
static inline uint64_t vf_r(struct vf *f, uint64_t off, unsigned len)
{
	uint8_t d[8] = {0};
	if (!io_bus_access(&f->mmio, f->bar + off, d, len, false))
		return ~0ULL;
	return get_le64(d) & (len == 8 ? ~0ULL : (1ULL << (8 * len)) - 1);
}

static inline void vf_w(struct vf *f, uint64_t off, unsigned len, uint64_t v)
{
	uint8_t d[8];
	put_le64(d, v);
	io_bus_access(&f->mmio, f->bar + off, d, len, true);
}

#define VF_COMMON(reg) (VIRTIO_PCI_COMMON_OFF + (reg))
static inline uint8_t vf_status(struct vf *f)
{
	return (uint8_t)vf_r(f, VF_COMMON(0x14), 1);
}

static inline void vf_set_status(struct vf *f, uint8_t s)
{
	vf_w(f, VF_COMMON(0x14), 1, s);
}

/* Find the device (first non-bridge slot), enable decoding and bus mastering. */
static inline void vf_enable(struct vf *f)
{
	for (unsigned s = 1; s < PCI_SLOTS; s++)
		if (pci_config_read(f->bus, s << 3, PCI_VENDOR_ID, 2) == VIRTIO_PCI_VENDOR) {
			f->devfn = s << 3;
			break;
		}
	pci_config_write(f->bus, f->devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f->bar = (pci_config_read(f->bus, f->devfn, PCI_BAR0, 4) & ~0xFULL) |
		 (uint64_t)pci_config_read(f->bus, f->devfn, PCI_BAR0 + 4, 4) << 32;
}

static inline unsigned vf_find_cap(struct vf *f, uint8_t id, uint8_t vtype)
{
	unsigned p = pci_config_read(f->bus, f->devfn, PCI_CAP_PTR, 1);
	for (int n = 0; p && n < 48; n++) {
		if (pci_config_read(f->bus, f->devfn, p, 1) == id &&
		    (id != 0x09 || pci_config_read(f->bus, f->devfn, p + 3, 1) == vtype))
			return p;
		p = pci_config_read(f->bus, f->devfn, p + 1, 1);
	}
	return 0;
}

/* MSI-X on, every vector unmasked with message data 0x40 + v. */
static inline void vf_msix_enable(struct vf *f, unsigned nvec)
{
	unsigned c = vf_find_cap(f, PCI_CAP_ID_MSIX, 0);
	for (unsigned v = 0; v < nvec; v++) {
		uint64_t e = VIRTIO_PCI_MSIX_TABLE_OFF + 16 * v;
		vf_w(f, e, 4, 0xFEE00000);
		vf_w(f, e + 4, 4, 0);
		vf_w(f, e + 8, 4, 0x40 + v);
		vf_w(f, e + 12, 4, 0);
	}
	uint32_t ctrl = pci_config_read(f->bus, f->devfn, c + 2, 2);
	pci_config_write(f->bus, f->devfn, c + 2, 2, ctrl | 0x8000);
}

/* ACKNOWLEDGE, DRIVER, features (VERSION_1 | want), FEATURES_OK; returns the status read back. */
static inline uint8_t vf_negotiate(struct vf *f, uint64_t want)
{
	vf_set_status(f, 0);
	vf_set_status(f, VIRTIO_STATUS_ACKNOWLEDGE);
	vf_set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vf_w(f, VF_COMMON(0x00), 4, 0);
	uint64_t offered = vf_r(f, VF_COMMON(0x04), 4);
	vf_w(f, VF_COMMON(0x00), 4, 1);
	offered |= vf_r(f, VF_COMMON(0x04), 4) << 32;
	uint64_t f_ = want & offered;
	vf_w(f, VF_COMMON(0x08), 4, 0);
	vf_w(f, VF_COMMON(0x0C), 4, (uint32_t)f_);
	vf_w(f, VF_COMMON(0x08), 4, 1);
	vf_w(f, VF_COMMON(0x0C), 4, (uint32_t)(f_ >> 32));
	vf_set_status(f,
		      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return vf_status(f);
}

/* Queue q: `size` entries at VF_RING(q), MSI-X vector `vector`; then enabled. */
static inline void vf_queue_setup(struct vf *f, unsigned q, uint16_t size, uint16_t vector)
{
	vf_w(f, VF_COMMON(0x16), 2, q);
	vf_w(f, VF_COMMON(0x18), 2, size);
	vf_w(f, VF_COMMON(0x1A), 2, vector);
	vf_w(f, VF_COMMON(0x20), 4, VF_RING(q));
	vf_w(f, VF_COMMON(0x24), 4, 0);
	vf_w(f, VF_COMMON(0x28), 4, VF_RING(q) + 0x1000);
	vf_w(f, VF_COMMON(0x2C), 4, 0);
	vf_w(f, VF_COMMON(0x30), 4, VF_RING(q) + 0x2000);
	vf_w(f, VF_COMMON(0x34), 4, 0);
	memset(vf_ram(f, VF_RING(q), 0x3000), 0, 0x3000);
	vf_w(f, VF_COMMON(0x1C), 2, 1);
	f->qsize[q] = size;
	f->avail_idx[q] = 0;
	f->next_desc[q] = 0;
}

/* Descriptor i of queue q. */
static inline void vf_desc(struct vf *f, unsigned q, unsigned i, uint64_t addr, uint32_t len,
			   uint16_t flags, uint16_t next)
{
	uint8_t *d = vf_ram(f, VF_RING(q) + 16ULL * i, 16);
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

struct vf_buf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/* Post a chain of n buffers on queue q (descriptors taken round-robin); returns its head. */
static inline uint16_t vf_post(struct vf *f, unsigned q, const struct vf_buf *b, unsigned n)
{
	uint16_t head = f->next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % f->qsize[q]);
		uint16_t next = (uint16_t)((idx + 1) % f->qsize[q]);
		vf_desc(f, q, idx, b[i].gpa, b[i].len,
			(b[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			next);
	}
	f->next_desc[q] = (uint16_t)((head + n) % f->qsize[q]);
	uint8_t *avail = vf_ram(f, VF_RING(q) + 0x1000, 4 + 2 * f->qsize[q]);
	put_le16(avail + 4 + 2 * (f->avail_idx[q] % f->qsize[q]), head);
	f->avail_idx[q]++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	put_le16(avail + 2, f->avail_idx[q]);
	return head;
}

static inline void vf_kick(struct vf *f, unsigned q)
{
	vf_w(f, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, 2, q);
}

static inline uint16_t vf_used_idx(struct vf *f, unsigned q)
{
	return __atomic_load_n((uint16_t *)vf_ram(f, VF_RING(q) + 0x2002, 2), __ATOMIC_ACQUIRE);
}

/* Used element `i` (0-based count) of queue q: id and len. */
static inline void vf_used(struct vf *f, unsigned q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint8_t *e = vf_ram(f, VF_RING(q) + 0x2004 + 8ULL * (i % f->qsize[q]), 8);
	*id = get_le32(e);
	*len = get_le32(e + 4);
}

#endif
