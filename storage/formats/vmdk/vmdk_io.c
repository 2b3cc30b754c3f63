/* VMDK data I/O across extents.
 *
 * A request is cut at extent and grain boundaries. Grain lookups and allocations run under the
 * extent's lock; reads and writes of allocated, uncompressed grains and of flat extents run without
 * it. A new grain is written whole (the parent's data or zeroes around the new bytes) at the end of
 * the extent file before its grain-table entry (redundant copy first) points at it, so a crash
 * leaves at worst an unreferenced grain. Compressed (streamOptimized) grains are never rewritten in
 * place: a write inflates the grain, merges, deflates and appends it, then repoints the entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/formats/vmdk/vmdk.h"

static struct vmdk_extent *vmdk_find(struct vmdk_state *s, uint64_t pos)
{
	unsigned lo = 0, hi = s->n;
	uint64_t sec = pos / VMDK_SECTOR;

	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;
		if (s->ext[mid].start <= sec)
			lo = mid;
		else
			hi = mid;
	}
	return &s->ext[lo];
}

static int vmdk_io_error(struct vmdk_extent *e, const char *what, uint64_t off, int ret)
{
	return error_set(ret, "%s: %s at offset %llu failed: %s", e->name, what,
			 (unsigned long long)off, strerror(-ret));
}

static bool vmdk_gte_is_zero(struct vmdk_extent *e, uint32_t gte)
{
	return gte == VMDK_GTE_ZERO && e->zero_grain;
}

static int vmdk_gte_check(struct vmdk_extent *e, uint32_t gte)
{
	if ((uint64_t)gte * VMDK_SECTOR >= e->file_end)
		return error_set(-EINVAL,
				 "%s: grain table entry points at sector %u, beyond end of file",
				 e->name, gte);
	return 0;
}

struct vmdk_chunk {
	struct vmdk_extent *e;
	uint64_t epos; /* byte offset in the extent */
	uint64_t run;  /* bytes in this chunk */
	uint64_t in;   /* offset in the grain (sparse) */
};

static void vmdk_chunk(struct vmdk_state *s, uint64_t pos, uint64_t left, struct vmdk_chunk *c)
{
	c->e = vmdk_find(s, pos);
	c->epos = pos - c->e->start * VMDK_SECTOR;
	c->run = c->e->sectors * VMDK_SECTOR - c->epos;
	if (c->run > left)
		c->run = left;
	c->in = 0;
	if (c->e->type == VMDK_EXT_SPARSE) {
		uint64_t gbytes = (uint64_t)c->e->grain * VMDK_SECTOR;
		c->in = c->epos % gbytes;
		if (c->run > gbytes - c->in)
			c->run = gbytes - c->in;
	}
}

/* A sparse extent's grain: its entry is read under the extent's lock, its data outside it. */
static int vmdk_map_sparse(struct block_device *bs, struct vmdk_chunk *c, struct block_map *m)
{
	struct vmdk_extent *e = c->e;
	uint32_t gte;
	int ret;

	pthread_mutex_lock(&e->lock);
	ret = vmdk_gte_get(bs, e, c->epos / VMDK_SECTOR, &gte);
	if (ret == 0 && gte && !vmdk_gte_is_zero(e, gte))
		ret = vmdk_gte_check(e, gte);
	pthread_mutex_unlock(&e->lock);
	if (ret < 0)
		return ret;
	if (gte == 0) {
		m->kind = BLOCK_MAP_BACKING;
	} else if (vmdk_gte_is_zero(e, gte)) {
		m->kind = BLOCK_MAP_ZERO;
	} else if (e->compressed) {
		m->kind = BLOCK_MAP_DRIVER;
		m->host = gte;
	} else {
		m->kind = BLOCK_MAP_HOST;
		m->host = (uint64_t)gte * VMDK_SECTOR + c->in;
	}
	return 0;
}

static int vmdk_map_read(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			 struct block_map *m)
{
	struct vmdk_chunk c;

	(void)opaque;
	vmdk_chunk(bs->state, offset, len, &c);
	m->len = c.run;
	m->file = c.e->f;
	m->name = c.e->name;
	switch (c.e->type) {
	case VMDK_EXT_ZERO:
		m->kind = BLOCK_MAP_ZERO;
		return 0;
	case VMDK_EXT_FLAT:
		m->kind = BLOCK_MAP_HOST;
		m->host = c.e->flat_offset + c.epos;
		return 0;
	case VMDK_EXT_SPARSE:
		break;
	}
	return vmdk_map_sparse(bs, &c, m);
}

/* A compressed grain (m->host: its sector), inflated into the extent's one-grain cache. A grain
 * is never rewritten in place, so one remapped since vmdk_map_sparse still holds what it held. */
static int vmdk_read_compressed(struct block_device *bs, void *opaque, uint64_t offset,
				const struct block_map *m, const struct iovec *part, int n)
{
	struct vmdk_chunk c;
	int ret;

	(void)opaque;
	vmdk_chunk(bs->state, offset, m->len, &c);
	pthread_mutex_lock(&c.e->lock);
	ret = vmdk_grain_read_compressed(bs, c.e, (uint32_t)m->host);
	if (ret == 0)
		iov_from_buf(part, n, 0, c.e->zgrain + c.in, c.run);
	pthread_mutex_unlock(&c.e->lock);
	return ret;
}

static const struct block_map_ops vmdk_read_ops = {.map = vmdk_map_read,
						   .io = vmdk_read_compressed};

int vmdk_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_preadv(bs, offset, iov, iovcnt, &vmdk_read_ops, NULL);
}

/* The whole grain as it reads before this write: its old content (compressed grain), zeroes, or
 * the parent's data. */
static int vmdk_grain_base(struct block_device *bs, struct vmdk_chunk *c, uint64_t pos,
			   uint32_t gte, uint8_t *grain)
{
	struct vmdk_extent *e = c->e;
	size_t gbytes = (size_t)e->grain * VMDK_SECTOR;
	int ret;

	if (gte && !vmdk_gte_is_zero(e, gte)) { /* only compressed grains are rewritten */
		ret = vmdk_grain_read_compressed(bs, e, gte);
		if (ret == 0)
			memcpy(grain, e->zgrain, gbytes);
		return ret;
	}
	if (gte || !bs->backing) {
		memset(grain, 0, gbytes);
		return 0;
	}
	struct iovec v = {grain, gbytes};
	return block_read_backing(bs, pos - c->in, &v, 1);
}

/* Under e->lock: give the grain of chunk c a new home holding its old content with the chunk's
 * bytes from iov merged in. */
static int vmdk_grain_alloc(struct block_device *bs, struct vmdk_chunk *c, uint64_t pos,
			    uint32_t gte, const struct iovec *part, int n)
{
	struct vmdk_extent *e = c->e;
	size_t gbytes = (size_t)e->grain * VMDK_SECTOR;
	uint8_t *grain = malloc(gbytes);
	uint64_t sector;
	int ret;

	if (!grain)
		return error_set(-ENOMEM, "%s: out of memory", e->name);
	ret = vmdk_grain_base(bs, c, pos, gte, grain);
	if (ret < 0)
		goto out;
	iov_to_buf(part, n, 0, grain + c->in, c->run);
	if (e->compressed) {
		uint64_t lba = c->epos / VMDK_SECTOR - c->in / VMDK_SECTOR;
		uint8_t *z;
		size_t zlen;
		ret = vmdk_grain_deflate(e, lba, grain, &z, &zlen);
		if (ret == 0) {
			ret = vmdk_grain_append(e, z, zlen, &sector);
			free(z);
		}
		if (ret < 0)
			goto out;
	} else {
		if (e->file_end / VMDK_SECTOR + e->grain >= UINT32_MAX) {
			ret = error_set(-EFBIG, "%s: extent file too large for another grain",
					e->name);
			goto out;
		}
		ret = host_file_pwrite(e->f, e->file_end, grain, gbytes);
		if (ret < 0) {
			ret = vmdk_io_error(e, "grain allocation", e->file_end, ret);
			goto out;
		}
		sector = e->file_end / VMDK_SECTOR;
		e->file_end += gbytes;
	}
	ret = vmdk_gte_set(bs, e, c->epos / VMDK_SECTOR, (uint32_t)sector);
	if (ret == 0 && e->compressed) {
		memcpy(e->zgrain, grain, gbytes);
		e->zgrain_off = sector;
	}
out:
	free(grain);
	return ret;
}

/* A write of a whole compressed grain needs no old content: it is deflated without the lock
 * (several writers compress in parallel, as `img convert -m` does), then appended under it. */
static int vmdk_write_whole_compressed(struct block_device *bs, struct vmdk_chunk *c,
				       const struct iovec *part, int n)
{
	struct vmdk_extent *e = c->e;
	size_t gbytes = (size_t)e->grain * VMDK_SECTOR, zlen;
	uint8_t *grain = malloc(gbytes), *z = NULL;
	uint64_t sector;
	int ret;

	if (!grain)
		return error_set(-ENOMEM, "%s: out of memory", e->name);
	iov_to_buf(part, n, 0, grain, gbytes);
	ret = vmdk_grain_deflate(e, c->epos / VMDK_SECTOR, grain, &z, &zlen);
	if (ret == 0) {
		pthread_mutex_lock(&e->lock);
		ret = vmdk_grain_append(e, z, zlen, &sector);
		if (ret == 0)
			ret = vmdk_gte_set(bs, e, c->epos / VMDK_SECTOR, (uint32_t)sector);
		if (ret == 0) {
			memcpy(e->zgrain, grain, gbytes);
			e->zgrain_off = sector;
		}
		pthread_mutex_unlock(&e->lock);
	}
	free(z);
	free(grain);
	return ret;
}

static int vmdk_write_sparse(struct block_device *bs, struct vmdk_chunk *c, uint64_t pos,
			     const struct iovec *part, int n)
{
	struct vmdk_extent *e = c->e;
	uint32_t gte;
	int ret;

	if (e->footer)
		return error_set(-ENOTSUP,
				 "%s: stream-optimized extent with its directory in a footer is "
				 "read-only",
				 e->name);
	if (e->compressed && c->in == 0 && c->run == (uint64_t)e->grain * VMDK_SECTOR)
		return vmdk_write_whole_compressed(bs, c, part, n);
	pthread_mutex_lock(&e->lock);
	ret = vmdk_gte_get(bs, e, c->epos / VMDK_SECTOR, &gte);
	if (ret == 0 && gte && !vmdk_gte_is_zero(e, gte))
		ret = vmdk_gte_check(e, gte);
	if (ret == 0 && (e->compressed || gte == 0 || vmdk_gte_is_zero(e, gte))) {
		ret = vmdk_grain_alloc(bs, c, pos, gte, part, n);
		pthread_mutex_unlock(&e->lock);
		return ret;
	}
	/* A grain written in place must lie wholly inside the file: one that ran past its end would
	 * overlap the next grain allocated there. */
	if (ret == 0 &&
	    (uint64_t)gte * VMDK_SECTOR + (uint64_t)e->grain * VMDK_SECTOR > e->file_end)
		ret = error_set(-EINVAL, "%s: grain at sector %u runs past the end of the file",
				e->name, gte);
	pthread_mutex_unlock(&e->lock);
	if (ret < 0)
		return ret;
	uint64_t host = (uint64_t)gte * VMDK_SECTOR + c->in;
	ret = host_file_pwritev(e->f, host, part, n);
	return ret < 0 ? vmdk_io_error(e, "write", host, ret) : 0;
}

/* Flat extents are written in place here; grains go through vmdk_write_sparse. */
static int vmdk_map_write(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			  struct block_map *m)
{
	struct vmdk_chunk c;
	int ret;

	(void)opaque;
	vmdk_chunk(bs->state, offset, len, &c);
	if (c.e->read_only || c.e->type == VMDK_EXT_ZERO || c.e->footer)
		return error_set(c.e->footer ? -ENOTSUP : -EROFS,
				 "%s: extent at sector %llu is not writable%s", bs->filename,
				 (unsigned long long)c.e->start,
				 c.e->footer ? " (stream-optimized, directory in a footer)" : "");
	/* The new CID goes out before the first byte of the disk changes. */
	ret = vmdk_cid_refresh(bs);
	if (ret < 0)
		return ret;
	m->len = c.run;
	m->kind = c.e->type == VMDK_EXT_FLAT ? BLOCK_MAP_HOST : BLOCK_MAP_DRIVER;
	m->host = c.e->flat_offset + c.epos;
	m->file = c.e->f;
	m->name = c.e->name;
	return 0;
}

static int vmdk_write_grain(struct block_device *bs, void *opaque, uint64_t offset,
			    const struct block_map *m, const struct iovec *part, int n)
{
	struct vmdk_chunk c;

	(void)opaque;
	vmdk_chunk(bs->state, offset, m->len, &c);
	return vmdk_write_sparse(bs, &c, offset, part, n);
}

static const struct block_map_ops vmdk_write_ops = {.map = vmdk_map_write, .io = vmdk_write_grain};

int vmdk_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_pwritev(bs, offset, iov, iovcnt, &vmdk_write_ops, NULL);
}

/* Status of one chunk; *host is the file offset of allocated uncompressed data, else 0. */
static int vmdk_chunk_status(struct block_device *bs, struct vmdk_chunk *c, int *status,
			     uint64_t *host)
{
	struct vmdk_extent *e = c->e;
	uint32_t gte;
	int ret;

	*host = 0;
	if (e->type == VMDK_EXT_ZERO) {
		*status = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	if (e->type == VMDK_EXT_FLAT) {
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
		*host = e->flat_offset + c->epos;
		return 0;
	}
	pthread_mutex_lock(&e->lock);
	ret = vmdk_gte_get(bs, e, c->epos / VMDK_SECTOR, &gte);
	pthread_mutex_unlock(&e->lock);
	if (ret < 0)
		return ret;
	if (gte == 0)
		*status = bs->backing ? 0 : BLOCK_STATUS_ZERO;
	else if (vmdk_gte_is_zero(e, gte))
		*status = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
	else if (e->compressed)
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_COMPRESSED;
	else {
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
		*host = (uint64_t)gte * VMDK_SECTOR + c->in;
	}
	return 0;
}

int vmdk_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		      int *status, uint64_t *map_offset)
{
	struct vmdk_state *s = bs->state;
	struct vmdk_chunk c;
	uint64_t host, done;
	int ret;

	vmdk_chunk(s, offset, len, &c);
	ret = vmdk_chunk_status(bs, &c, status, &host);
	if (ret < 0)
		return ret;
	struct vmdk_extent *first = c.e;
	done = c.run;
	/* Merge following grains of the same extent with the same status (contiguous data). */
	while (done < len) {
		int st;
		uint64_t h;
		vmdk_chunk(s, offset + done, len - done, &c);
		if (c.e != first || vmdk_chunk_status(bs, &c, &st, &h) < 0 || st != *status ||
		    (host && h != host + done))
			break;
		done += c.run;
	}
	*pnum = done;
	/* The offset is meaningful to callers only in the image file itself. */
	if (host && first->f == &bs->file) {
		*status |= BLOCK_STATUS_OFFSET_VALID;
		*map_offset = host;
	}
	return 0;
}

int vmdk_flush(struct block_device *bs)
{
	struct vmdk_state *s = bs->state;
	int ret = host_file_flush(&bs->file);

	for (unsigned i = 0; i < s->n && ret == 0; i++)
		if (s->ext[i].f != &bs->file && !s->ext[i].read_only)
			ret = host_file_flush(s->ext[i].f);
	return ret < 0 ? error_set(ret, "%s: flush failed: %s", bs->filename, strerror(-ret)) : 0;
}

/* Zeroes: whole grains of an extent with the zeroed-grain flag become GT entries of 1 (no data
 * written; the old grain, if any, is left unreferenced); flat ranges are zeroed in the file; the
 * rest is written as zeroes. */
int vmdk_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags)
{
	struct vmdk_state *s = bs->state;
	size_t zlen = len < (1u << 20) ? (size_t)len : 1u << 20;
	uint8_t *zero = calloc(1, zlen);
	uint64_t done = 0;
	int ret;

	(void)flags;
	if (!zero)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = vmdk_cid_refresh(bs);
	while (done < len && ret == 0) {
		struct vmdk_chunk c;
		struct vmdk_extent *e;
		vmdk_chunk(s, offset + done, len - done, &c);
		e = c.e;
		if (c.run > zlen)
			c.run = zlen;
		if (e->type == VMDK_EXT_SPARSE && e->zero_grain && !e->compressed && !e->footer &&
		    !e->read_only && c.in == 0 && c.run == (uint64_t)e->grain * VMDK_SECTOR) {
			pthread_mutex_lock(&e->lock);
			ret = vmdk_gte_set(bs, e, c.epos / VMDK_SECTOR, VMDK_GTE_ZERO);
			pthread_mutex_unlock(&e->lock);
		} else if (e->type == VMDK_EXT_FLAT && !e->read_only) {
			ret = host_file_write_zeroes(e->f, e->flat_offset + c.epos, c.run);
			if (ret < 0)
				ret =
				    vmdk_io_error(e, "write zeroes", e->flat_offset + c.epos, ret);
		} else {
			struct iovec v = {zero, c.run};
			ret = vmdk_pwritev(bs, offset + done, &v, 1);
		}
		done += c.run;
	}
	free(zero);
	return ret;
}
