/* VDI data I/O: reads, writes with block allocation, flush, discard, write-zeroes, block status.
 *
 * Data I/O runs concurrently under io_lock held shared; allocation takes meta_lock, writes the new
 * block in full (the request's data, the rest from the parent or zeroes) and only then publishes
 * the map entry (see vdi_meta.c for the order), so an entry never points at unwritten data.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

#define VDI_FILL_CHUNK (1u << 20)

static int vdi_check_request(struct block_device *bs, uint64_t offset, uint64_t len, bool write)
{
	if (offset > bs->size || len > bs->size - offset)
		return error_set(-EINVAL,
				 "%s: request [%" PRIu64 ", +%" PRIu64
				 ") beyond the disk size %" PRIu64,
				 bs->filename, offset, len, bs->size);
	if (write && !(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	return 0;
}

/* The start of every change to the disk: the request checked, the image's modification UUID
 * renewed, io_lock taken (exclusive where blocks may be freed under readers). 1 for an empty
 * request (nothing to do, no lock), 0 with the lock held, -errno without it. */
static int vdi_write_begin(struct block_device *bs, uint64_t offset, uint64_t len, bool exclusive)
{
	struct vdi_state *s = bs->state;
	int ret = vdi_check_request(bs, offset, len, true);

	if (ret < 0 || len == 0)
		return ret < 0 ? ret : 1;
	ret = vdi_refresh_modify_uuid(bs);
	if (ret < 0)
		return ret;
	if (exclusive)
		pthread_rwlock_wrlock(&s->io_lock);
	else
		pthread_rwlock_rdlock(&s->io_lock);
	return 0;
}

/* Bytes from pos to the end of its block or to end, whichever comes first. */
static uint64_t vdi_block_rest(struct vdi_state *s, uint64_t pos, uint64_t end)
{
	uint64_t n = s->block_size - pos % s->block_size;

	return n < end - pos ? n : end - pos;
}

static bool vdi_has_parent(struct block_device *bs)
{
	struct vdi_state *s = bs->state;

	return s->type == VDI_TYPE_DIFF || bs->backing_name;
}

/* Length of the run from pos (at most max bytes) whose blocks map contiguously in the file. */
static uint64_t vdi_run(struct vdi_state *s, uint64_t pos, uint64_t max, uint32_t e)
{
	uint64_t blk = pos / s->block_size;
	uint64_t n = s->block_size - pos % s->block_size;

	if (s->block_extra == 0 && VDI_IS_ALLOCATED(e))
		while (n < max && blk + 1 < s->blocks && e + 1 < s->blocks &&
		       vdi_entry(s, blk + 1) == e + 1) {
			blk++;
			e++;
			n += s->block_size;
		}
	return n < max ? n : max;
}

/* Records a message for a failed host-file call (they set none themselves). */
static int vdi_host_error(struct block_device *bs, int ret, const char *what, uint64_t pos)
{
	if (ret >= 0)
		return ret;
	return error_set(ret, "%s: %s at %" PRIu64 " failed", bs->filename, what, pos);
}

static int vdi_bad_entry(struct block_device *bs, uint64_t blk, uint32_t e)
{
	return error_set(-EIO, "%s: VDI block %" PRIu64 " maps to invalid data block %u",
			 bs->filename, blk, e);
}

static int vdi_map_run(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
		       struct block_map *m)
{
	struct vdi_state *s = bs->state;
	uint64_t blk = offset / s->block_size;
	uint32_t e = vdi_entry(s, (uint32_t)blk);

	(void)opaque;
	if (VDI_IS_ALLOCATED(e) && e >= s->blocks)
		return vdi_bad_entry(bs, blk, e);
	m->len = vdi_run(s, offset, len, e);
	if (VDI_IS_ALLOCATED(e)) {
		m->kind = BLOCK_MAP_HOST;
		m->host = vdi_data_offset(s, e) + offset % s->block_size;
	} else {
		m->kind = e == VDI_BLOCK_ZERO ? BLOCK_MAP_ZERO : BLOCK_MAP_BACKING;
	}
	return 0;
}

/* Fills [in, in+len) of the new data block idx for virtual block blk with what the block showed
 * before (the parent's data or zeroes). */
static int vdi_fill(struct block_device *bs, uint64_t blk, uint32_t idx, uint64_t in, uint64_t len,
		    bool zero, uint64_t old_size)
{
	struct vdi_state *s = bs->state;
	uint64_t host = vdi_data_offset(s, idx) + in;
	uint64_t vpos = blk * s->block_size + in;
	uint8_t *buf;
	int ret = 0;

	if (!len)
		return 0;
	if (!zero && vpos < bs->size) {
		size_t chunk = len < VDI_FILL_CHUNK ? (size_t)len : VDI_FILL_CHUNK;
		uint64_t vend = vpos + len < bs->size ? vpos + len : bs->size;

		buf = malloc(chunk);
		if (!buf)
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
		while (vpos < vend && ret == 0) {
			size_t n = vend - vpos < chunk ? (size_t)(vend - vpos) : chunk;
			struct iovec v = {buf, n};

			ret = block_read_backing(bs, vpos, &v, 1);
			if (ret == 0)
				ret = host_file_pwrite(&bs->file, host, buf, n);
			vpos += n;
			host += n;
			len -= n;
		}
		free(buf);
		if (ret < 0)
			return error_set(ret, "%s: cannot copy parent data into a new block",
					 bs->filename);
	}
	/* What remains must read as zeroes; only the part below the old end of file can hold stale
	 * bytes (the file was just extended over the rest). */
	if (len && host < old_size) {
		uint64_t n = old_size - host < len ? old_size - host : len;

		ret = host_file_write_zeroes(&bs->file, host, n);
		if (ret < 0)
			return error_set(ret, "%s: cannot zero a new block", bs->filename);
	}
	return 0;
}

/* Writes [in, in+n) of unallocated block blk: sl/nseg, or zeroes when sl is NULL. */
static int vdi_alloc_write(struct block_device *bs, uint32_t blk, uint64_t in, uint64_t n,
			   const struct iovec *sl, int nseg)
{
	struct vdi_state *s = bs->state;
	uint32_t e, idx;
	uint64_t base, end, old_size;
	bool zero;
	int ret;

	pthread_mutex_lock(&s->meta_lock);
	e = vdi_entry(s, blk);
	if (VDI_IS_ALLOCATED(e)) { /* another writer allocated it meanwhile */
		pthread_mutex_unlock(&s->meta_lock);
		if (e >= s->blocks)
			return vdi_bad_entry(bs, blk, e);
		if (!sl)
			return vdi_host_error(
			    bs, host_file_write_zeroes(&bs->file, vdi_data_offset(s, e) + in, n),
			    "write-zeroes", (uint64_t)blk * s->block_size + in);
		return vdi_host_error(
		    bs, host_file_pwritev(&bs->file, vdi_data_offset(s, e) + in, sl, nseg), "write",
		    (uint64_t)blk * s->block_size + in);
	}
	if (s->allocated >= s->blocks) {
		pthread_mutex_unlock(&s->meta_lock);
		return error_set(-EIO, "%s: VDI has no free data block index", bs->filename);
	}
	idx = s->allocated;
	base = vdi_data_offset(s, idx) - s->block_extra;
	end = base + vdi_block_bytes(s);
	old_size = s->file_size;
	zero = e == VDI_BLOCK_ZERO || !vdi_has_parent(bs);

	ret = 0;
	if (end > s->file_size) {
		ret = host_file_truncate(&bs->file, end);
		if (ret < 0)
			error_set(ret, "%s: cannot extend the image", bs->filename);
		else
			s->file_size = end;
	}
	if (ret == 0 && s->block_extra && base < old_size) {
		uint64_t z = old_size - base < s->block_extra ? old_size - base : s->block_extra;

		ret = vdi_host_error(bs, host_file_write_zeroes(&bs->file, base, z),
				     "zeroing a new block", base);
	}
	if (ret == 0)
		ret = vdi_fill(bs, blk, idx, 0, in, zero, old_size);
	if (ret == 0)
		ret = vdi_fill(bs, blk, idx, in + n, s->block_size - in - n, zero, old_size);
	if (ret == 0) {
		uint64_t at = vdi_data_offset(s, idx) + in;

		if (sl)
			ret = host_file_pwritev(&bs->file, at, sl, nseg);
		else if (at < old_size)
			ret = host_file_write_zeroes(&bs->file, at, n);
		if (ret < 0)
			error_set(ret, "%s: cannot write a new block", bs->filename);
	}
	if (ret == 0) {
		/* Publish: the count, then the entry (vdi_commit_entry writes them in order). */
		s->owner[idx] = blk;
		s->allocated++;
		put_le32(s->head + VDI_OFF_ALLOCATED, s->allocated);
		vdi_set_entry(s, blk, idx);
		ret = vdi_commit_entry(bs, blk);
		if (ret < 0) {
			vdi_set_entry(s, blk, e);
			s->allocated--;
			s->owner[idx] = VDI_BLOCK_FREE;
			put_le32(s->head + VDI_OFF_ALLOCATED, s->allocated);
		}
	}
	pthread_mutex_unlock(&s->meta_lock);
	return ret;
}

static int vdi_alloc_run(struct block_device *bs, void *opaque, uint64_t offset,
			 const struct block_map *m, const struct iovec *part, int n)
{
	struct vdi_state *s = bs->state;

	(void)opaque;
	return vdi_alloc_write(bs, (uint32_t)(offset / s->block_size), offset % s->block_size,
			       m->len, part, n);
}

static const struct block_map_ops vdi_map_ops = {.map = vdi_map_run, .io = vdi_alloc_run};

int vdi_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	struct vdi_state *s = bs->state;
	int ret = vdi_check_request(bs, offset, iov_size(iov, iovcnt), false);

	if (ret < 0)
		return ret;
	pthread_rwlock_rdlock(&s->io_lock);
	ret = block_map_preadv(bs, offset, iov, iovcnt, &vdi_map_ops, NULL);
	pthread_rwlock_unlock(&s->io_lock);
	return ret;
}

int vdi_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	struct vdi_state *s = bs->state;
	int ret = vdi_write_begin(bs, offset, iov_size(iov, iovcnt), false);

	if (ret != 0)
		return ret < 0 ? ret : 0;
	ret = block_map_pwritev(bs, offset, iov, iovcnt, &vdi_map_ops, NULL);
	pthread_rwlock_unlock(&s->io_lock);
	return ret;
}

int vdi_flush(struct block_device *bs)
{
	int ret = host_file_flush(&bs->file);

	if (ret < 0)
		return error_set(ret, "%s: flush failed", bs->filename);
	return 0;
}

/* Is [pos, pos+n) all of block blk (the last block counts whole when the range reaches the end)? */
static bool vdi_whole_block(struct block_device *bs, uint64_t pos, uint64_t n)
{
	struct vdi_state *s = bs->state;

	return pos % s->block_size == 0 && (n == s->block_size || pos + n == bs->size);
}

/* Entry a freed block gets: zeroes must not reveal the parent's data underneath. */
static uint32_t vdi_freed_entry(struct block_device *bs)
{
	return vdi_has_parent(bs) ? VDI_BLOCK_ZERO : VDI_BLOCK_FREE;
}

int vdi_discard(struct block_device *bs, uint64_t offset, uint64_t len)
{
	struct vdi_state *s = bs->state;
	bool fixed = s->type == VDI_TYPE_FIXED;
	int ret = vdi_write_begin(bs, offset, len, !fixed);

	if (ret != 0)
		return ret < 0 ? ret : 0;
	pthread_mutex_lock(&s->meta_lock);
	for (uint64_t pos = offset; pos < offset + len && ret == 0;) {
		uint64_t blk = pos / s->block_size;
		uint64_t n = vdi_block_rest(s, pos, offset + len);
		uint32_t e = vdi_entry(s, (uint32_t)blk);

		/* Partial blocks are left alone: discard is advisory. */
		if (vdi_whole_block(bs, pos, n) && VDI_IS_ALLOCATED(e) && e < s->blocks) {
			if (fixed) /* a fixed image keeps its blocks; give the space back */
				ret = vdi_host_error(bs,
						     host_file_punch_hole(&bs->file,
									  vdi_data_offset(s, e),
									  s->block_size),
						     "discard", pos);
			else
				ret = vdi_free_block(bs, (uint32_t)blk, vdi_freed_entry(bs));
		}
		pos += n;
	}
	pthread_mutex_unlock(&s->meta_lock);
	pthread_rwlock_unlock(&s->io_lock);
	return ret;
}

/* Zeroes within one block; io_lock held (exclusive when unmap). */
static int vdi_zero_block(struct block_device *bs, uint64_t pos, uint64_t n, bool unmap)
{
	struct vdi_state *s = bs->state;
	uint32_t blk = (uint32_t)(pos / s->block_size);
	uint64_t in = pos % s->block_size;
	uint32_t e = vdi_entry(s, blk);
	int ret = 0;

	if (VDI_IS_ALLOCATED(e) && e >= s->blocks)
		return vdi_bad_entry(bs, blk, e);
	if (VDI_IS_ALLOCATED(e) && unmap && vdi_whole_block(bs, pos, n)) {
		pthread_mutex_lock(&s->meta_lock);
		ret = vdi_free_block(bs, blk, vdi_freed_entry(bs));
		pthread_mutex_unlock(&s->meta_lock);
		return ret;
	}
	if (VDI_IS_ALLOCATED(e))
		return vdi_host_error(
		    bs, host_file_write_zeroes(&bs->file, vdi_data_offset(s, e) + in, n),
		    "write-zeroes", pos);
	if (e == VDI_BLOCK_ZERO || !vdi_has_parent(bs))
		return 0;		   /* reads zeroes already */
	if (vdi_whole_block(bs, pos, n)) { /* hide the parent's block without allocating */
		pthread_mutex_lock(&s->meta_lock);
		if (vdi_entry(s, blk) == VDI_BLOCK_FREE) {
			vdi_set_entry(s, blk, VDI_BLOCK_ZERO);
			ret = vdi_write_bmap(bs, blk, 1);
			if (ret < 0)
				vdi_set_entry(s, blk, VDI_BLOCK_FREE);
		}
		pthread_mutex_unlock(&s->meta_lock);
		if (vdi_entry(s, blk) == VDI_BLOCK_ZERO || ret < 0)
			return ret;
	}
	return vdi_alloc_write(bs, blk, in, n, NULL, 0);
}

int vdi_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags)
{
	struct vdi_state *s = bs->state;
	bool unmap = (flags & BLOCK_ZERO_MAY_UNMAP) && s->type != VDI_TYPE_FIXED;
	int ret = vdi_write_begin(bs, offset, len, unmap);

	if (ret != 0)
		return ret < 0 ? ret : 0;
	for (uint64_t pos = offset; pos < offset + len && ret == 0;) {
		uint64_t n = vdi_block_rest(s, pos, offset + len);

		ret = vdi_zero_block(bs, pos, n, unmap);
		pos += n;
	}
	pthread_rwlock_unlock(&s->io_lock);
	return ret;
}

static int vdi_entry_status(struct block_device *bs, uint32_t e)
{
	if (VDI_IS_ALLOCATED(e))
		return BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID;
	if (e == VDI_BLOCK_ZERO)
		return BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
	return vdi_has_parent(bs) ? 0 : BLOCK_STATUS_ZERO;
}

int vdi_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		     int *status, uint64_t *map_offset)
{
	struct vdi_state *s = bs->state;
	uint64_t blk, n;
	uint32_t e;
	int st, ret = vdi_check_request(bs, offset, len, false);

	if (ret < 0)
		return ret;
	if (len == 0)
		return error_set(-EINVAL, "%s: empty block-status request", bs->filename);
	pthread_rwlock_rdlock(&s->io_lock);
	blk = offset / s->block_size;
	e = vdi_entry(s, (uint32_t)blk);
	if (VDI_IS_ALLOCATED(e) && e >= s->blocks) {
		pthread_rwlock_unlock(&s->io_lock);
		return vdi_bad_entry(bs, blk, e);
	}
	st = vdi_entry_status(bs, e);
	if (VDI_IS_ALLOCATED(e)) {
		n = vdi_run(s, offset, len, e);
		*map_offset = vdi_data_offset(s, e) + offset % s->block_size;
	} else {
		n = s->block_size - offset % s->block_size;
		while (n < len && blk + 1 < s->blocks &&
		       vdi_entry_status(bs, vdi_entry(s, (uint32_t)blk + 1)) == st) {
			blk++;
			n += s->block_size;
		}
		if (n > len)
			n = len;
	}
	pthread_rwlock_unlock(&s->io_lock);
	*pnum = n;
	*status = st;
	return 0;
}
