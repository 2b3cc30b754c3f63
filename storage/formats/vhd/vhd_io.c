/* VHD data I/O: fixed disks map straight onto the file; dynamic disks go through the BAT.
 *
 * BAT entries are read without a lock (an aligned 32-bit load: a reader sees the old or the new
 * value) and set only under s->lock, after the block they name is on disk. A new block is written
 * in this order, so that a crash at any point leaves an image that opens with every completed
 * write intact: the footer at the new end of the file, then the block (bitmap, data, zeroes) over
 * the old footer, then the BAT entry. A crash before the last step leaks the block, nothing more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhd/vhd.h"

static int vhd_io_error(struct block_device *bs, const char *what, uint64_t off, int ret)
{
	return error_set(ret, "%s: %s at offset %llu failed: %s", bs->filename, what,
			 (unsigned long long)off, strerror(-ret));
}

static uint32_t vhd_bat_get(struct vhd_state *s, uint64_t idx)
{
	return __atomic_load_n(&s->bat[idx], __ATOMIC_ACQUIRE);
}

/* Host offset of virtual byte `offset` (allocated blocks), or 0 when the block is free; *run is
 * how far the same block goes, bounded by len. */
static uint64_t vhd_map(struct vhd_state *s, uint64_t offset, uint64_t len, uint64_t *run)
{
	uint64_t idx = offset / s->block_size, in = offset % s->block_size;
	uint32_t e = vhd_bat_get(s, idx);

	*run = s->block_size - in < len ? s->block_size - in : len;
	if (e == VHD_BAT_FREE)
		return 0;
	return (uint64_t)e * VHD_SECTOR + s->bitmap_size + in;
}

/* Differencing images: is every sector of block idx here (bitmap all ones)? Cached once true. */
static int vhd_block_full(struct block_device *bs, uint64_t idx, uint8_t *bitmap, bool *full)
{
	struct vhd_state *s = bs->state;
	uint32_t bits = s->block_size / VHD_SECTOR;
	int ret;

	*full = __atomic_load_n(&s->full[idx], __ATOMIC_ACQUIRE);
	if (*full)
		return 0;
	uint64_t off = (uint64_t)vhd_bat_get(s, idx) * VHD_SECTOR;
	ret = host_file_pread(&bs->file, off, bitmap, s->bitmap_size);
	if (ret < 0)
		return vhd_io_error(bs, "bitmap read", off, ret);
	*full = true;
	for (uint32_t i = 0; i < bits && *full; i++)
		*full = bitmap[i / 8] & (0x80 >> (i % 8));
	if (*full)
		__atomic_store_n(&s->full[idx], 1, __ATOMIC_RELEASE);
	return 0;
}

static bool vhd_sector_present(const uint8_t *bitmap, uint64_t sec)
{
	return bitmap[sec / 8] & (0x80 >> (sec % 8));
}

/* One read request's view of the differencing bitmap: the last block's, read once. */
struct vhd_reader {
	uint8_t *bitmap;
	uint64_t idx;
	bool loaded, full;
};

/* Within allocated block idx of a differencing image, cut m (HOST at host) to the leading run of
 * sectors with the same bitmap bit: present ones are read here, the others from the parent. */
static int vhd_map_sectors(struct block_device *bs, struct vhd_reader *r, uint64_t offset,
			   struct block_map *m)
{
	struct vhd_state *s = bs->state;
	uint64_t idx = offset / s->block_size, in = offset % s->block_size, n;
	int ret;

	if (!r->loaded || r->idx != idx) {
		ret = vhd_block_full(bs, idx, r->bitmap, &r->full);
		if (ret < 0)
			return ret;
		r->idx = idx;
		r->loaded = true;
	}
	if (r->full)
		return 0;
	bool here = vhd_sector_present(r->bitmap, in / VHD_SECTOR);
	n = VHD_SECTOR - in % VHD_SECTOR;
	while (n < m->len && vhd_sector_present(r->bitmap, (in + n) / VHD_SECTOR) == here)
		n += VHD_SECTOR;
	if (n < m->len)
		m->len = n;
	if (!here)
		m->kind = BLOCK_MAP_BACKING;
	return 0;
}

/* Where the block map puts the run at offset: HOST, or ZERO for a free block (what that reads as
 * is the caller's business). A fixed disk maps one to one. */
static void vhd_map_block(struct vhd_state *s, uint64_t offset, uint64_t len, struct block_map *m)
{
	m->kind = BLOCK_MAP_HOST;
	if (s->type == VHD_TYPE_FIXED) {
		m->host = offset;
		m->len = len;
		return;
	}
	m->host = vhd_map(s, offset, len, &m->len);
	if (!m->host)
		m->kind = BLOCK_MAP_ZERO;
}

static int vhd_map_read(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			struct block_map *m)
{
	struct vhd_state *s = bs->state;

	vhd_map_block(s, offset, len, m);
	if (s->diff && m->kind == BLOCK_MAP_ZERO)
		m->kind = BLOCK_MAP_BACKING;
	else if (s->diff)
		return vhd_map_sectors(bs, opaque, offset, m);
	return 0;
}

static const struct block_map_ops vhd_read_ops = {.map = vhd_map_read};

int vhd_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	struct vhd_state *s = bs->state;
	struct vhd_reader r = {0};
	int ret;

	if (s->diff) {
		r.bitmap = malloc(s->bitmap_size);
		if (!r.bitmap)
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	}
	ret = block_map_preadv(bs, offset, iov, iovcnt, &vhd_read_ops, &r);
	free(r.bitmap);
	return ret;
}

/* Allocate block idx holding the bytes [in, in+run) given in part/n; zeroes elsewhere. When the
 * block lies past the end of the file (the usual case: only the footer is in the way), the zeroes
 * are left as a hole; otherwise (space after a crash-lost footer) the whole block is written. */
static int vhd_allocate(struct block_device *bs, uint64_t idx, uint64_t in, uint64_t run,
			const struct iovec *part, int n)
{
	struct vhd_state *s = bs->state;
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	uint64_t pos = s->footer_pos, fsize;
	bool whole;
	uint8_t *buf;
	int ret;

	if (pos / VHD_SECTOR + span / VHD_SECTOR >= VHD_BAT_FREE)
		return error_set(-ENOSPC, "%s: file too large for another VHD block", bs->filename);
	ret = host_file_size(&bs->file, &fsize);
	if (ret < 0)
		return vhd_io_error(bs, "size query", pos, ret);
	whole = fsize > pos + VHD_FOOTER_SIZE || s->diff;
	buf = whole ? calloc(1, span) : malloc(s->bitmap_size + run);
	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	memset(buf, 0xff, s->bitmap_size);
	if (s->diff) {
		struct iovec v = {buf + s->bitmap_size, s->block_size};
		ret = block_read_backing(bs, idx * s->block_size, &v, 1);
		if (ret < 0) {
			free(buf);
			return ret;
		}
	}
	iov_to_buf(part, n, 0, buf + s->bitmap_size + (whole ? in : 0), run);
	ret = host_file_pwrite(&bs->file, pos + span, s->footer, VHD_FOOTER_SIZE);
	if (ret == 0 && whole)
		ret = host_file_pwrite(&bs->file, pos, buf, span);
	if (ret == 0 && !whole)
		ret = host_file_pwrite(&bs->file, pos, buf, s->bitmap_size);
	if (ret == 0 && !whole)
		ret = host_file_pwrite(&bs->file, pos + s->bitmap_size + in, buf + s->bitmap_size,
				       run);
	free(buf);
	if (ret < 0)
		return vhd_io_error(bs, "block allocation", pos, ret);
	s->footer_pos = pos + span;
	uint8_t be[4];
	put_be32(be, (uint32_t)(pos / VHD_SECTOR));
	ret = host_file_pwrite(&bs->file, s->bat_offset + idx * 4, be, 4);
	if (ret < 0)
		return vhd_io_error(bs, "BAT update", s->bat_offset + idx * 4, ret);
	if (s->diff)
		__atomic_store_n(&s->full[idx], 1, __ATOMIC_RELEASE);
	__atomic_store_n(&s->bat[idx], (uint32_t)(pos / VHD_SECTOR), __ATOMIC_RELEASE);
	return 0;
}

/* Under s->lock: make an allocated block of a differencing image whole (its merged content
 * written back, then the bitmap all ones), so that writes need no sector tracking. */
static int vhd_make_full(struct block_device *bs, uint64_t idx)
{
	struct vhd_state *s = bs->state;
	uint64_t off = (uint64_t)vhd_bat_get(s, idx) * VHD_SECTOR;
	uint8_t *buf = malloc((size_t)s->bitmap_size + s->block_size);
	bool full;
	int ret;

	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = vhd_block_full(bs, idx, buf, &full);
	if (ret == 0 && !full) {
		/* The merged content, as a read sees it, with the bitmap just read. */
		struct vhd_reader r = {.bitmap = buf, .idx = idx, .loaded = true};
		struct iovec v = {buf + s->bitmap_size, s->block_size};
		ret = block_map_preadv(bs, idx * s->block_size, &v, 1, &vhd_read_ops, &r);
		if (ret == 0)
			ret = host_file_pwrite(&bs->file, off + s->bitmap_size,
					       buf + s->bitmap_size, s->block_size);
		memset(buf, 0xff, s->bitmap_size);
		if (ret == 0)
			ret = host_file_pwrite(&bs->file, off, buf, s->bitmap_size);
		if (ret < 0)
			ret = vhd_io_error(bs, "bitmap update", off, ret);
		else
			__atomic_store_n(&s->full[idx], 1, __ATOMIC_RELEASE);
	}
	free(buf);
	return ret;
}

/* Writes go straight to the file only where the block is allocated and, in a differencing image,
 * whole; the rest takes the lock (vhd_write_alloc). */
static int vhd_map_write(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			 struct block_map *m)
{
	struct vhd_state *s = bs->state;

	(void)opaque;
	vhd_map_block(s, offset, len, m);
	if (m->kind == BLOCK_MAP_ZERO ||
	    (s->diff && !__atomic_load_n(&s->full[offset / s->block_size], __ATOMIC_ACQUIRE)))
		m->kind = BLOCK_MAP_DRIVER;
	return 0;
}

/* Under the lock: allocate the block, unless another writer just did; a differencing block that
 * is there but not whole is made whole first. */
static int vhd_write_alloc(struct block_device *bs, void *opaque, uint64_t offset,
			   const struct block_map *m, const struct iovec *part, int n)
{
	struct vhd_state *s = bs->state;
	uint64_t idx = offset / s->block_size, run, host;
	int ret = 0;

	(void)opaque;
	pthread_mutex_lock(&s->lock);
	host = vhd_map(s, offset, m->len, &run);
	if (!host)
		ret = vhd_allocate(bs, idx, offset % s->block_size, m->len, part, n);
	else if (s->diff)
		ret = vhd_make_full(bs, idx);
	pthread_mutex_unlock(&s->lock);
	if (host && ret == 0) {
		ret = host_file_pwritev(&bs->file, host, part, n);
		if (ret < 0)
			ret = vhd_io_error(bs, "write", host, ret);
	}
	return ret;
}

static const struct block_map_ops vhd_write_ops = {.map = vhd_map_write, .io = vhd_write_alloc};

int vhd_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_pwritev(bs, offset, iov, iovcnt, &vhd_write_ops, NULL);
}

int vhd_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		     int *status, uint64_t *map_offset)
{
	struct vhd_state *s = bs->state;
	uint64_t run, host, done = 0;

	if (s->type == VHD_TYPE_FIXED) {
		*pnum = len;
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID;
		*map_offset = offset;
		return 0;
	}
	host = vhd_map(s, offset, len, &run);
	*map_offset = host;
	*status = host	    ? BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID
		  : s->diff ? 0
			    : BLOCK_STATUS_ZERO;
	/* Extend over following blocks of the same kind (contiguous on disk for data). */
	for (done = run; done < len;) {
		uint64_t r, h = vhd_map(s, offset + done, len - done, &r);
		if (!h != !host || (host && h != host + done))
			break;
		done += r;
	}
	*pnum = done;
	return 0;
}
