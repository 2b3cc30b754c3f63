/* The commands that reach the disk: READ/WRITE(6/10/12/16), SYNCHRONIZE CACHE(10/16), UNMAP and
 * WRITE SAME(10/16) (SBC-3).  Each becomes one block_aio request (UNMAP: one per descriptor, in
 * turn); a write with FUA, or with the write cache off, is followed by a flush before it
 * completes. */
#include <errno.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/scsi/scsi.h"
#include "devices/scsi/scsi_internal.h"
#include "storage/core/block.h"
#include "lib/endian.h"

static unsigned block_size(const struct scsi_lun *lun)
{
	return lun->cdrom ? SCSI_CD_BLOCK : SCSI_DISK_BLOCK;
}

uint64_t scsi_lun_blocks(const struct scsi_lun *lun)
{
	return lun->disk->bs && !lun->tray_open ? lun->disk->size / block_size(lun) : 0;
}

static void io_fail(struct scsi_req *req, int ret)
{
	bool write = req->aio.op != BLOCK_AIO_READ;
	(void)ret;
	scsi_req_check(req, SCSI_SENSE_MEDIUM_ERROR,
		       write ? SCSI_ASC_WRITE_ERROR : SCSI_ASC_READ_ERROR);
	req->xfer = 0;
}

static int io_submit(struct scsi_req *req, enum block_aio_op op, uint64_t offset, uint64_t len);

static void unmap_next(struct scsi_req *req);

/* The block layer's callback: the transport takes its lock and calls scsi_req_resume. */
static void io_done(struct block_aio_req *aio, int ret)
{
	struct scsi_req *req = aio->opaque;
	req->io_callback(req, ret);
}

bool scsi_req_resume(struct scsi_req *req, int ret)
{
	struct scsi_lun *lun = req->lun;
	struct block_aio_req *aio = &req->aio;
	if ((aio->op == BLOCK_AIO_DISCARD) && (ret == -ENOTSUP || ret == -EOPNOTSUPP))
		ret = 0; /* discard is advisory */
	if (ret < 0) {
		io_fail(req, ret);
		goto finished;
	}
	if (aio->op == BLOCK_AIO_DISCARD && req->unmap_next < req->unmap_count) {
		unmap_next(req);
		if (req->status == SCSI_STATUS_GOOD)
			return false;
		goto finished;
	}
	if (aio->op == BLOCK_AIO_WRITE && (req->fua || !lun->write_cache) &&
	    !lun->disk->flush_ignored) {
		req->fua = false;
		if (io_submit(req, BLOCK_AIO_FLUSH, 0, 0) < 0) {
			io_fail(req, -EIO);
			goto finished;
		}
		return false;
	}
	req->status = SCSI_STATUS_GOOD;
finished:
	lun->inflight--;
	return true;
}

static int io_submit(struct scsi_req *req, enum block_aio_op op, uint64_t offset, uint64_t len)
{
	struct block_aio_req *aio = &req->aio;
	const struct iovec *iov = aio->iov;
	int iovcnt = aio->iovcnt;
	*aio = (struct block_aio_req){.op = op, .offset = offset, .cb = io_done, .opaque = req};
	if (op == BLOCK_AIO_READ || op == BLOCK_AIO_WRITE) {
		aio->iov = iov;
		aio->iovcnt = iovcnt;
	} else {
		aio->len = len;
		if (op == BLOCK_AIO_WRITE_ZEROES && req->zero_unmap)
			aio->flags = BLOCK_ZERO_MAY_UNMAP;
	}
	return block_aio_submit(req->lun->disk->aio, aio);
}

/* Submit the first block request of req; false (with the result set) when it failed at once. */
static bool io_start(struct scsi_req *req, enum block_aio_op op, uint64_t offset, uint64_t len)
{
	if (!req->lun->disk->aio) {
		scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
		return true;
	}
	if (io_submit(req, op, offset, len) < 0) {
		req->aio.op = op;
		io_fail(req, -EIO);
		return true;
	}
	req->lun->inflight++;
	return false;
}

/* Decode LBA, block count and FUA of a READ/WRITE CDB. */
static void rw_decode(const uint8_t *cdb, uint64_t *lba, uint64_t *blocks, bool *fua)
{
	switch (cdb[0]) {
	case 0x08: /* READ(6) */
	case 0x0A: /* WRITE(6) */
		*lba = ((uint32_t)(cdb[1] & 0x1F) << 16) | get_be16(cdb + 2);
		*blocks = cdb[4] ? cdb[4] : 256;
		*fua = false;
		return;
	case 0x28: /* READ(10) */
	case 0x2A: /* WRITE(10) */
		*lba = get_be32(cdb + 2);
		*blocks = get_be16(cdb + 7);
		break;
	case 0xA8: /* READ(12) */
	case 0xAA: /* WRITE(12) */
		*lba = get_be32(cdb + 2);
		*blocks = get_be32(cdb + 6);
		break;
	default: /* READ(16), WRITE(16) */
		*lba = get_be64(cdb + 2);
		*blocks = get_be32(cdb + 10);
		break;
	}
	*fua = cdb[1] & 0x08;
}

/* Is [lba, lba+blocks) on the medium? */
static bool range_ok(const struct scsi_lun *lun, uint64_t lba, uint64_t blocks)
{
	uint64_t n = scsi_lun_blocks(lun);
	return lba <= n && blocks <= n - lba;
}

bool scsi_rw(struct scsi_req *req, bool write)
{
	struct scsi_lun *lun = req->lun;
	uint64_t lba, blocks;
	bool fua;
	rw_decode(req->cdb, &lba, &blocks, &fua);
	if (!lun->disk->bs || lun->tray_open) {
		scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
		return true;
	}
	if (write && lun->disk->read_only) {
		scsi_req_check(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return true;
	}
	if (!range_ok(lun, lba, blocks)) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return true;
	}
	uint64_t bytes = blocks * block_size(lun);
	if (!write && req->transport_reads) {
		req->medium_read = true;
		req->read_offset = lba * block_size(lun);
		req->read_len = bytes;
		req->status = SCSI_STATUS_GOOD;
		return true;
	}
	enum scsi_dir want = write ? SCSI_DIR_TO_DEVICE : SCSI_DIR_FROM_DEVICE;
	if (bytes && (req->dir != want || bytes > req->data->bytes)) {
		req->host = SCSI_HOST_OVERRUN;
		return true;
	}
	if (!bytes) {
		req->status = SCSI_STATUS_GOOD;
		return true;
	}
	int n = sg_list_slice(req->data, 0, bytes, req->iov, req->iov_max);
	if (n < 0) {
		req->host = SCSI_HOST_OVERRUN;
		return true;
	}
	req->xfer = bytes;
	req->fua = fua;
	req->aio.iov = req->iov;
	req->aio.iovcnt = n;
	return io_start(req, write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ, lba * block_size(lun),
			bytes);
}

bool scsi_sync_cache(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	bool sixteen = req->cdb[0] == 0x91;
	uint64_t lba = sixteen ? get_be64(req->cdb + 2) : get_be32(req->cdb + 2);
	uint64_t blocks = sixteen ? get_be32(req->cdb + 10) : get_be16(req->cdb + 7);
	if (!range_ok(lun, lba, blocks)) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return true;
	}
	if (lun->disk->read_only || lun->disk->flush_ignored || !lun->disk->bs) {
		req->status = SCSI_STATUS_GOOD;
		return true;
	}
	return io_start(req, BLOCK_AIO_FLUSH, 0, 0);
}

static void unmap_next(struct scsi_req *req)
{
	unsigned i = req->unmap_next++;
	uint64_t off = req->unmap_lba[i] * SCSI_DISK_BLOCK;
	uint64_t len = (uint64_t)req->unmap_len[i] * SCSI_DISK_BLOCK;
	if (io_submit(req, BLOCK_AIO_DISCARD, off, len) < 0) {
		req->aio.op = BLOCK_AIO_DISCARD;
		io_fail(req, -EIO);
	}
}

bool scsi_unmap(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	uint32_t plen = get_be16(req->cdb + 7);
	uint8_t b[8 + 16 * SCSI_UNMAP_MAX_DESCRIPTORS];

	if (lun->disk->read_only) {
		scsi_req_check(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return true;
	}
	if (req->cdb[1] & 0x01) { /* ANCHOR: not supported */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return true;
	}
	if (plen == 0) {
		req->status = SCSI_STATUS_GOOD;
		return true;
	}
	if (plen < 8 || req->dir != SCSI_DIR_TO_DEVICE || req->data->bytes < plen) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH);
		return true;
	}
	size_t n = plen < sizeof(b) ? plen : sizeof(b);
	req->xfer = sg_list_to_buf(req->data, 0, b, n);
	uint32_t dlen = get_be16(b + 2);
	if (dlen % 16 || dlen > n - 8) { /* whole descriptors inside what was sent */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST,
			       dlen / 16 > SCSI_UNMAP_MAX_DESCRIPTORS ? SCSI_ASC_INVALID_FIELD_PARAM
								      : SCSI_ASC_PARAM_LIST_LENGTH);
		return true;
	}
	req->unmap_count = 0;
	req->unmap_next = 0;
	for (uint32_t i = 0; i < dlen / 16; i++) {
		const uint8_t *d = b + 8 + i * 16;
		uint64_t lba = get_be64(d);
		uint32_t count = get_be32(d + 8);
		if (!range_ok(lun, lba, count)) {
			scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
			return true;
		}
		if (!count)
			continue;
		req->unmap_lba[req->unmap_count] = lba;
		req->unmap_len[req->unmap_count++] = count;
	}
	if (!req->unmap_count || !lun->disk->aio) {
		req->status = SCSI_STATUS_GOOD;
		return true;
	}
	req->unmap_next = 1;
	return io_start(req, BLOCK_AIO_DISCARD, req->unmap_lba[0] * SCSI_DISK_BLOCK,
			(uint64_t)req->unmap_len[0] * SCSI_DISK_BLOCK);
}

/* WRITE SAME(10) and (16): only a block of zeroes (what Linux sends), written as zeroes that may
 * be unmapped when the UNMAP bit asks for it. */
bool scsi_write_same(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	bool sixteen = req->cdb[0] == 0x93;
	uint64_t lba = sixteen ? get_be64(req->cdb + 2) : get_be32(req->cdb + 2);
	uint32_t blocks = sixteen ? get_be32(req->cdb + 10) : get_be16(req->cdb + 7);
	uint8_t block[SCSI_DISK_BLOCK];

	if (lun->disk->read_only) {
		scsi_req_check(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return true;
	}
	if (req->cdb[1] & 0x06) { /* LBDATA, PBDATA: obsolete */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return true;
	}
	req->zero_unmap = req->cdb[1] & 0x08; /* UNMAP */
	/* blocks 0 means "to the end of the medium", more than we advertise: refuse it. */
	if (blocks == 0 || blocks > (1u << 21)) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return true;
	}
	if (!range_ok(lun, lba, blocks)) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return true;
	}
	if (!sixteen && (req->cdb[1] & 0x01)) { /* NDOB is WRITE SAME(16)'s only */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return true;
	}
	if (!(req->cdb[1] & 0x01)) { /* without NDOB the data-out block must be there, and zero */
		if (req->dir != SCSI_DIR_TO_DEVICE || req->data->bytes < SCSI_DISK_BLOCK) {
			req->host = SCSI_HOST_OVERRUN;
			return true;
		}
		req->xfer = sg_list_to_buf(req->data, 0, block, sizeof(block));
		for (unsigned i = 0; i < sizeof(block); i++)
			if (block[i]) {
				scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST,
					       SCSI_ASC_INVALID_FIELD_CDB);
				return true;
			}
	}
	if (!lun->disk->aio) {
		scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
		return true;
	}
	return io_start(req, BLOCK_AIO_WRITE_ZEROES, lba * SCSI_DISK_BLOCK,
			(uint64_t)blocks * SCSI_DISK_BLOCK);
}
