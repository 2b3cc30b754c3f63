/* The NVMe controller on PCI: BAR0 registers (CAP, VS, INTMS/INTMC, CC, CSTS, AQA, ASQ, ACQ),
 * doorbells, enabling (CC.EN 0 -> 1 sets up the admin queues), controller reset (CC.EN 1 -> 0
 * waits for the requests in flight, then forgets every queue), shutdown notification (flushes
 * every writable namespace before CSTS.SHST says complete) and the machine reset.
 *
 * Bad values given at enable time (admin queue sizes or addresses, page size, command set) set
 * CSTS.CFS instead of RDY: the host sees a fatal controller status and resets it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/disk.h"
#include "devices/nvme/nvme_internal.h"
#include "devices/nvme/nvme_spec.h"
#include "devices/pci_internal.h" /* pci_msi_free when registering fails */
#include "memory/guest_memory.h"
#include "storage/core/block.h"
#include "lib/endian.h"
#include "lib/log.h"

/* VirtualBox's NVMe controller IDs (Linux binds by class; no driver quirk applies to them). */
#define NVME_PCI_VENDOR 0x80EE
#define NVME_PCI_DEVICE 0x4E56
#define NVME_PCI_CLASS 0x010802 /* mass storage, non-volatile memory, NVM Express */

#define CC_WRITABLE 0x00FFFFF1u /* EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES */
#define REG_END 0x40

static uint64_t cap(void)
{
	return NVME_MQES | 1ULL << 16 /* CQR */ | 0x0FULL << 24 /* TO: 7.5 s */ |
	       1ULL << 37 /* CSS: NVM command set */;
}

/* Lock held.  Every queue and what waits in it is dropped; requests in the block layer are
 * waited for (their completions see a new generation and touch nothing). */
static void controller_reset(struct nvme_ctrl *c)
{
	c->csts &= ~NVME_CSTS_RDY;
	c->generation++;
	/* werror=stop: a parked write fails now, or the wait below never ends. */
	for (unsigned i = 0; i < c->nns; i++)
		disk_release_stopped(c->ns[i].disk);
	while (c->inflight)
		pthread_cond_wait(&c->drained, &c->lock);
	for (unsigned i = 0; i < c->naer; i++)
		nvme_req_put(c->aer[i]);
	c->naer = c->nevents = 0;
	c->masked_types = 0;
	for (unsigned q = 0; q <= NVME_MAX_QID; q++) {
		struct nvme_sq *sq = c->sq[q];
		if (!sq)
			continue;
		if (sq->deleting)
			nvme_req_put(sq->deleting);
		c->sq[q] = NULL;
		free(sq);
	}
	for (unsigned q = 0; q <= NVME_MAX_QID; q++)
		nvme_cq_delete(c, (uint16_t)q);
	c->dbbuf_db = c->dbbuf_ei = c->dbbuf_db_host = c->dbbuf_ei_host = 0;
	nvme_doorbell_fds_enable(c, false);
	c->nsqa = c->ncqa = c->io_queues - 1;
	c->vwc = true;
	c->feat_arb = c->feat_pm = c->feat_err = c->feat_coalesce = c->feat_atomic = 0;
	c->feat_aec = 0;
	c->feat_temp[0] = 343; /* WCTEMP */
	c->feat_temp[1] = 0;
	memset(c->ivc_cd, 0, sizeof(c->ivc_cd));
	c->intms = 0;
	nvme_irq_update(c);
}

static bool enable(struct nvme_ctrl *c)
{
	uint32_t asqs = (c->aqa & 0xFFF) + 1, acqs = (c->aqa >> 16 & 0xFFF) + 1;
	if (NVME_CC_MPS(c->cc) != 0 || NVME_CC_CSS(c->cc) != 0 || NVME_CC_AMS(c->cc) != 0 ||
	    asqs < 2 || acqs < 2)
		return false;
	if (nvme_cq_create(c, 0, c->acq, acqs, true, 0) < 0)
		return false;
	if (nvme_sq_create(c, 0, c->asq, asqs, 0) < 0) {
		nvme_cq_delete(c, 0);
		return false;
	}
	return true;
}

/* Shutdown notification: what the host wrote before is made durable, then SHST says so.  The
 * flush runs without the lock (completions may need it meanwhile). */
static void shutdown(struct nvme_ctrl *c)
{
	c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_BUSY;
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nns; i++) {
		struct disk *d = c->ns[i].disk;
		if (d->bs && !d->read_only && !d->flush_ignored && block_flush(d->bs) < 0)
			log_error(NULL, "nvme%u: %s: flush at shutdown failed", c->index, d->path);
	}
	pthread_mutex_lock(&c->lock);
	if (c->csts & NVME_CSTS_SHST_BUSY)
		c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_DONE;
}

static void cc_write(struct nvme_ctrl *c, uint32_t v)
{
	uint32_t old = c->cc;
	v &= CC_WRITABLE;
	if ((old & NVME_CC_EN) && !(v & NVME_CC_EN)) {
		controller_reset(c);
		c->cc = v;
		c->csts = 0;
		return;
	}
	c->cc = v;
	if (!(old & NVME_CC_EN) && (v & NVME_CC_EN)) {
		if (enable(c))
			c->csts = NVME_CSTS_RDY;
		else
			c->csts |= NVME_CSTS_CFS;
	}
	if ((v & NVME_CC_EN) && NVME_CC_SHN(v) && !NVME_CC_SHN(old))
		shutdown(c);
}

static void set_half(uint64_t *field, uint64_t off, unsigned len, uint64_t v)
{
	if (len == 8)
		*field = v;
	else if (off & 4)
		*field = (*field & 0xFFFFFFFFULL) | v << 32;
	else
		*field = (*field & ~0xFFFFFFFFULL) | (v & 0xFFFFFFFFULL);
}

static void reg_write(struct nvme_ctrl *c, uint64_t off, unsigned len, uint64_t v)
{
	bool en = c->cc & NVME_CC_EN;
	switch (off) {
	case NVME_REG_INTMS:
		c->intms |= (uint32_t)v;
		nvme_irq_update(c);
		break;
	case NVME_REG_INTMC:
		c->intms &= ~(uint32_t)v;
		nvme_irq_update(c);
		break;
	case NVME_REG_CC:
		cc_write(c, (uint32_t)v);
		break;
	case NVME_REG_AQA:
		if (!en)
			c->aqa = (uint32_t)v & 0x0FFF0FFF;
		break;
	case NVME_REG_ASQ:
	case NVME_REG_ASQ + 4:
		if (!en)
			set_half(&c->asq, off, len, v & ~0xFFFULL);
		break;
	case NVME_REG_ACQ:
	case NVME_REG_ACQ + 4:
		if (!en)
			set_half(&c->acq, off, len, v & ~0xFFFULL);
		break;
	default: /* read-only registers, NSSR (not supported) */
		break;
	}
}

static void reg_image(const struct nvme_ctrl *c, uint8_t *r)
{
	memset(r, 0, REG_END);
	put_le64(r + NVME_REG_CAP, cap());
	put_le32(r + NVME_REG_VS, NVME_VERSION);
	put_le32(r + NVME_REG_INTMS, c->intms);
	put_le32(r + NVME_REG_INTMC, c->intms);
	put_le32(r + NVME_REG_CC, c->cc);
	put_le32(r + NVME_REG_CSTS, c->csts);
	put_le32(r + NVME_REG_AQA, c->aqa);
	put_le64(r + NVME_REG_ASQ, c->asq);
	put_le64(r + NVME_REG_ACQ, c->acq);
}

static void doorbell(struct nvme_ctrl *c, uint64_t off, unsigned len, uint32_t v)
{
	uint64_t idx = (off - NVME_REG_DOORBELL) / 4;
	if (len != 4 || off % 4 || !nvme_running(c))
		return;
	if (idx / 2 > NVME_MAX_QID) {
		nvme_event(c, NVME_AER_TYPE_ERROR, NVME_AER_INFO_INVALID_DB_REG, NVME_LOG_ERROR);
		return;
	}
	if (idx & 1)
		nvme_cq_doorbell(c, (unsigned)(idx / 2), v);
	else
		nvme_sq_doorbell(c, (unsigned)(idx / 2), v);
}

static void bar_access(struct pci_device *dev, unsigned bar, uint64_t off, uint8_t *data,
		       unsigned len, bool is_write)
{
	struct nvme_ctrl *c = dev->opaque;
	uint64_t v = 0;
	if (is_write)
		memcpy(&v, data, len);
	else
		memset(data, 0, len);
	if (bar != 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (off >= NVME_REG_DOORBELL) {
		if (is_write) /* doorbells read as zero */
			doorbell(c, off, len, (uint32_t)v);
	} else if (off + len <= REG_END && (len == 4 || len == 8) && off % 4 == 0) {
		if (is_write) {
			reg_write(c, off, len, v);
		} else {
			uint8_t image[REG_END];
			reg_image(c, image);
			memcpy(data, image + off, len);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* BAR0 moved: so do the doorbells' ioeventfds.  Bus lock held (not ours). */
static void bar_mapped(struct pci_device *dev, unsigned bar, uint64_t addr, bool mapped)
{
	if (bar == 0)
		nvme_doorbell_fds_bar(dev->opaque, addr, mapped);
}

static const struct pci_device_ops nvme_pci_ops = {
    .bar_access = bar_access,
    .bar_mapped = bar_mapped,
};

/* --- lifecycle -------------------------------------------------------------------------- */

static void power_on(struct nvme_ctrl *c)
{
	controller_reset(c);
	c->cc = c->csts = c->aqa = 0;
	c->asq = c->acq = 0;
}

int nvme_create(const struct nvme_env *env, struct disk **disks, unsigned n, struct nvme_ctrl **out)
{
	if (n == 0 || n > NVME_MAX_NAMESPACES || env->io_queues == 0 ||
	    env->io_queues > NVME_MAX_IO_QUEUES)
		return -EINVAL;
	struct nvme_ctrl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->mem = env->mem;
	c->loop = env->loop;
	c->index = env->index;
	c->io_queues = env->io_queues;
	c->nns = n;
	for (unsigned i = 0; i < n; i++)
		c->ns[i] = (struct nvme_ns){.disk = disks[i], .nsid = i + 1};
	/* Unique per VM and controller: Linux refuses two controllers with one subsystem NQN. */
	snprintf(c->serial, sizeof(c->serial), "MVNVME%02u%.12s", env->index % 100,
		 disks[0]->serial);
	const uint8_t *u = disks[0]->uuid;
	snprintf(c->subnqn, sizeof(c->subnqn),
		 "nqn.2026-12.io.minivmm:nvme%u-%02x%02x%02x%02x%02x%02x%02x%02x", env->index, u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7]);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	c->power_on_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->drained, NULL);
	nvme_doorbell_fds_create(c, env->pci->ops.irq);
	pthread_mutex_lock(&c->lock);
	power_on(c);
	pthread_mutex_unlock(&c->lock);

	struct pci_device *dev = &c->pci;
	dev->vendor_id = dev->subsystem_vendor_id = NVME_PCI_VENDOR;
	dev->device_id = dev->subsystem_id = NVME_PCI_DEVICE;
	dev->class_code = NVME_PCI_CLASS;
	dev->irq_pin = 1;
	dev->bars[0] = (struct pci_bar){.type = PCI_BAR_MEM64, .size = NVME_BAR_SIZE};
	dev->ops = &nvme_pci_ops;
	dev->opaque = c;
	int r = nvme_coalesce_init(c);
	if (r >= 0)
		r = pci_msix_init(dev, NVME_MSIX_VECTORS, 0, NVME_MSIX_TABLE_OFF,
				  NVME_MSIX_PBA_OFF);
	if (r >= 0)
		r = pci_device_register(env->pci, dev, -1);
	if (r < 0) {
		pci_msi_free(dev);
		nvme_coalesce_fini(c);
		nvme_doorbell_fds_destroy(c);
		pthread_cond_destroy(&c->drained);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return r;
	}
	/* The bus mapped BAR0 at registration (before the hook could see it). */
	pthread_mutex_lock(&env->pci->lock);
	if (dev->bars[0].mapped)
		nvme_doorbell_fds_bar(c, dev->bars[0].mapped_at, true);
	pthread_mutex_unlock(&env->pci->lock);
	for (unsigned i = 0; i < n; i++)
		snprintf(disks[i]->fw_path, sizeof(disks[i]->fw_path),
			 "/pci@i0cf8/nvme@%x/namespace@%x", dev->slot, i + 1);
	*out = c;
	return 0;
}

void nvme_reset(struct nvme_ctrl *c)
{
	pthread_mutex_lock(&c->lock);
	power_on(c);
	pthread_mutex_unlock(&c->lock);
}

void nvme_destroy(struct nvme_ctrl *c)
{
	if (!c)
		return;
	nvme_reset(c);
	pci_device_unregister(&c->pci);
	nvme_doorbell_fds_destroy(c);
	nvme_coalesce_fini(c);
	while (c->free_list) {
		struct nvme_req *r = c->free_list;
		c->free_list = r->next;
		free(r);
	}
	pthread_cond_destroy(&c->drained);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

unsigned nvme_inflight(struct nvme_ctrl *c)
{
	pthread_mutex_lock(&c->lock);
	unsigned n = c->inflight;
	pthread_mutex_unlock(&c->lock);
	return n;
}
