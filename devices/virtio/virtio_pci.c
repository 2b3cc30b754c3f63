/* The virtio-pci transport (see virtio_pci.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/pci.h"
#include "devices/pci_internal.h" /* pci_msi_free when registering fails */
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_pci.h"
#include "lib/event_loop.h"
#include "lib/endian.h"
#include "lib/log.h"

#define PCI_CAP_ID_VENDOR 0x09
#define MSIX_CTRL_ENABLE_HI 0x80 /* bit 15 of Message Control, in its high byte */

struct kick {
	struct virtio_pci *vp;
	unsigned q;
	int fd; /* eventfd behind the queue's notify address; -1 without ioeventfds */
	struct event_source *src;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_pci_config cfg;
	pthread_mutex_t lock;
	const struct irq_ops *irq; /* the bus's, when ioeventfds/irqfds are in use; else NULL */

	/* common configuration */
	uint32_t dfselect, gfselect;
	uint64_t offered, driver_features, features; /* features: negotiated at FEATURES_OK */
	uint16_t msix_config, queue_select;
	uint8_t status;
	uint8_t isr;
	uint8_t config_generation;
	struct virtqueue vq[VIRTIO_PCI_MAX_QUEUES];

	/* doorbells and INTx */
	struct kick kicks[VIRTIO_PCI_MAX_QUEUES];
	uint64_t ioeventfd_base; /* where they are registered; 0: not */
	int intx_handle;	 /* resample irqfd, or -1 */
	int intx_resample_fd;
	struct event_source *intx_src;
};

void virtio_pci_lock(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
}

void virtio_pci_unlock(struct virtio_pci *vp)
{
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_wait(struct virtio_pci *vp, pthread_cond_t *cond)
{
	pthread_cond_wait(cond, &vp->lock);
}

int virtio_pci_wait_until(struct virtio_pci *vp, pthread_cond_t *cond,
			  const struct timespec *deadline)
{
	return pthread_cond_timedwait(cond, &vp->lock, deadline);
}

struct virtqueue *virtio_pci_queue(struct virtio_pci *vp, unsigned q)
{
	return q < vp->cfg.nqueues ? &vp->vq[q] : NULL;
}

struct pci_device *virtio_pci_dev(struct virtio_pci *vp)
{
	return &vp->pci;
}

bool virtio_pci_running(const struct virtio_pci *vp)
{
	return (vp->status & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_NEEDS_RESET);
}

uint64_t virtio_pci_features(const struct virtio_pci *vp)
{
	return vp->features;
}

/* --- interrupts ------------------------------------------------------------------------- */

static bool msix_enabled(const struct virtio_pci *vp)
{
	return __atomic_load_n(&vp->pci.cfg[vp->pci.msix_cap + 3], __ATOMIC_RELAXED) &
	       MSIX_CTRL_ENABLE_HI;
}

static void intx_raise(struct virtio_pci *vp)
{
	if (vp->intx_handle >= 0) {
		uint16_t cmd = get_le16(vp->pci.cfg + PCI_COMMAND);
		if (!(cmd & PCI_COMMAND_INTX_DISABLE))
			vp->irq->intx_fire(vp->irq->opaque, vp->intx_handle);
	} else {
		pci_irq_assert(&vp->pci);
	}
}

/* Lock held. */
static void raise_irq(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (msix_enabled(vp)) {
		if (vector != VIRTIO_MSI_NO_VECTOR)
			pci_msi_notify(&vp->pci, vector);
		return;
	}
	vp->isr |= isr_bit;
	intx_raise(vp);
}

void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q)
{
	struct virtqueue *vq = &vp->vq[q];
	if (vq->enabled && vq_should_notify(vq))
		raise_irq(vp, vq->msix_vector, VIRTIO_ISR_QUEUE);
}

bool virtio_pci_defer_notify(struct virtio_pci *vp, unsigned q)
{
	uint64_t one = 1;
	if (q >= vp->cfg.nqueues || vp->kicks[q].fd < 0)
		return false;
	return write(vp->kicks[q].fd, &one, sizeof(one)) == sizeof(one);
}

void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why)
{
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_error(NULL, "virtio pci 00:%02x.0: %s: device needs reset", vp->pci.slot, why);
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(vp, vp->msix_config, VIRTIO_ISR_CONFIG);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	vp->config_generation++;
	if (virtio_pci_running(vp))
		raise_irq(vp, vp->msix_config, VIRTIO_ISR_CONFIG);
}

/* The guest's EOI lowered the line: raise it again while the ISR still says so. */
static void intx_resample(void *opaque, uint32_t events)
{
	struct virtio_pci *vp = opaque;
	uint64_t v;
	(void)events;
	if (read(vp->intx_resample_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to do */
	}
	virtio_pci_lock(vp);
	if (vp->isr)
		intx_raise(vp);
	virtio_pci_unlock(vp);
}

/* --- queues and reset ------------------------------------------------------------------- */

static void notify_queue(struct virtio_pci *vp, unsigned q)
{
	if (q < vp->cfg.nqueues && vp->vq[q].enabled && virtio_pci_running(vp))
		vp->cfg.ops->queue_notify(vp->cfg.dev, q);
}

static void kick_event(void *opaque, uint32_t events)
{
	struct kick *k = opaque;
	uint64_t v;
	(void)events;
	if (read(k->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: a spurious wake-up */
	}
	virtio_pci_lock(k->vp);
	notify_queue(k->vp, k->q);
	virtio_pci_unlock(k->vp);
}

static void queues_reset(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->cfg.nqueues; q++)
		vq_reset(&vp->vq[q], vp->cfg.queue_max);
}

/* Lock held.  Waits (through the device's hook) for requests in flight. */
static void device_reset(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->cfg.nqueues; q++)
		vp->vq[q].enabled = false; /* no kick starts anything from here on */
	vp->status = 0;
	vp->cfg.ops->reset(vp->cfg.dev);
	queues_reset(vp);
	vp->dfselect = vp->gfselect = 0;
	vp->driver_features = vp->features = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->queue_select = 0;
	vp->isr = 0;
	if (vp->intx_handle < 0)
		pci_irq_deassert(&vp->pci);
}

static void set_status(struct virtio_pci *vp, uint8_t v)
{
	if (v == 0) {
		device_reset(vp);
		return;
	}
	uint8_t keep = vp->status & VIRTIO_STATUS_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
		/* 3.1.1: refuse a subset we did not offer, or a legacy driver */
		uint64_t f = vp->driver_features;
		if ((f & ~vp->offered) || !(f & (1ULL << VIRTIO_F_VERSION_1))) {
			v &= ~VIRTIO_STATUS_FEATURES_OK;
		} else {
			vp->features = f;
			for (unsigned q = 0; q < vp->cfg.nqueues; q++) {
				vp->vq[q].event_idx = f >> VIRTIO_F_RING_EVENT_IDX & 1;
				vp->vq[q].indirect = f >> VIRTIO_F_RING_INDIRECT_DESC & 1;
				vp->vq[q].packed = f >> VIRTIO_F_RING_PACKED & 1;
			}
		}
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~VIRTIO_STATUS_DRIVER_OK; /* DRIVER_OK before FEATURES_OK: not accepted */
	/* Bits are only ever added until the next reset. */
	vp->status = (vp->status | v) & ~VIRTIO_STATUS_NEEDS_RESET;
	vp->status |= keep;
	if (v & VIRTIO_STATUS_DRIVER_OK)
		for (unsigned q = 0; q < vp->cfg.nqueues; q++)
			notify_queue(vp, q); /* chains added before DRIVER_OK */
}

static void queue_enable(struct virtio_pci *vp, struct virtqueue *vq)
{
	if (vq->enabled)
		return;
	vq->packed = vp->features >> VIRTIO_F_RING_PACKED & 1;
	int r = vq_enable(vq, vp->cfg.mem);
	if (r < 0) {
		char why[96];
		snprintf(why, sizeof(why), "queue %u: size %u or ring addresses refused (%s)",
			 (unsigned)(vq - vp->vq), vq->size, strerror(-r));
		virtio_pci_needs_reset(vp, why);
		return;
	}
	vq->event_idx = vp->features >> VIRTIO_F_RING_EVENT_IDX & 1;
	vq->indirect = vp->features >> VIRTIO_F_RING_INDIRECT_DESC & 1;
}

/* --- common configuration --------------------------------------------------------------- */

static uint16_t vector_checked(const struct virtio_pci *vp, uint16_t v)
{
	/* 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR */
	return v < vp->pci.msix_nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

/* The register file as the driver reads it. */
static void common_image(struct virtio_pci *vp, uint8_t *r)
{
	struct virtqueue *vq = virtio_pci_queue(vp, vp->queue_select);
	memset(r, 0, VIRTIO_PCI_COMMON_LEN);
	put_le32(r + 0x00, vp->dfselect);
	put_le32(r + 0x04, vp->dfselect < 2 ? (uint32_t)(vp->offered >> (32 * vp->dfselect)) : 0);
	put_le32(r + 0x08, vp->gfselect);
	put_le32(r + 0x0C,
		 vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0);
	put_le16(r + 0x10, vp->msix_config);
	put_le16(r + 0x12, vp->cfg.nqueues);
	r[0x14] = vp->status;
	r[0x15] = vp->config_generation;
	put_le16(r + 0x16, vp->queue_select);
	if (vq) {
		put_le16(r + 0x18, vq->size);
		put_le16(r + 0x1A, vq->msix_vector);
		put_le16(r + 0x1C, vq->enabled);
		put_le16(r + 0x1E, vp->queue_select); /* queue_notify_off */
		put_le64(r + 0x20, vq->desc_gpa);
		put_le64(r + 0x28, vq->avail_gpa);
		put_le64(r + 0x30, vq->used_gpa);
		put_le16(r + 0x38, vp->queue_select); /* queue_notify_data */
	}
}

static void set_half(uint64_t *field, unsigned high, uint32_t v)
{
	if (high)
		*field = (*field & 0xFFFFFFFFULL) | (uint64_t)v << 32;
	else
		*field = (*field & ~0xFFFFFFFFULL) | v;
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned len, uint64_t v)
{
	struct virtqueue *vq = virtio_pci_queue(vp, vp->queue_select);
	/* Queue fields are frozen while the queue runs (4.1.4.3.2). */
	bool vq_open = vq && !vq->enabled;
	bool before_ok = !(vp->status & VIRTIO_STATUS_FEATURES_OK);
	switch (off << 4 | len) {
	case 0x004:
		vp->dfselect = (uint32_t)v;
		break;
	case 0x084:
		vp->gfselect = (uint32_t)v;
		break;
	case 0x0C4:
		if (before_ok && vp->gfselect < 2)
			set_half(&vp->driver_features, vp->gfselect, (uint32_t)v);
		break;
	case 0x102:
		vp->msix_config = vector_checked(vp, (uint16_t)v);
		break;
	case 0x141:
		set_status(vp, (uint8_t)v);
		break;
	case 0x162:
		vp->queue_select = (uint16_t)v;
		break;
	case 0x182:
		if (vq_open)
			vq->size = (uint16_t)v; /* checked when the queue is enabled */
		break;
	case 0x1A2:
		if (vq)
			vq->msix_vector = vector_checked(vp, (uint16_t)v);
		break;
	case 0x1C2:
		if (vq && (uint16_t)v == 1)
			queue_enable(vp, vq);
		break;
	case 0x204:
	case 0x244:
		if (vq_open)
			set_half(&vq->desc_gpa, off == 0x24, (uint32_t)v);
		break;
	case 0x284:
	case 0x2C4:
		if (vq_open)
			set_half(&vq->avail_gpa, off == 0x2C, (uint32_t)v);
		break;
	case 0x304:
	case 0x344:
		if (vq_open)
			set_half(&vq->used_gpa, off == 0x34, (uint32_t)v);
		break;
	case 0x208:
		if (vq_open)
			vq->desc_gpa = v;
		break;
	case 0x288:
		if (vq_open)
			vq->avail_gpa = v;
		break;
	case 0x308:
		if (vq_open)
			vq->used_gpa = v;
		break;
	default: /* read-only fields and odd accesses are ignored */
		break;
	}
}

static void bar_access(struct pci_device *dev, unsigned bar, uint64_t off, uint8_t *data,
		       unsigned len, bool is_write)
{
	struct virtio_pci *vp = dev->opaque;
	uint64_t v = 0;
	if (is_write)
		memcpy(&v, data, len);
	else
		memset(data, 0, len);
	if (bar != 0)
		return;
	virtio_pci_lock(vp);
	if (off < VIRTIO_PCI_COMMON_LEN) {
		if (is_write) {
			common_write(vp, (unsigned)off, len, v);
		} else if (off + len <= VIRTIO_PCI_COMMON_LEN) {
			uint8_t image[VIRTIO_PCI_COMMON_LEN];
			common_image(vp, image);
			memcpy(data, image + off, len);
		}
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		if (!is_write) { /* reading clears it and lowers INTx (4.1.4.5) */
			data[0] = vp->isr;
			vp->isr = 0;
			if (vp->intx_handle < 0)
				pci_irq_deassert(&vp->pci);
		}
	} else if (off >= VIRTIO_PCI_DEVICE_OFF &&
		   off - VIRTIO_PCI_DEVICE_OFF < vp->cfg.config_len) {
		unsigned o = (unsigned)(off - VIRTIO_PCI_DEVICE_OFF);
		bool inside = len <= vp->cfg.config_len - o;
		if (inside && !is_write)
			vp->cfg.ops->config_read(vp->cfg.dev, o, data, len);
		else if (inside && vp->cfg.ops->config_write)
			vp->cfg.ops->config_write(vp->cfg.dev, o, data, len);
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF &&
		   off < VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * vp->cfg.nqueues) {
		/* A doorbell that reached user space: no ioeventfd (yet), or an odd width. */
		if (is_write)
			notify_queue(vp, (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) /
					     VIRTIO_PCI_NOTIFY_MULT);
	}
	virtio_pci_unlock(vp);
}

/* BAR0 moved: so do the doorbells' ioeventfds. Bus lock held (not ours). */
static void bar_mapped(struct pci_device *dev, unsigned bar, uint64_t addr, bool mapped)
{
	struct virtio_pci *vp = dev->opaque;
	if (bar != 0 || !vp->irq)
		return;
	for (unsigned q = 0; q < vp->cfg.nqueues; q++) {
		struct kick *k = &vp->kicks[q];
		if (k->fd < 0)
			continue;
		if (vp->ioeventfd_base)
			vp->irq->ioeventfd_del(vp->irq->opaque,
					       vp->ioeventfd_base + VIRTIO_PCI_NOTIFY_OFF +
						   VIRTIO_PCI_NOTIFY_MULT * q,
					       2, true, q, k->fd);
		if (mapped)
			vp->irq->ioeventfd_add(vp->irq->opaque,
					       addr + VIRTIO_PCI_NOTIFY_OFF +
						   VIRTIO_PCI_NOTIFY_MULT * q,
					       2, true, q, k->fd);
	}
	vp->ioeventfd_base = mapped ? addr : 0;
}

static const struct pci_device_ops virtio_pci_ops = {
    .bar_access = bar_access,
    .bar_mapped = bar_mapped,
};

/* --- capabilities and creation ---------------------------------------------------------- */

static int add_cap(struct pci_device *dev, uint8_t type, uint32_t off, uint32_t len,
		   unsigned cap_len)
{
	int at = pci_add_capability(dev, PCI_CAP_ID_VENDOR, cap_len);
	if (at < 0)
		return at;
	dev->cfg[at + 2] = cap_len;
	dev->cfg[at + 3] = type;
	dev->cfg[at + 4] = 0; /* BAR0 */
	put_le32(dev->cfg + at + 8, off);
	put_le32(dev->cfg + at + 12, len);
	return at;
}

static int caps_init(struct virtio_pci *vp)
{
	struct pci_device *dev = &vp->pci;
	int r;
	if ((r = add_cap(dev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			 VIRTIO_PCI_COMMON_LEN, 16)) < 0 ||
	    (r = add_cap(dev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 16)) < 0 ||
	    (r = add_cap(dev, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, vp->cfg.config_len,
			 16)) < 0)
		return r;
	r = add_cap(dev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
		    VIRTIO_PCI_NOTIFY_MULT * vp->cfg.nqueues, 20);
	if (r < 0)
		return r;
	put_le32(dev->cfg + r + 16, VIRTIO_PCI_NOTIFY_MULT);
	return pci_msix_init(dev, vp->cfg.nqueues + 1, 0, VIRTIO_PCI_MSIX_TABLE_OFF,
			     VIRTIO_PCI_MSIX_PBA_OFF);
}

/* ioeventfds and the resample irqfd need the bus's irq ops and an event loop. */
static void fast_paths_init(struct virtio_pci *vp, struct pci_bus *bus)
{
	const struct irq_ops *irq = bus->ops.irq;
	struct event_loop *loop = vp->cfg.loop;
	if (!irq || !loop || !irq->ioeventfd_add)
		return;
	vp->irq = irq;
	for (unsigned q = 0; q < vp->cfg.nqueues; q++) {
		struct kick *k = &vp->kicks[q];
		k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (k->fd >= 0 &&
		    event_loop_add_fd(loop, k->fd, EPOLLIN, kick_event, k, &k->src) < 0) {
			close(k->fd);
			k->fd = -1;
		}
	}
	/* The bus maps BARs at registration (decode on, as firmware leaves it). */
	if (vp->pci.bars[0].mapped)
		bar_mapped(&vp->pci, 0, vp->pci.bars[0].mapped_at, true);
	if (irq->intx_add) {
		unsigned gsi = layout_pci_intx_gsi(vp->pci.slot, vp->pci.irq_pin - 1);
		int h = irq->intx_add(irq->opaque, gsi, &vp->intx_resample_fd);
		if (h >= 0 && event_loop_add_fd(loop, vp->intx_resample_fd, EPOLLIN, intx_resample,
						vp, &vp->intx_src) == 0)
			vp->intx_handle = h;
		else if (h >= 0)
			irq->intx_del(irq->opaque, h);
	}
}

int virtio_pci_create(struct pci_bus *bus, const struct virtio_pci_config *cfg,
		      struct virtio_pci **out)
{
	if (cfg->nqueues == 0 || cfg->nqueues > VIRTIO_PCI_MAX_QUEUES ||
	    cfg->config_len > VIRTIO_PCI_DEVICE_LEN || cfg->queue_max == 0 ||
	    cfg->queue_max > VQ_MAX_SIZE || (cfg->queue_max & (cfg->queue_max - 1)))
		return -EINVAL;
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	vp->cfg = *cfg;
	pthread_mutex_init(&vp->lock, NULL);
	vp->intx_handle = vp->intx_resample_fd = -1;
	for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++)
		vp->kicks[q] = (struct kick){.vp = vp, .q = q, .fd = -1};
	vp->offered = cfg->features | 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_RING_EVENT_IDX |
		      1ULL << VIRTIO_F_RING_INDIRECT_DESC | 1ULL << VIRTIO_F_RING_PACKED;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	queues_reset(vp);

	struct pci_device *dev = &vp->pci;
	dev->vendor_id = VIRTIO_PCI_VENDOR;
	dev->device_id = VIRTIO_PCI_DEVICE_BASE + cfg->device_id;
	dev->subsystem_vendor_id = VIRTIO_PCI_VENDOR;
	dev->subsystem_id = VIRTIO_PCI_DEVICE_BASE + cfg->device_id;
	dev->revision = 1; /* modern-only (4.1.2.1) */
	dev->class_code = cfg->class_code;
	dev->irq_pin = 1;
	dev->bars[0] = (struct pci_bar){.type = PCI_BAR_MEM64, .size = VIRTIO_PCI_BAR_SIZE};
	dev->ops = &virtio_pci_ops;
	dev->opaque = vp;
	int r = caps_init(vp);
	if (r >= 0)
		r = pci_device_register(bus, dev, cfg->slot ? (int)cfg->slot : -1);
	if (r < 0) {
		pci_msi_free(dev);
		pthread_mutex_destroy(&vp->lock);
		free(vp);
		return r;
	}
	/* After registering: the slot decides the INTx GSI; from here on bar_mapped keeps the
	 * ioeventfds where BAR0 is. */
	pthread_mutex_lock(&bus->lock);
	fast_paths_init(vp, bus);
	pthread_mutex_unlock(&bus->lock);
	*out = vp;
	return 0;
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	virtio_pci_lock(vp);
	device_reset(vp);
	virtio_pci_unlock(vp);
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	pci_device_unregister(&vp->pci); /* unmaps BAR0: the ioeventfds go with it */
	for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
		struct kick *k = &vp->kicks[q];
		event_source_remove(k->src);
		if (k->fd >= 0)
			close(k->fd);
	}
	event_source_remove(vp->intx_src);
	if (vp->intx_handle >= 0)
		vp->irq->intx_del(vp->irq->opaque, vp->intx_handle);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}
