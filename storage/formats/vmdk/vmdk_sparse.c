/* Hosted sparse VMDK extents: header validation, the grain directory, a small grain-table cache,
 * and compressed grains.
 *
 * The GD is held in memory (bounded by VMDK_GD_MAX); grain tables are read on demand into an LRU
 * of VMDK_GT_CACHE tables. Every offset read from the file is checked before it is used: GD entries
 * at open, GT entries when a grain is looked up (vmdk_io.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/endian.h"
#include "storage/formats/vmdk/vmdk.h"

static int vmdk_load_dir(struct block_device *bs, struct vmdk_extent *e, uint64_t off_sectors,
			 uint64_t fsize, const char *what, uint32_t **out)
{
	uint64_t bytes = (uint64_t)e->gd_entries * 4;
	uint32_t *d;
	int ret;

	(void)bs;
	if (off_sectors == 0 || off_sectors > fsize / VMDK_SECTOR ||
	    fsize - off_sectors * VMDK_SECTOR < bytes)
		return error_set(-EINVAL, "%s: %s at sector %llu beyond end of file", e->name, what,
				 (unsigned long long)off_sectors);
	d = malloc(bytes ? bytes : 4);
	if (!d)
		return error_set(-ENOMEM, "%s: out of memory for the %s", e->name, what);
	ret = host_file_pread(e->f, off_sectors * VMDK_SECTOR, d, bytes);
	if (ret < 0) {
		free(d);
		return error_set(ret, "%s: cannot read the %s: %s", e->name, what, strerror(-ret));
	}
	for (uint32_t i = 0; i < e->gd_entries; i++) {
		d[i] = get_le32((uint8_t *)&d[i]);
		if (d[i] && ((uint64_t)d[i] > fsize / VMDK_SECTOR ||
			     fsize - (uint64_t)d[i] * VMDK_SECTOR < (uint64_t)e->gtes * 4)) {
			uint32_t bad = d[i];
			free(d);
			return error_set(-EINVAL,
					 "%s: %s entry %u: grain table at sector %u beyond end of "
					 "file",
					 e->name, what, i, bad);
		}
	}
	*out = d;
	return 0;
}

/* A streamOptimized extent whose GD is at the end: the header copy in the footer has it. */
static int vmdk_read_footer(struct block_device *bs, struct vmdk_extent *e, uint64_t fsize,
			    uint8_t *hdr)
{
	uint8_t m[VMDK_SECTOR];
	int ret;

	(void)bs;
	if (fsize < 3 * VMDK_SECTOR)
		return error_set(-EINVAL, "%s: stream-optimized extent too short for its footer",
				 e->name);
	uint64_t at = (fsize / VMDK_SECTOR - 3) * VMDK_SECTOR;
	ret = host_file_pread(e->f, at, m, sizeof(m));
	if (ret == 0)
		ret = host_file_pread(e->f, at + VMDK_SECTOR, hdr, VMDK_SECTOR);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the footer: %s", e->name, strerror(-ret));
	if (get_le32(m + 8) != 0 || get_le32(m + 12) != 3 || get_le32(hdr) != VMDK_MAGIC)
		return error_set(-EINVAL, "%s: stream-optimized extent without a valid footer",
				 e->name);
	if (get_le64(hdr + VMDK_H_GD_OFFSET) == VMDK_GD_AT_END)
		return error_set(-EINVAL, "%s: footer has no grain directory offset", e->name);
	return 0;
}

int vmdk_sparse_open(struct block_device *bs, struct vmdk_extent *e, const uint8_t *head,
		     uint64_t fsize)
{
	uint8_t hdr[VMDK_SECTOR];
	int ret;

	memcpy(hdr, head, sizeof(hdr));
	if (get_le32(hdr) != VMDK_MAGIC)
		return error_set(-EINVAL, "%s: not a hosted sparse extent (no KDMV magic)",
				 e->name);
	e->type = VMDK_EXT_SPARSE;
	pthread_mutex_init(&e->lock, NULL);
	for (int i = 0; i < VMDK_GT_CACHE; i++)
		e->gt[i].index = UINT32_MAX;
	e->version = get_le32(hdr + VMDK_H_VERSION);
	if (e->version < 1 || e->version > 3)
		return error_set(-ENOTSUP, "%s: sparse extent version %u not supported", e->name,
				 e->version);
	if (get_le64(hdr + VMDK_H_GD_OFFSET) == VMDK_GD_AT_END) {
		ret = vmdk_read_footer(bs, e, fsize, hdr);
		if (ret < 0)
			return ret;
		e->footer = true;
	}
	e->flags = get_le32(hdr + VMDK_H_FLAGS);
	e->capacity = get_le64(hdr + VMDK_H_CAPACITY);
	uint64_t grain = get_le64(hdr + VMDK_H_GRAIN);
	e->gtes = get_le32(hdr + VMDK_H_GTES);
	e->gd_offset = get_le64(hdr + VMDK_H_GD_OFFSET);
	e->rgd_offset = get_le64(hdr + VMDK_H_RGD_OFFSET);
	e->compressed = e->flags & VMDK_FLAG_COMPRESSED;
	e->markers = e->flags & VMDK_FLAG_MARKERS;
	e->zero_grain = e->flags & VMDK_FLAG_ZERO_GRAIN;
	if (grain == 0 || grain > VMDK_GRAIN_MAX || (grain & (grain - 1)))
		return error_set(-EINVAL,
				 "%s: grain size of %llu sectors invalid (a power of two up to "
				 "%u)",
				 e->name, (unsigned long long)grain, VMDK_GRAIN_MAX);
	e->grain = (uint32_t)grain;
	if (e->gtes == 0 || e->gtes > VMDK_GTES_MAX)
		return error_set(-EINVAL, "%s: %u entries per grain table invalid (1 to %u)",
				 e->name, e->gtes, VMDK_GTES_MAX);
	if (e->capacity > VMDK_CAPACITY_MAX)
		return error_set(-EINVAL, "%s: capacity of %llu sectors too large", e->name,
				 (unsigned long long)e->capacity);
	if (e->compressed && get_le32(hdr + VMDK_H_COMPRESS_ALGO) % 65536 != 1)
		return error_set(-ENOTSUP, "%s: compression algorithm %u not supported", e->name,
				 get_le32(hdr + VMDK_H_COMPRESS_ALGO) & 0xffff);
	uint64_t per_gt = (uint64_t)e->grain * e->gtes;
	uint64_t entries = (e->capacity + per_gt - 1) / per_gt;
	if (entries > VMDK_GD_MAX)
		return error_set(-EINVAL, "%s: grain directory of %llu entries too large", e->name,
				 (unsigned long long)entries);
	e->gd_entries = (uint32_t)entries;
	ret = vmdk_load_dir(bs, e, e->gd_offset, fsize, "grain directory", &e->gd);
	if (ret < 0)
		return ret;
	if ((e->flags & VMDK_FLAG_RGD) && e->rgd_offset && !e->footer) {
		ret = vmdk_load_dir(bs, e, e->rgd_offset, fsize, "redundant grain directory",
				    &e->rgd);
		if (ret < 0)
			return ret;
		for (uint32_t i = 0; i < e->gd_entries; i++)
			if (!e->gd[i] != !e->rgd[i])
				return error_set(-EINVAL,
						 "%s: grain directory entry %u and its redundant "
						 "copy disagree",
						 e->name, i);
	}
	e->file_end = (fsize + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	if (e->compressed) {
		e->zgrain = malloc((size_t)e->grain * VMDK_SECTOR);
		if (!e->zgrain)
			return error_set(-ENOMEM, "%s: out of memory", e->name);
	}
	return 0;
}

void vmdk_extent_free(struct vmdk_extent *e)
{
	if (e->type == VMDK_EXT_SPARSE)
		pthread_mutex_destroy(&e->lock);
	for (int i = 0; i < VMDK_GT_CACHE; i++)
		free(e->gt[i].e);
	free(e->gd);
	free(e->rgd);
	free(e->zgrain);
	if (e->f == &e->own)
		host_file_close(&e->own);
	free(e->name);
}

static int vmdk_gt_load(struct block_device *bs, struct vmdk_extent *e, uint32_t gdi,
			struct vmdk_gt_slot **out)
{
	struct vmdk_gt_slot *victim = &e->gt[0];
	size_t bytes = (size_t)e->gtes * 4;
	int ret;

	(void)bs;
	for (int i = 0; i < VMDK_GT_CACHE; i++) {
		if (e->gt[i].index == gdi) {
			e->gt[i].used = ++e->clock;
			*out = &e->gt[i];
			return 0;
		}
		if (e->gt[i].used < victim->used)
			victim = &e->gt[i];
	}
	if (!victim->e) {
		victim->e = malloc(bytes);
		if (!victim->e)
			return error_set(-ENOMEM, "%s: out of memory", e->name);
	}
	victim->index = UINT32_MAX;
	ret = host_file_pread(e->f, (uint64_t)e->gd[gdi] * VMDK_SECTOR, victim->e, bytes);
	if (ret < 0)
		return error_set(ret, "%s: cannot read grain table %u: %s", e->name, gdi,
				 strerror(-ret));
	for (uint32_t i = 0; i < e->gtes; i++)
		victim->e[i] = get_le32((uint8_t *)&victim->e[i]);
	victim->index = gdi;
	victim->used = ++e->clock;
	*out = victim;
	return 0;
}

int vmdk_gte_get(struct block_device *bs, struct vmdk_extent *e, uint64_t sector, uint32_t *gte)
{
	uint64_t gi = sector / e->grain;
	uint32_t gdi = (uint32_t)(gi / e->gtes);
	struct vmdk_gt_slot *slot = NULL;
	int ret;

	if (gi / e->gtes >= e->gd_entries)
		return error_set(-EIO, "%s: sector %llu beyond the grain directory", e->name,
				 (unsigned long long)sector);
	if (!e->gd[gdi]) {
		*gte = 0;
		return 0;
	}
	ret = vmdk_gt_load(bs, e, gdi, &slot);
	if (ret < 0)
		return ret;
	*gte = slot->e[gi % e->gtes];
	return 0;
}

/* Append zeroed space for one grain table; returns its sector. */
static int vmdk_gt_alloc(struct vmdk_extent *e, uint32_t *sector)
{
	size_t bytes = ((size_t)e->gtes * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	void *z = calloc(1, bytes);
	int ret;

	if (!z)
		return -ENOMEM;
	if (e->file_end / VMDK_SECTOR >= UINT32_MAX - bytes / VMDK_SECTOR) {
		free(z);
		return -EFBIG;
	}
	ret = host_file_pwrite(e->f, e->file_end, z, bytes);
	free(z);
	if (ret < 0)
		return ret;
	*sector = (uint32_t)(e->file_end / VMDK_SECTOR);
	e->file_end += bytes;
	return 0;
}

/* A GD entry of 0 (a hosted sparse extent that did not preallocate its tables): create the table,
 * and its redundant copy, before the directory points at it. */
static int vmdk_gt_create(struct block_device *bs, struct vmdk_extent *e, uint32_t gdi)
{
	uint32_t gt = 0, rgt = 0;
	uint8_t le[4];
	int ret;

	(void)bs;
	ret = vmdk_gt_alloc(e, &gt);
	if (ret == 0 && e->rgd)
		ret = vmdk_gt_alloc(e, &rgt);
	if (ret == 0 && e->rgd) {
		put_le32(le, rgt);
		ret =
		    host_file_pwrite(e->f, e->rgd_offset * VMDK_SECTOR + (uint64_t)gdi * 4, le, 4);
	}
	if (ret == 0) {
		put_le32(le, gt);
		ret = host_file_pwrite(e->f, e->gd_offset * VMDK_SECTOR + (uint64_t)gdi * 4, le, 4);
	}
	if (ret < 0)
		return error_set(ret, "%s: cannot allocate grain table %u: %s", e->name, gdi,
				 strerror(-ret));
	e->gd[gdi] = gt;
	if (e->rgd)
		e->rgd[gdi] = rgt;
	return 0;
}

int vmdk_gte_set(struct block_device *bs, struct vmdk_extent *e, uint64_t sector, uint32_t gte)
{
	uint64_t gi = sector / e->grain;
	uint32_t gdi = (uint32_t)(gi / e->gtes), ti = (uint32_t)(gi % e->gtes);
	uint8_t le[4];
	int ret = 0;

	if (!e->gd[gdi]) {
		ret = vmdk_gt_create(bs, e, gdi);
		if (ret < 0)
			return ret;
	}
	put_le32(le, gte);
	if (e->rgd)
		ret =
		    host_file_pwrite(e->f, (uint64_t)e->rgd[gdi] * VMDK_SECTOR + ti * 4ull, le, 4);
	if (ret == 0)
		ret = host_file_pwrite(e->f, (uint64_t)e->gd[gdi] * VMDK_SECTOR + ti * 4ull, le, 4);
	if (ret < 0)
		return error_set(ret, "%s: cannot update grain table %u: %s", e->name, gdi,
				 strerror(-ret));
	for (int i = 0; i < VMDK_GT_CACHE; i++)
		if (e->gt[i].index == gdi)
			e->gt[i].e[ti] = gte;
	return 0;
}

int vmdk_grain_read_compressed(struct block_device *bs, struct vmdk_extent *e, uint32_t gte)
{
	size_t gbytes = (size_t)e->grain * VMDK_SECTOR;
	size_t hdr = e->markers ? 12 : 0;
	size_t max = compressBound(gbytes) + hdr;
	uint64_t off = (uint64_t)gte * VMDK_SECTOR;
	uint8_t *buf;
	int ret;

	(void)bs;
	if (e->zgrain_off == gte)
		return 0;
	if (off >= e->file_end)
		return error_set(-EINVAL, "%s: compressed grain at sector %u beyond end of file",
				 e->name, gte);
	if (max > e->file_end - off)
		max = (size_t)(e->file_end - off);
	buf = malloc(max);
	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", e->name);
	ret = host_file_pread(e->f, off, buf, max);
	if (ret < 0) {
		free(buf);
		return error_set(ret, "%s: cannot read compressed grain at sector %u: %s", e->name,
				 gte, strerror(-ret));
	}
	size_t clen = max - hdr;
	if (e->markers) {
		uint32_t size = max >= 12 ? get_le32(buf + 8) : 0;
		if (size == 0 || size > max - hdr) {
			free(buf);
			return error_set(-EINVAL,
					 "%s: compressed grain at sector %u: bad size %u in its "
					 "marker",
					 e->name, gte, size);
		}
		clen = size;
	}
	uLongf out = gbytes;
	e->zgrain_off = 0;
	int z = uncompress(e->zgrain, &out, buf + hdr, clen);
	free(buf);
	if (z != Z_OK)
		return error_set(-EINVAL, "%s: compressed grain at sector %u does not inflate (%s)",
				 e->name, gte,
				 z == Z_BUF_ERROR ? "larger than a grain" : "bad data");
	memset(e->zgrain + out, 0, gbytes - out);
	e->zgrain_off = gte;
	return 0;
}

/* Deflate a grain behind its marker into a new sector-padded buffer (no lock needed). */
int vmdk_grain_deflate(struct vmdk_extent *e, uint64_t lba, const uint8_t *grain, uint8_t **out,
		       size_t *total)
{
	size_t gbytes = (size_t)e->grain * VMDK_SECTOR, hdr = e->markers ? 12 : 0;
	uLongf clen = compressBound(gbytes);
	uint8_t *buf = calloc(1, (hdr + clen + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR);

	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", e->name);
	if (compress2(buf + hdr, &clen, grain, gbytes, Z_DEFAULT_COMPRESSION) != Z_OK) {
		free(buf);
		return error_set(-EIO, "%s: deflate failed", e->name);
	}
	if (e->markers) {
		put_le64(buf, lba);
		put_le32(buf + 8, (uint32_t)clen);
	}
	*out = buf;
	*total = (hdr + clen + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	return 0;
}

/* Under e->lock: append a deflated grain at the end of the extent file. */
int vmdk_grain_append(struct vmdk_extent *e, const uint8_t *buf, size_t total, uint64_t *sector)
{
	int ret;

	if (e->file_end / VMDK_SECTOR >= UINT32_MAX - total / VMDK_SECTOR)
		return error_set(-EFBIG, "%s: extent file too large for another grain", e->name);
	ret = host_file_pwrite(e->f, e->file_end, buf, total);
	if (ret < 0)
		return error_set(ret, "%s: cannot write a compressed grain: %s", e->name,
				 strerror(-ret));
	*sector = e->file_end / VMDK_SECTOR;
	e->file_end += total;
	return 0;
}
