/* NVM commands (NVMe 1.4, 6): Read, Write, Flush, Compare, Write Zeroes and Dataset Management
 * (deallocate becomes a discard), through the disk's asynchronous block layer.
 *
 * A command that needs several block requests runs them one after the other from the completion:
 * a write with FUA, or any write while the host turned the volatile write cache off, is followed
 * by a flush before it completes; Dataset Management discards its ranges in turn (all checked
 * before the first); a Flush of every namespace (NSID FFFFFFFFh) flushes each disk; Compare reads
 * the blocks into a buffer of its own and compares them with the host's data. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/nvme/nvme_internal.h"
#include "devices/nvme/nvme_spec.h"
#include "storage/core/block.h"
#include "lib/endian.h"

#define SECTOR 512
#define NSID_ALL 0xFFFFFFFFu

static uint16_t errno_status(int ret, enum block_aio_op op)
{
	switch (ret) {
	case -EIO:
		return op == BLOCK_AIO_READ ? NVME_SC_READ_ERROR : NVME_SC_WRITE_FAULT;
	case -ENOSPC:
		return NVME_SC_CAP_EXCEEDED;
	case -EPERM: /* the probed-raw guard refused a header (storage/core/block_probe_guard.h) */
	case -EROFS:
		return NVME_SC_NS_WRITE_PROTECTED;
	default:
		return NVME_SC_INTERNAL;
	}
}

static void aio_done(struct block_aio_req *aio, int ret);

/* Returns true when r is complete (the submission failed). */
static bool submit(struct nvme_req *r, struct disk *d)
{
	struct nvme_ctrl *c = r->c;
	r->aio.cb = aio_done;
	r->aio.opaque = r;
	if (!d->aio || block_aio_submit(d->aio, &r->aio) < 0) {
		r->status = NVME_SC_INTERNAL;
		return true;
	}
	c->inflight++;
	return false;
}

static bool submit_flush(struct nvme_req *r, struct disk *d)
{
	r->aio = (struct block_aio_req){.op = BLOCK_AIO_FLUSH};
	return submit(r, d);
}

/* Does a write need a flush after it (FUA, or the host turned the write cache off)? */
static bool write_needs_flush(const struct nvme_req *r)
{
	bool fua = r->dw[12] >> 30 & 1;
	return (fua || !r->c->vwc) && !r->ns->disk->flush_ignored;
}

/* The next block request of a multi-step command, or false when it is done. */
static bool next_step(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	switch (nvme_opcode(r)) {
	case NVME_CMD_WRITE:
	case NVME_CMD_WRITE_ZEROES:
		if (r->step++ == 0 && write_needs_flush(r))
			return !submit_flush(r, r->ns->disk) || (nvme_complete(r), true);
		return false;
	case NVME_CMD_DSM:
		while (++r->step < r->nsteps) {
			const uint8_t *range = r->buf + 16 * r->step;
			uint32_t nlb = get_le32(range + 4);
			if (!nlb)
				continue;
			r->aio = (struct block_aio_req){.op = BLOCK_AIO_DISCARD,
							.offset = get_le64(range + 8) * SECTOR,
							.len = (uint64_t)nlb * SECTOR};
			return !submit(r, r->ns->disk) || (nvme_complete(r), true);
		}
		return false;
	case NVME_CMD_FLUSH:
		while (r->nsteps && ++r->step < r->nsteps) {
			struct disk *d = c->ns[r->step].disk;
			if (d->read_only || d->flush_ignored)
				continue;
			return !submit_flush(r, d) || (nvme_complete(r), true);
		}
		return false;
	case NVME_CMD_COMPARE: {
		uint64_t len = r->bounce.iov_len;
		sg_list_to_buf(&r->sg, 0, r->buf + len, len);
		if (memcmp(r->buf, r->buf + len, len))
			r->status = NVME_SC_COMPARE_FAILED;
		return false;
	}
	default:
		return false;
	}
}

static void aio_done(struct block_aio_req *aio, int ret)
{
	struct nvme_req *r = aio->opaque;
	struct nvme_ctrl *c = r->c;
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	if (r->generation != c->generation) { /* the host reset the controller: touch nothing */
		nvme_req_put(r);
	} else {
		if (aio->op == BLOCK_AIO_DISCARD && (ret == -ENOTSUP || ret == -EOPNOTSUPP))
			ret = 0; /* deallocation is advisory */
		if (ret < 0)
			r->status = errno_status(ret, aio->op);
		if (ret < 0 || !next_step(r))
			nvme_complete(r);
	}
	if (c->inflight == 0)
		pthread_cond_broadcast(&c->drained);
	pthread_mutex_unlock(&c->lock);
}

static uint16_t lba_check(const struct nvme_req *r, uint64_t slba, uint64_t nlb)
{
	uint64_t n = r->ns->disk->sectors;
	return nlb > n || slba > n - nlb ? NVME_SC_LBA_RANGE : 0;
}

static bool rw(struct nvme_req *r, unsigned op)
{
	struct nvme_ctrl *c = r->c;
	uint64_t slba = nvme_dw64(r, 10), nlb = (r->dw[12] & 0xFFFF) + 1;
	uint64_t len = nlb * SECTOR;
	bool write = op == NVME_CMD_WRITE;
	if (write && r->ns->disk->read_only)
		r->status = NVME_SC_NS_WRITE_PROTECTED;
	else if (len > NVME_MAX_XFER)
		r->status = NVME_SC_INVALID_FIELD;
	else if (!(r->status = lba_check(r, slba, nlb)))
		r->status = nvme_map_data(r, len);
	if (r->status)
		return true;
	if (write) {
		c->host_writes++;
		c->units_written += nlb;
	} else {
		c->host_reads++;
		c->units_read += nlb;
	}
	if (op == NVME_CMD_COMPARE) {
		/* Read into a buffer of our own; next_step compares it with the host's data. */
		if (!(r->buf = malloc(2 * len))) {
			r->status = NVME_SC_INTERNAL;
			return true;
		}
		r->bounce = (struct iovec){.iov_base = r->buf, .iov_len = len};
		r->aio = (struct block_aio_req){
		    .op = BLOCK_AIO_READ, .offset = slba * SECTOR, .iov = &r->bounce, .iovcnt = 1};
		return submit(r, r->ns->disk);
	}
	r->aio = (struct block_aio_req){.op = write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
					.offset = slba * SECTOR,
					.iov = r->sg.iov,
					.iovcnt = (int)r->sg.n};
	return submit(r, r->ns->disk);
}

static bool write_zeroes(struct nvme_req *r)
{
	uint64_t slba = nvme_dw64(r, 10), nlb = (r->dw[12] & 0xFFFF) + 1;
	bool deac = r->dw[12] >> 25 & 1;
	if (r->ns->disk->read_only)
		r->status = NVME_SC_NS_WRITE_PROTECTED;
	else
		r->status = lba_check(r, slba, nlb);
	if (r->status)
		return true;
	r->aio = (struct block_aio_req){.op = BLOCK_AIO_WRITE_ZEROES,
					.offset = slba * SECTOR,
					.len = nlb * SECTOR,
					.flags = deac ? BLOCK_ZERO_MAY_UNMAP : 0};
	return submit(r, r->ns->disk);
}

static bool dsm(struct nvme_req *r)
{
	unsigned nr = (r->dw[10] & 0xFF) + 1;
	bool deallocate = r->dw[11] >> 2 & 1;
	if (!deallocate)
		return true; /* integral-read/write hints only: nothing to do */
	if (r->ns->disk->read_only) {
		r->status = NVME_SC_NS_WRITE_PROTECTED;
		return true;
	}
	if (!(r->buf = malloc(16 * nr))) {
		r->status = NVME_SC_INTERNAL;
		return true;
	}
	if ((r->status = nvme_map_data(r, 16ULL * nr)))
		return true;
	sg_list_to_buf(&r->sg, 0, r->buf, 16ULL * nr);
	for (unsigned i = 0; i < nr; i++) /* all ranges checked before the first discard */
		if ((r->status = lba_check(r, get_le64(r->buf + 16 * i + 8),
					   get_le32(r->buf + 16 * i + 4))))
			return true;
	r->nsteps = nr;
	r->step = (unsigned)-1; /* next_step moves to range 0 */
	if (!next_step(r))
		return true;
	return false;
}

static bool flush(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	if (r->dw[1] == NSID_ALL) {
		r->ns = &c->ns[0];
		r->nsteps = c->nns;
		r->step = (unsigned)-1;
		return !next_step(r);
	}
	struct disk *d = r->ns->disk;
	if (d->read_only || d->flush_ignored)
		return true;
	return submit_flush(r, d);
}

bool nvme_io(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint32_t nsid = r->dw[1];
	unsigned op = nvme_opcode(r);
	if (op == NVME_CMD_FLUSH && nsid == NSID_ALL)
		return flush(r);
	if (op != NVME_CMD_FLUSH && op != NVME_CMD_WRITE && op != NVME_CMD_READ &&
	    op != NVME_CMD_COMPARE && op != NVME_CMD_WRITE_ZEROES && op != NVME_CMD_DSM) {
		r->status = NVME_SC_INVALID_OPCODE;
		return true;
	}
	if (nsid == 0 || nsid > c->nns) {
		r->status = NVME_SC_INVALID_NS;
		return true;
	}
	r->ns = &c->ns[nsid - 1];
	switch (op) {
	case NVME_CMD_FLUSH:
		return flush(r);
	case NVME_CMD_WRITE_ZEROES:
		return write_zeroes(r);
	case NVME_CMD_DSM:
		return dsm(r);
	default:
		return rw(r, op);
	}
}
