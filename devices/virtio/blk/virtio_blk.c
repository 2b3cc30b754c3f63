/* virtio-blk requests (see virtio_blk.h).  A request is a chain: a 16-byte header {type le32,
 * reserved le32, sector le64} readable by the device, the data, and a one-byte status the device
 * writes last.  Every value in it is checked: a short header or a missing status byte is a broken
 * ring (DEVICE_NEEDS_RESET); a bad sector range, a length that is not whole sectors or a write to
 * a read-only disk fails the request with IOERR; an unknown type gets UNSUPP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/pci.h"
#include "devices/virtio/blk/virtio_blk.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_pci.h"
#include "lib/endian.h"
#include "lib/log.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"

#define SECTOR 512
#define HDR_LEN 16
#define RANGE_LEN 16 /* discard/write-zeroes: {sector le64, num_sectors le32, flags le32} */
#define RANGE_F_UNMAP 1
#define PCI_CLASS_STORAGE_SCSI 0x010000

struct vblk_req {
	struct virtio_blk *blk;
	unsigned q;
	unsigned generation; /* the device's at submission: a reset since makes it stale */
	struct vblk_req *next_free;
	uint8_t *status;
	uint32_t written; /* bytes written into the device-writable part */
	struct block_aio_req aio;
	struct vq_elem elem;
};

struct virtio_blk {
	struct virtio_pci *vp;
	struct disk *disk;
	uint64_t features;
	unsigned nqueues;
	/* under the transport lock */
	unsigned generation;
	unsigned inflight;
	pthread_cond_t drained;
	struct vblk_req *free_list;
};

/* --- the request pool ------------------------------------------------------------------- */

static struct vblk_req *req_get(struct virtio_blk *b, unsigned q)
{
	struct vblk_req *r = b->free_list;
	if (r)
		b->free_list = r->next_free;
	else if (!(r = malloc(sizeof(*r))))
		return NULL;
	r->blk = b;
	r->q = q;
	r->status = NULL;
	r->written = 0;
	return r;
}

static void req_put(struct vblk_req *r)
{
	struct virtio_blk *b = r->blk;
	r->next_free = b->free_list;
	b->free_list = r;
}

/* Lock held. */
static void req_finish(struct vblk_req *r, uint8_t status)
{
	struct virtio_blk *b = r->blk;
	struct virtqueue *vq = virtio_pci_queue(b->vp, r->q);
	*r->status = status;
	vq_push(vq, r->elem.head, r->elem.ndesc, r->written + 1);
	virtio_pci_queue_done(b->vp, r->q);
	req_put(r);
}

/* --- data paths ------------------------------------------------------------------------- */

/* Drop `n` bytes from the front of an iovec array in place; returns the new start. */
static struct iovec *iov_skip(struct iovec *iov, unsigned *cnt, uint64_t n)
{
	while (*cnt && n >= iov->iov_len) {
		n -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	if (*cnt && n) {
		iov->iov_base = (uint8_t *)iov->iov_base + n;
		iov->iov_len -= n;
	}
	return iov;
}

/* Drop `n` bytes from the end. */
static void iov_trim(struct iovec *iov, unsigned *cnt, uint64_t n)
{
	while (*cnt && n >= iov[*cnt - 1].iov_len) {
		n -= iov[*cnt - 1].iov_len;
		(*cnt)--;
	}
	if (*cnt && n)
		iov[*cnt - 1].iov_len -= n;
}

static void aio_done(struct block_aio_req *aio, int ret)
{
	struct vblk_req *r = aio->opaque;
	struct virtio_blk *b = r->blk;
	virtio_pci_lock(b->vp);
	if (r->generation != b->generation) { /* the driver reset the device: touch nothing */
		req_put(r);
	} else {
		if (aio->op == BLOCK_AIO_DISCARD && (ret == -ENOTSUP || ret == -EOPNOTSUPP))
			ret = 0; /* discard is advisory */
		if (ret < 0)
			r->written = 0;
		req_finish(r, ret < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
	}
	if (--b->inflight == 0)
		pthread_cond_broadcast(&b->drained);
	virtio_pci_unlock(b->vp);
}

static uint8_t submit(struct vblk_req *r)
{
	struct virtio_blk *b = r->blk;
	r->aio.cb = aio_done;
	r->aio.opaque = r;
	r->generation = b->generation;
	if (!b->disk->aio || block_aio_submit(b->disk->aio, &r->aio) < 0)
		return VIRTIO_BLK_S_IOERR;
	b->inflight++;
	return 0xFF; /* in flight */
}

/* Is [sector, sector + bytes/512) on the disk, bytes a whole number of sectors? */
static bool range_ok(const struct disk *d, uint64_t sector, uint64_t bytes)
{
	return bytes % SECTOR == 0 && sector <= d->sectors && bytes / SECTOR <= d->sectors - sector;
}

static uint8_t rw(struct vblk_req *r, bool write, uint64_t sector)
{
	struct virtio_blk *b = r->blk;
	struct vq_elem *e = &r->elem;
	struct iovec *iov;
	unsigned cnt;
	uint64_t len;
	if (write) {
		if (b->disk->read_only)
			return VIRTIO_BLK_S_IOERR;
		cnt = e->out.n;
		len = e->out.bytes - HDR_LEN;
		iov = iov_skip(e->out.iov, &cnt, HDR_LEN);
	} else {
		cnt = e->in.n;
		len = e->in.bytes - 1;
		iov = e->in.iov;
		iov_trim(iov, &cnt, 1);
	}
	if (!range_ok(b->disk, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	r->written = write ? 0 : (uint32_t)len;
	r->aio = (struct block_aio_req){.op = write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
					.offset = sector * SECTOR,
					.iov = iov,
					.iovcnt = (int)cnt};
	return submit(r);
}

/* DISCARD and WRITE_ZEROES: one range (max_discard_seg = max_write_zeroes_seg = 1). */
static uint8_t ranged(struct vblk_req *r, uint32_t type)
{
	struct virtio_blk *b = r->blk;
	unsigned feature =
	    type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
	uint8_t range[RANGE_LEN];
	if (!(b->features >> feature & 1))
		return VIRTIO_BLK_S_UNSUPP;
	if (b->disk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (r->elem.out.bytes != HDR_LEN + RANGE_LEN)
		return VIRTIO_BLK_S_IOERR; /* more than one range, or a partial one */
	sg_list_to_buf(&r->elem.out, HDR_LEN, range, RANGE_LEN);
	uint64_t sector = get_le64(range);
	uint32_t count = get_le32(range + 8), flags = get_le32(range + 12);
	if (flags & ~RANGE_F_UNMAP)
		return VIRTIO_BLK_S_UNSUPP;
	if (type == VIRTIO_BLK_T_DISCARD && (flags & RANGE_F_UNMAP))
		return VIRTIO_BLK_S_UNSUPP; /* 5.2.6.2: the unmap flag is for write zeroes */
	if (count > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
	    !range_ok(b->disk, sector, (uint64_t)count * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (!count)
		return VIRTIO_BLK_S_OK;
	r->aio = (struct block_aio_req){
	    .op = type == VIRTIO_BLK_T_DISCARD ? BLOCK_AIO_DISCARD : BLOCK_AIO_WRITE_ZEROES,
	    .offset = sector * SECTOR,
	    .len = (uint64_t)count * SECTOR,
	    .flags = (flags & RANGE_F_UNMAP) ? BLOCK_ZERO_MAY_UNMAP : 0};
	return submit(r);
}

static uint8_t get_id(struct vblk_req *r)
{
	char id[VIRTIO_BLK_ID_BYTES] = {0}; /* NUL-padded; no NUL when all 20 bytes are used */
	uint64_t room = r->elem.in.bytes - 1;
	memcpy(id, r->blk->disk->serial, strnlen(r->blk->disk->serial, sizeof(id)));
	size_t n = room < sizeof(id) ? (size_t)room : sizeof(id);
	r->written = (uint32_t)sg_list_from_buf(&r->elem.in, 0, id, n);
	return VIRTIO_BLK_S_OK;
}

/* Start a popped request: returns 0xFF when it went to the block layer, else its status. */
static uint8_t start(struct vblk_req *r)
{
	struct virtio_blk *b = r->blk;
	uint8_t hdr[HDR_LEN];
	sg_list_to_buf(&r->elem.out, 0, hdr, HDR_LEN);
	uint32_t type = get_le32(hdr);
	uint64_t sector = get_le64(hdr + 8);
	TRACE(VIRTIO, "virtio-blk: request type %u sector %llu, %u bytes out, %u in", type,
	      (unsigned long long)sector, (unsigned)r->elem.out.bytes, (unsigned)r->elem.in.bytes);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return rw(r, type == VIRTIO_BLK_T_OUT, sector);
	case VIRTIO_BLK_T_FLUSH:
		if (!(b->features >> VIRTIO_BLK_F_FLUSH & 1))
			return VIRTIO_BLK_S_UNSUPP;
		if (b->disk->read_only || b->disk->flush_ignored)
			return VIRTIO_BLK_S_OK;
		r->aio = (struct block_aio_req){.op = BLOCK_AIO_FLUSH};
		return submit(r);
	case VIRTIO_BLK_T_GET_ID:
		return get_id(r);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return ranged(r, type);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* --- transport hooks -------------------------------------------------------------------- */

static void queue_notify_run(struct virtio_blk *b, unsigned q)
{
	struct virtqueue *vq = virtio_pci_queue(b->vp, q);
	b->features = virtio_pci_features(b->vp);
	unsigned taken = 0;
	do {
		for (;;) {
			/* A batch of one ring's worth, then the other loop sources get their turn.
			 */
			if (taken++ == vq->size && virtio_pci_defer_notify(b->vp, q))
				return;
			struct vblk_req *r = req_get(b, q);
			if (!r)
				return; /* out of memory: the chains wait for the next kick */
			int got = vq_pop(vq, &r->elem);
			if (got <= 0) {
				req_put(r);
				if (got < 0) {
					char why[80];
					snprintf(why, sizeof(why), "queue %u: malformed chain (%s)",
						 q, strerror(-got));
					virtio_pci_needs_reset(b->vp, why);
					return;
				}
				break;
			}
			/* The header must be readable and the status byte writable (5.2.6). */
			if (r->elem.out.bytes < HDR_LEN || r->elem.in.bytes < 1) {
				req_put(r);
				virtio_pci_needs_reset(b->vp, "request without header or status");
				return;
			}
			r->status = sg_list_byte(&r->elem.in, r->elem.in.bytes - 1);
			uint8_t s = start(r);
			if (s != 0xFF) {
				if (s != VIRTIO_BLK_S_OK)
					r->written = 0;
				req_finish(r, s);
			}
		}
	} while (vq_more_after_idle(vq));
}

/* Every request of one kick reaches the host kernel in one submission (block_aio_plug). */
static void queue_notify(void *dev, unsigned q)
{
	struct virtio_blk *b = dev;
	struct block_aio_ctx *aio = b->disk->aio;

	if (aio)
		block_aio_plug(aio);
	queue_notify_run(b, q);
	if (aio)
		block_aio_unplug(aio);
}

static void reset(void *dev)
{
	struct virtio_blk *b = dev;
	b->generation++;	       /* completions from here on leave guest memory alone */
	disk_release_stopped(b->disk); /* werror=stop: parked writes fail now, or never end */
	while (b->inflight)
		virtio_pci_wait(b->vp, &b->drained);
	b->features = 0;
}

static void config_read(void *dev, unsigned off, uint8_t *data, unsigned len)
{
	struct virtio_blk *b = dev;
	uint8_t c[VIRTIO_BLK_CONFIG_LEN] = {0};
	put_le64(c + 0x00, b->disk->sectors);		    /* capacity */
	put_le32(c + 0x08, VIRTIO_BLK_SIZE_MAX);	    /* size_max */
	put_le32(c + 0x0C, VQ_ELEM_SEGS - 2);		    /* seg_max: header and status aside */
	put_le32(c + 0x14, SECTOR);			    /* blk_size */
	put_le16(c + 0x22, (uint16_t)b->nqueues);	    /* num_queues */
	put_le32(c + 0x24, VIRTIO_BLK_MAX_DISCARD_SECTORS); /* max_discard_sectors */
	put_le32(c + 0x28, 1);				    /* max_discard_seg */
	put_le32(c + 0x2C, 8);				    /* discard_sector_alignment: 4 KiB */
	put_le32(c + 0x30, VIRTIO_BLK_MAX_DISCARD_SECTORS); /* max_write_zeroes_sectors */
	put_le32(c + 0x34, 1);				    /* max_write_zeroes_seg */
	c[0x38] = 1;					    /* write_zeroes_may_unmap */
	memcpy(data, c + off, len);
}

static const struct virtio_dev_ops blk_ops = {
    .config_read = config_read,
    .queue_notify = queue_notify,
    .reset = reset,
};

int virtio_blk_create(const struct virtio_blk_env *env, struct disk *d, struct virtio_blk **out)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->disk = d;
	b->nqueues = env->nqueues;
	pthread_cond_init(&b->drained, NULL);
	uint64_t f = 1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
		     1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH;
	if (env->nqueues > 1)
		f |= 1ULL << VIRTIO_BLK_F_MQ;
	if (d->read_only)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	struct virtio_pci_config cfg = {
	    .device_id = VIRTIO_ID_BLOCK,
	    .class_code = PCI_CLASS_STORAGE_SCSI,
	    .features = f,
	    .config_len = VIRTIO_BLK_CONFIG_LEN,
	    .nqueues = env->nqueues,
	    .queue_max = VQ_MAX_SIZE,
	    .ops = &blk_ops,
	    .dev = b,
	    .mem = env->mem,
	    .loop = env->loop,
	};
	int r = virtio_pci_create(env->pci, &cfg, &b->vp);
	if (r < 0) {
		pthread_cond_destroy(&b->drained);
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	virtio_pci_lock(b->vp);
	reset(b);
	virtio_pci_unlock(b->vp);
	virtio_pci_destroy(b->vp);
	while (b->free_list) {
		struct vblk_req *r = b->free_list;
		b->free_list = r->next_free;
		free(r);
	}
	pthread_cond_destroy(&b->drained);
	free(b);
}

void virtio_blk_reset(struct virtio_blk *b)
{
	virtio_pci_reset(b->vp);
}

struct virtio_pci *virtio_blk_transport(struct virtio_blk *b)
{
	return b->vp;
}

unsigned virtio_blk_inflight(struct virtio_blk *b)
{
	virtio_pci_lock(b->vp);
	unsigned n = b->inflight;
	virtio_pci_unlock(b->vp);
	return n;
}
