/* The transport-independent part of an ATA device: registers, reset, command end and the data
 * transfer engine (PIO blocks through dev->buf, DMA straight between guest memory and the block
 * layer). The commands themselves are in ata_cmd.c and atapi.c. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ata/ata_internal.h"
#include "devices/disk.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"

/* A block request of the device. Allocated per request (not embedded in the device) so that a
 * reset can start a new command while the old request is still in flight: the old one then
 * completes into its own memory and is dropped (generation mismatch). */
struct ata_req {
	struct block_aio_req aio;
	struct ata_device *dev;
	uint32_t generation;
	size_t len;
	uint8_t *bounce; /* PIO data (never dev->buf, which a new command may reuse) */
	void (*simple_done)(struct ata_device *dev, int ret);
	struct iovec iov[ATA_DMA_IOV_MAX];
};

static void ata_lock(struct ata_device *dev)
{
	if (dev->lock)
		pthread_mutex_lock(dev->lock);
}

static void ata_unlock(struct ata_device *dev)
{
	if (dev->lock)
		pthread_mutex_unlock(dev->lock);
}

static void ata_irq(struct ata_device *dev)
{
	if (dev->ops && dev->ops->irq)
		dev->ops->irq(dev->opaque, dev);
}

/* ---- Lifecycle and registers ---- */

int ata_device_init(struct ata_device *dev, struct disk *disk)
{
	dev->disk = disk;
	dev->atapi = disk && disk->media == DISK_MEDIA_CDROM;
	dev->buf = calloc(1, ATA_BUF_SIZE);
	if (!dev->buf)
		return -ENOMEM;
	dev->write_cache = true;
	dev->xfer_mode = 0x0C; /* PIO 4 until the guest says otherwise */
	if (dev->atapi) {
		scsi_lun_init(&dev->lun, disk, true);
		dev->lun.atapi = true;
	}
	ata_device_reset(dev);
	return 0;
}

void ata_device_cleanup(struct ata_device *dev)
{
	free(dev->buf);
	dev->buf = NULL;
}

void ata_set_signature(struct ata_device *dev)
{
	struct ata_taskfile *tf = &dev->tf;
	tf->count = tf->count_exp = 1;
	tf->lba_low = tf->lba_low_exp = 1;
	tf->lba_mid = dev->atapi ? 0x14 : 0;
	tf->lba_high = dev->atapi ? 0xEB : 0;
	tf->lba_mid_exp = tf->lba_high_exp = 0;
	tf->device &= 0x10; /* keep DEV, as the register is shared on a cable */
}

void ata_device_reset(struct ata_device *dev)
{
	dev->generation++;
	dev->phase = ATA_PHASE_IDLE;
	dev->xfer_done = NULL;
	dev->buf_pos = dev->drq_end = dev->buf_len = 0;
	dev->remaining = 0;
	ata_set_signature(dev);
	dev->tf.error = 0x01; /* diagnostic passed */
	/* ATAPI devices come out of reset with DRDY clear (they do not answer ATA commands); disks
	 * are ready at once. An absent device reads 0 (ata_piix then skips it). */
	if (!dev->disk || dev->atapi)
		dev->tf.status = 0;
	else
		dev->tf.status = ATA_STAT_DRDY | ATA_STAT_DSC;
}

void ata_device_power_on(struct ata_device *dev)
{
	dev->multiple = 0;
	dev->write_cache = true;
	dev->xfer_mode = 0x0C; /* PIO 4 until the guest says otherwise */
	if (dev->atapi) { /* sense and tray lock; a medium change before the reset is old news */
		scsi_lun_reset(&dev->lun);
		dev->lun.media_changed = false;
	}
	memset(&dev->tf, 0, sizeof(dev->tf));
	memset(&dev->ncq_error, 0, sizeof(dev->ncq_error));
	ata_device_reset(dev);
}

/* FEATURE, COUNT and the three LBA registers keep the byte written before the last one (LBA48's
 * "HOB" half): where each one's two bytes lie in the task file. */
#define ATA_TF(field) offsetof(struct ata_taskfile, field)
static const struct {
	uint8_t cur, prev;
} ata_reg_pair[] = {
    [ATA_REG_FEATURE] = {ATA_TF(feature), ATA_TF(feature_exp)},
    [ATA_REG_COUNT] = {ATA_TF(count), ATA_TF(count_exp)},
    [ATA_REG_LBA_LOW] = {ATA_TF(lba_low), ATA_TF(lba_low_exp)},
    [ATA_REG_LBA_MID] = {ATA_TF(lba_mid), ATA_TF(lba_mid_exp)},
    [ATA_REG_LBA_HIGH] = {ATA_TF(lba_high), ATA_TF(lba_high_exp)},
};

static bool ata_reg_paired(enum ata_reg reg)
{
	return reg >= ATA_REG_FEATURE && reg <= ATA_REG_LBA_HIGH;
}

void ata_reg_write(struct ata_device *dev, enum ata_reg reg, uint8_t val)
{
	struct ata_taskfile *tf = &dev->tf;

	if (ata_reg_paired(reg)) {
		/* Each write pushes the previous byte into the "previous content" half. */
		uint8_t *b = (uint8_t *)tf;
		b[ata_reg_pair[reg].prev] = b[ata_reg_pair[reg].cur];
		b[ata_reg_pair[reg].cur] = val;
	} else if (reg == ATA_REG_DEVICE) {
		tf->device = val;
	} else if (reg == ATA_REG_COMMAND) {
		ata_command(dev, val);
		return;
	} else if (reg == ATA_REG_DATA) {
		return; /* the transport moves data with ata_pio_write */
	}
	tf->control &= ~ATA_CTL_HOB; /* any command-block write clears HOB */
}

uint8_t ata_reg_read(const struct ata_device *dev, enum ata_reg reg)
{
	const struct ata_taskfile *tf = &dev->tf;
	bool hob = tf->control & ATA_CTL_HOB;

	if (reg == ATA_REG_FEATURE)
		return tf->error;
	if (ata_reg_paired(reg)) {
		const uint8_t *b = (const uint8_t *)tf;
		return b[hob ? ata_reg_pair[reg].prev : ata_reg_pair[reg].cur];
	}
	if (reg == ATA_REG_DEVICE)
		return tf->device;
	if (reg == ATA_REG_COMMAND)
		return tf->status;
	return 0xFF;
}

void ata_command(struct ata_device *dev, uint8_t command)
{
	if (!dev->disk)
		return; /* nobody at this position answers */
	/* A command written while BSY or DRQ is ignored, as by hardware, except ATAPI DEVICE RESET
	 * whose job is to break such a state. */
	if ((dev->tf.status & (ATA_STAT_BSY | ATA_STAT_DRQ)) && !(dev->atapi && command == 0x08))
		return;
	dev->tf.command = command;
	dev->tf.error = 0;
	dev->xfer_done = NULL;
	dev->use_dma = false;
	dev->fua = false;
	ata_cmd_execute(dev, command);
}

/* ---- Command end ---- */

void ata_cmd_end(struct ata_device *dev, uint8_t status, uint8_t error, bool irq)
{
	dev->phase = ATA_PHASE_IDLE;
	dev->xfer_done = NULL;
	dev->tf.status = status;
	dev->tf.error = error;
	if (dev->atapi && dev->tf.command == 0xA0)
		dev->tf.count = ATAPI_IREASON_IO | ATAPI_IREASON_COD;
	if (irq)
		ata_irq(dev);
	if (dev->ops->done)
		dev->ops->done(dev->opaque, dev);
}

void ata_cmd_ok(struct ata_device *dev, bool irq)
{
	ata_cmd_end(dev, ATA_STAT_DRDY | ATA_STAT_DSC, 0, irq);
}

void ata_cmd_error(struct ata_device *dev, uint8_t error)
{
	ata_cmd_end(dev, ATA_STAT_DRDY | ATA_STAT_ERR, error, true);
}

/* The data phase is over: the command's own follow-up, or a plain good end. A PIO-in command
 * ends without an interrupt (the last DRQ block had one); everything else interrupts. */
static void ata_xfer_finish(struct ata_device *dev)
{
	void (*done)(struct ata_device *) = dev->xfer_done;
	dev->xfer_done = NULL;
	if (done)
		done(dev);
	else
		ata_cmd_ok(dev, dev->atapi || dev->use_dma || !dev->to_host);
}

/* A transfer failed: ret is -EIO (medium), -ENOSPC (short DMA table), -EFAULT (bad address). */
static void ata_xfer_fail(struct ata_device *dev, int ret)
{
	uint8_t error = ATA_ERR_ABRT;
	if (dev->use_dma && dev->ops->dma_end)
		dev->ops->dma_end(dev->opaque, dev, ret);
	if (dev->atapi) {
		uint8_t key = ret == -EIO ? SCSI_SENSE_MEDIUM_ERROR : SCSI_SENSE_ABORTED_COMMAND;
		scsi_lun_set_sense(&dev->lun, key,
				   ret == -EIO ? SCSI_ASC_READ_ERROR : SCSI_ASC_NONE);
		error |= (uint8_t)(key << 4);
	} else if (ret == -EIO && dev->to_host) {
		error = ATA_ERR_UNC;
	}
	ata_cmd_error(dev, error);
}

/* ---- Block requests ---- */

static struct ata_req *ata_req_new(struct ata_device *dev, size_t bounce)
{
	struct ata_req *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	if (bounce) {
		req->bounce = malloc(bounce);
		if (!req->bounce) {
			free(req);
			return NULL;
		}
	}
	req->dev = dev;
	req->generation = dev->generation;
	req->aio.opaque = req;
	return req;
}

static void ata_req_free(struct ata_req *req)
{
	free(req->bounce);
	free(req);
}

/* Common completion prologue: lock, and drop the request if a reset came in between. Returns
 * false when the request is stale (it is then freed and the lock released). */
static bool ata_req_claim(struct ata_req *req)
{
	struct ata_device *dev = req->dev;
	ata_lock(dev);
	/* The block layer is done with the request's memory: a reset waiting for the device to
	 * go idle may proceed once the count reaches 0. */
	if (dev->inflight && --dev->inflight == 0 && dev->ops && dev->ops->idle)
		dev->ops->idle(dev->opaque, dev);
	if (req->generation != dev->generation) {
		ata_unlock(dev);
		ata_req_free(req);
		return false;
	}
	return true;
}

static int ata_req_submit(struct ata_device *dev, struct ata_req *req, int op, uint64_t offset,
			  void (*cb)(struct block_aio_req *, int))
{
	req->aio.op = op;
	req->aio.offset = offset;
	req->aio.cb = cb;
	if (!dev->disk->aio)
		return -ENOMEDIUM;
	int ret = block_aio_submit(dev->disk->aio, &req->aio);
	if (ret == 0)
		dev->inflight++;
	return ret;
}

static void ata_simple_cb(struct block_aio_req *aio, int ret)
{
	struct ata_req *req = aio->opaque;
	struct ata_device *dev = req->dev;
	if (!ata_req_claim(req))
		return;
	void (*done)(struct ata_device *, int) = req->simple_done;
	ata_req_free(req);
	done(dev, ret);
	ata_unlock(dev);
}

int ata_submit_simple(struct ata_device *dev, int op, uint64_t offset, uint64_t len,
		      void (*done)(struct ata_device *dev, int ret))
{
	struct ata_req *req = ata_req_new(dev, 0);
	if (!req)
		return -ENOMEM;
	req->simple_done = done;
	req->aio.len = len;
	int ret = ata_req_submit(dev, req, op, offset, ata_simple_cb);
	if (ret < 0) {
		ata_req_free(req);
	} else {
		dev->phase = ATA_PHASE_BUSY;
		dev->tf.status = ATA_STAT_BSY;
	}
	return ret;
}

/* With the write cache turned off (SET FEATURES 82h), or for a FUA write, a write is durable
 * before it completes: a FLUSH submitted after the data's request completed covers it. */
static void ata_write_flushed(struct ata_device *dev, int ret)
{
	if (ret < 0)
		ata_xfer_fail(dev, -EIO);
	else
		ata_xfer_finish(dev);
}

static void ata_write_end(struct ata_device *dev)
{
	if ((!dev->write_cache || dev->fua) && !dev->disk->flush_ignored) {
		int ret = ata_submit_simple(dev, BLOCK_AIO_FLUSH, 0, 0, ata_write_flushed);
		if (ret < 0)
			ata_xfer_fail(dev, -EIO);
		return;
	}
	ata_xfer_finish(dev);
}

static void ata_medium_end(struct ata_device *dev)
{
	if (dev->use_dma && dev->ops->dma_end)
		dev->ops->dma_end(dev->opaque, dev, 0);
	if (!dev->to_host)
		ata_write_end(dev);
	else
		ata_xfer_finish(dev);
}

/* ---- PIO ---- */

static void ata_pio_drq(struct ata_device *dev, size_t len, bool first)
{
	dev->drq_end = dev->buf_pos + len;
	dev->phase = dev->to_host ? ATA_PHASE_PIO_IN : ATA_PHASE_PIO_OUT;
	dev->tf.status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_DRQ;
	if (dev->atapi) {
		dev->tf.lba_mid = len & 0xFF;
		dev->tf.lba_high = len >> 8;
		dev->tf.count = dev->to_host ? ATAPI_IREASON_IO : 0;
	}
	/* ATA PIO-out: the first block is asked for without an interrupt (the host polls DRQ). */
	if (!first || dev->to_host || dev->atapi)
		ata_irq(dev);
	if (dev->ops->pio_ready)
		dev->ops->pio_ready(dev->opaque, dev, dev->to_host, len);
}

static size_t ata_pio_chunk(const struct ata_device *dev, uint64_t left)
{
	size_t chunk = dev->drq_bytes ? dev->drq_bytes : 512;
	if (chunk > ATA_BUF_SIZE)
		chunk = ATA_BUF_SIZE;
	return left < chunk ? (size_t)left : chunk;
}

/* The completion of one transfer to or from the medium: a stale request is dropped, an I/O error
 * fails the command; otherwise the position moves on and `next` continues the command. */
static void ata_xfer_cb(struct block_aio_req *aio, int ret,
			void (*next)(struct ata_device *dev, struct ata_req *req))
{
	struct ata_req *req = aio->opaque;
	struct ata_device *dev = req->dev;
	if (!ata_req_claim(req))
		return;
	if (ret < 0) {
		ata_xfer_fail(dev, -EIO);
	} else {
		dev->offset += req->len;
		dev->remaining -= req->len;
		next(dev, req);
	}
	ata_req_free(req);
	ata_unlock(dev);
}

static void ata_pio_read_done(struct ata_device *dev, struct ata_req *req)
{
	memcpy(dev->buf, req->bounce, req->len);
	dev->buf_pos = 0;
	dev->buf_len = req->len;
	ata_pio_drq(dev, req->len, false);
}

static void ata_pio_read_cb(struct block_aio_req *aio, int ret)
{
	ata_xfer_cb(aio, ret, ata_pio_read_done);
}

static void ata_pio_read_next(struct ata_device *dev)
{
	size_t len = ata_pio_chunk(dev, dev->remaining);
	struct ata_req *req = ata_req_new(dev, len);
	if (!req) {
		ata_xfer_fail(dev, -ENOMEM);
		return;
	}
	req->len = len;
	req->iov[0] = (struct iovec){req->bounce, len};
	req->aio.iov = req->iov;
	req->aio.iovcnt = 1;
	dev->phase = ATA_PHASE_BUSY;
	dev->tf.status = ATA_STAT_BSY;
	int ret = ata_req_submit(dev, req, BLOCK_AIO_READ, dev->offset, ata_pio_read_cb);
	if (ret < 0) {
		ata_req_free(req);
		ata_xfer_fail(dev, -EIO);
	}
}

static void ata_pio_write_done(struct ata_device *dev, struct ata_req *req)
{
	(void)req;
	dev->buf_pos = 0;
	if (dev->remaining)
		ata_pio_drq(dev, ata_pio_chunk(dev, dev->remaining), false);
	else
		ata_write_end(dev);
}

static void ata_pio_write_cb(struct block_aio_req *aio, int ret)
{
	ata_xfer_cb(aio, ret, ata_pio_write_done);
}

static void ata_pio_write_block(struct ata_device *dev)
{
	size_t len = dev->drq_end;
	struct ata_req *req = ata_req_new(dev, len);
	if (!req) {
		ata_xfer_fail(dev, -ENOMEM);
		return;
	}
	memcpy(req->bounce, dev->buf, len);
	req->len = len;
	req->iov[0] = (struct iovec){req->bounce, len};
	req->aio.iov = req->iov;
	req->aio.iovcnt = 1;
	dev->phase = ATA_PHASE_BUSY;
	dev->tf.status = ATA_STAT_BSY;
	int ret = ata_req_submit(dev, req, BLOCK_AIO_WRITE, dev->offset, ata_pio_write_cb);
	if (ret < 0) {
		ata_req_free(req);
		ata_xfer_fail(dev, -EIO);
	}
}

size_t ata_pio_read(struct ata_device *dev, void *data, size_t len)
{
	if (dev->phase != ATA_PHASE_PIO_IN)
		return 0;
	size_t n = dev->drq_end - dev->buf_pos;
	if (n > len)
		n = len;
	memcpy(data, dev->buf + dev->buf_pos, n);
	dev->buf_pos += n;
	if (dev->buf_pos < dev->drq_end)
		return n;
	if (dev->from_medium) {
		if (dev->remaining)
			ata_pio_read_next(dev);
		else
			ata_xfer_finish(dev);
	} else if (dev->buf_pos < dev->buf_len) {
		ata_pio_drq(dev, ata_pio_chunk(dev, dev->buf_len - dev->buf_pos), false);
	} else {
		ata_xfer_finish(dev);
	}
	return n;
}

size_t ata_pio_write(struct ata_device *dev, const void *data, size_t len)
{
	if (dev->phase != ATA_PHASE_PIO_OUT && dev->phase != ATA_PHASE_PACKET)
		return 0;
	size_t n = dev->drq_end - dev->buf_pos;
	if (n > len)
		n = len;
	memcpy(dev->buf + dev->buf_pos, data, n);
	dev->buf_pos += n;
	if (dev->buf_pos < dev->drq_end)
		return n;
	if (dev->phase == ATA_PHASE_PACKET) {
		memcpy(dev->packet, dev->buf, sizeof(dev->packet));
		dev->phase = ATA_PHASE_BUSY;
		dev->tf.status = ATA_STAT_BSY;
		atapi_execute(dev);
	} else if (dev->from_medium) {
		ata_pio_write_block(dev);
	} else if (dev->buf_pos < dev->buf_len) {
		ata_pio_drq(dev, ata_pio_chunk(dev, dev->buf_len - dev->buf_pos), false);
	} else {
		ata_xfer_finish(dev);
	}
	return n;
}

/* ---- DMA ---- */

static void ata_dma_wait(struct ata_device *dev)
{
	if (!dev->ops->dma_ready || !dev->ops->dma_map) {
		ata_cmd_abort(dev); /* this transport has no DMA engine */
		return;
	}
	dev->phase = ATA_PHASE_DMA_WAIT;
	dev->tf.status = ATA_STAT_BSY | ATA_STAT_DRDY | ATA_STAT_DSC;
	dev->ops->dma_ready(dev->opaque, dev, dev->to_host);
}

/* DMA of dev->buf: small, so copied in one go. */
static void ata_dma_buf(struct ata_device *dev)
{
	struct iovec iov[ATA_DMA_IOV_MAX];
	size_t pos = 0;
	while (pos < dev->buf_len) {
		size_t mapped = 0;
		int n = dev->ops->dma_map(dev->opaque, dev, iov, ATA_DMA_IOV_MAX,
					  dev->buf_len - pos, &mapped);
		if (n < 0 || mapped == 0 || mapped > dev->buf_len - pos) {
			ata_xfer_fail(dev, n < 0 ? n : -ENOSPC);
			return;
		}
		if (dev->to_host)
			iov_from_buf(iov, n, 0, dev->buf + pos, mapped);
		else
			iov_to_buf(iov, n, 0, dev->buf + pos, mapped);
		pos += mapped;
	}
	if (dev->ops->dma_end)
		dev->ops->dma_end(dev->opaque, dev, 0);
	ata_xfer_finish(dev);
}

static void ata_dma_step(struct ata_device *dev);

static void ata_dma_done(struct ata_device *dev, struct ata_req *req)
{
	(void)req;
	if (dev->remaining)
		ata_dma_step(dev);
	else
		ata_medium_end(dev);
}

static void ata_dma_cb(struct block_aio_req *aio, int ret)
{
	ata_xfer_cb(aio, ret, ata_dma_done);
}

static void ata_dma_step(struct ata_device *dev)
{
	uint64_t chunk = dev->remaining < ATA_DMA_CHUNK ? dev->remaining : ATA_DMA_CHUNK;
	struct ata_req *req = ata_req_new(dev, 0);
	size_t mapped = 0;
	if (!req) {
		ata_xfer_fail(dev, -ENOMEM);
		return;
	}
	int n = dev->ops->dma_map(dev->opaque, dev, req->iov, ATA_DMA_IOV_MAX, chunk, &mapped);
	/* Fewer bytes than asked with room left in iov: the table ended (the guest shortened it
	 * after dma_check): fail before this part moves. */
	if (n >= 0 && mapped < chunk && n < ATA_DMA_IOV_MAX)
		n = -ENOSPC;
	if (n < 0 || mapped == 0 || mapped > chunk) {
		ata_req_free(req);
		ata_xfer_fail(dev, n < 0 ? n : -ENOSPC);
		return;
	}
	req->len = mapped;
	req->aio.iov = req->iov;
	req->aio.iovcnt = n;
	int ret = ata_req_submit(dev, req, dev->to_host ? BLOCK_AIO_READ : BLOCK_AIO_WRITE,
				 dev->offset, ata_dma_cb);
	if (ret < 0) {
		ata_req_free(req);
		ata_xfer_fail(dev, -EIO);
	}
}

void ata_dma_go(struct ata_device *dev)
{
	if (dev->phase != ATA_PHASE_DMA_WAIT)
		return;
	dev->phase = ATA_PHASE_DMA;
	if (dev->from_medium) {
		int ret =
		    dev->ops->dma_check ? dev->ops->dma_check(dev->opaque, dev, dev->remaining) : 0;
		if (ret < 0)
			ata_xfer_fail(dev, ret);
		else
			ata_dma_step(dev);
	} else
		ata_dma_buf(dev);
}

/* ---- Starting a data phase ---- */

void ata_xfer_buf(struct ata_device *dev, size_t len, bool to_host)
{
	dev->from_medium = false;
	dev->to_host = to_host;
	dev->buf_len = len > ATA_BUF_SIZE ? ATA_BUF_SIZE : len;
	dev->buf_pos = 0;
	if (!dev->buf_len)
		ata_xfer_finish(dev);
	else if (dev->use_dma)
		ata_dma_wait(dev);
	else
		ata_pio_drq(dev, ata_pio_chunk(dev, dev->buf_len), true);
}

void ata_xfer_medium(struct ata_device *dev, uint64_t offset, uint64_t len, bool to_host)
{
	dev->from_medium = true;
	dev->to_host = to_host;
	dev->offset = offset;
	dev->remaining = len;
	dev->buf_pos = 0;
	if (!len)
		ata_xfer_finish(dev);
	else if (dev->use_dma)
		ata_dma_wait(dev);
	else if (to_host)
		ata_pio_read_next(dev);
	else
		ata_pio_drq(dev, ata_pio_chunk(dev, len), true);
}
