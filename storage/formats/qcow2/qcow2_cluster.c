/* qcow2: guest-to-host mapping through the L1 table and cached L2 tables; L2 allocation and
 * copy-on-write of L2 tables shared with snapshots; L1 growth; the metadata flush sequence.
 * Callers hold the metadata lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/qcow2/qcow2.h"

uint64_t qcow2_l1_needed(const struct qcow2_state *s, uint64_t size)
{
	uint64_t per_l1 = 1ull << (s->cluster_bits + s->l2_bits);
	return (size + per_l1 - 1) / per_l1;
}

enum qcow2_ctype qcow2_l2_type(const struct qcow2_state *s, uint64_t entry)
{
	if (entry & QCOW2_OFLAG_COMPRESSED)
		return QCOW2_C_COMPRESSED;
	if (s->version >= 3 && !s->extended_l2 && (entry & QCOW2_OFLAG_ZERO))
		return (entry & QCOW2_OFFSET_MASK) ? QCOW2_C_ZERO_ALLOC : QCOW2_C_ZERO_PLAIN;
	/* Offset 0 is guest cluster 0 in a data file: COPIED (refcount 1) says it is mapped. */
	if (s->has_data_file && !(entry & QCOW2_OFFSET_MASK) && (entry & QCOW2_OFLAG_COPIED))
		return QCOW2_C_NORMAL;
	return (entry & QCOW2_OFFSET_MASK) ? QCOW2_C_NORMAL : QCOW2_C_UNALLOCATED;
}

/* Validate the L2 table offset from an L1 entry. */
static int l2_offset_of(struct block_device *bs, uint64_t l1i, uint64_t *l2_off)
{
	struct qcow2_state *s = qcow2_state(bs);

	*l2_off = 0;
	if (l1i >= s->l1_size)
		return 0;
	*l2_off = s->l1[l1i] & QCOW2_OFFSET_MASK;
	if (*l2_off & (s->cluster_size - 1))
		return error_set(-EIO, "%s: L1 entry %llu: unaligned L2 offset %#llx", bs->filename,
				 (unsigned long long)l1i, (unsigned long long)*l2_off);
	return 0;
}

static int check_data_entry(struct block_device *bs, uint64_t offset, uint64_t entry)
{
	struct qcow2_state *s = qcow2_state(bs);
	enum qcow2_ctype t = qcow2_l2_type(s, entry);

	uint64_t h = entry & QCOW2_OFFSET_MASK;
	uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
	uint64_t rt_bytes = (uint64_t)s->refcount_table_clusters << s->cluster_bits;

	if (s->has_data_file && t == QCOW2_C_COMPRESSED)
		return error_set(-EIO, "%s: compressed cluster in an image with a data file",
				 bs->filename);
	if (t != QCOW2_C_NORMAL && t != QCOW2_C_ZERO_ALLOC)
		return 0;
	if (s->has_data_file) {
		/* The data file holds each cluster at its guest offset, nowhere else. */
		if (h != (offset & ~(s->cluster_size - 1)))
			return error_set(-EIO,
					 "%s: data file offset %#llx of guest offset %#llx does "
					 "not match it",
					 bs->filename, (unsigned long long)h,
					 (unsigned long long)offset);
		return 0;
	}
	if (h & (s->cluster_size - 1))
		return error_set(-EIO, "%s: L2 entry %#llx: unaligned cluster offset", bs->filename,
				 (unsigned long long)entry);
	/* Guest data written over the header or fixed tables would destroy the image. */
	if (h < s->cluster_size || (h >= s->l1_table_offset && h - s->l1_table_offset < l1_bytes) ||
	    (h >= s->refcount_table_offset && h - s->refcount_table_offset < rt_bytes))
		return error_set(-EIO, "%s: L2 entry %#llx points into image metadata",
				 bs->filename, (unsigned long long)entry);
	return 0;
}

int qcow2_l2_lookup(struct block_device *bs, uint64_t offset, uint64_t *entry)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits), l2_off;
	uint64_t l2i = (offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
	uint8_t *l2;
	int ret;

	*entry = 0;
	ret = l2_offset_of(bs, l1i, &l2_off);
	if (ret < 0 || !l2_off)
		return ret;
	ret = qcow2_cache_get(&s->l2_cache, l2_off, false, &l2);
	if (ret < 0)
		return ret;
	*entry = get_be64(l2 + l2i * s->l2_esize);
	qcow2_cache_put(&s->l2_cache, l2);
	return check_data_entry(bs, offset, *entry);
}

/* Extended L2: the run of subclusters with one status from `in_cluster`, within the cluster. A
 * subcluster is zero (zero bit), allocated in the cluster (allocation bit) or unallocated. */
static int map_subclusters(struct block_device *bs, uint64_t bitmap, uint64_t in_cluster,
			   uint64_t max, enum qcow2_ctype *type, uint64_t *bytes)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint32_t sc_bits = s->cluster_bits - 5, sc = (uint32_t)(in_cluster >> sc_bits), end;
	bool has_host = *type == QCOW2_C_NORMAL;

	if ((uint32_t)bitmap & (uint32_t)(bitmap >> 32))
		return error_set(-EIO, "%s: subcluster both allocated and zero", bs->filename);
	if (!has_host && (uint32_t)bitmap)
		return error_set(-EIO, "%s: allocated subcluster without a host cluster",
				 bs->filename);
#define SC_STATE(i) (((bitmap >> (32 + (i))) & 1) ? 2 : ((bitmap >> (i)) & 1) ? 1 : 0)
	int st = SC_STATE(sc);
	for (end = sc + 1; end < 32 && SC_STATE(end) == st; end++)
		;
#undef SC_STATE
	*type = st == 2 ? QCOW2_C_ZERO_PLAIN : st == 1 ? QCOW2_C_NORMAL : QCOW2_C_UNALLOCATED;
	uint64_t got = ((uint64_t)end << sc_bits) - in_cluster;
	*bytes = got < max ? got : max;
	return 0;
}

int qcow2_map(struct block_device *bs, uint64_t offset, uint64_t len, enum qcow2_ctype *type,
	      uint64_t *entry, uint64_t *bytes)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits), l2_off;
	uint64_t l2i = (offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
	uint64_t in_cluster = offset & (s->cluster_size - 1);
	uint64_t l2_end = (l1i + 1) << (s->cluster_bits + s->l2_bits);
	uint64_t max = len < l2_end - offset ? len : l2_end - offset;
	uint8_t *l2;
	int ret;

	*entry = 0;
	*type = QCOW2_C_UNALLOCATED;
	ret = l2_offset_of(bs, l1i, &l2_off);
	if (ret < 0)
		return ret;
	if (!l2_off) {
		*bytes = max;
		return 0;
	}
	ret = qcow2_cache_get(&s->l2_cache, l2_off, false, &l2);
	if (ret < 0)
		return ret;
	*entry = get_be64(l2 + l2i * s->l2_esize);
	ret = check_data_entry(bs, offset, *entry);
	if (ret < 0)
		goto out;
	*type = qcow2_l2_type(s, *entry);
	if (s->extended_l2 && *type != QCOW2_C_COMPRESSED) {
		ret =
		    map_subclusters(bs, get_be64(l2 + l2i * 16 + 8), in_cluster, max, type, bytes);
		goto out;
	}
	uint64_t got = s->cluster_size - in_cluster;
	uint64_t host = *entry & QCOW2_OFFSET_MASK;
	if (*type != QCOW2_C_COMPRESSED) {
		for (uint64_t i = l2i + 1; got < max && i < (1ull << s->l2_bits); i++) {
			uint64_t e = get_be64(l2 + i * s->l2_esize);
			if (qcow2_l2_type(s, e) != *type)
				break;
			if ((*type == QCOW2_C_NORMAL || *type == QCOW2_C_ZERO_ALLOC) &&
			    ((e & QCOW2_OFFSET_MASK) != host + (i - l2i) * s->cluster_size ||
			     (e & QCOW2_OFLAG_COPIED) != (*entry & QCOW2_OFLAG_COPIED)))
				break;
			got += s->cluster_size;
		}
	}
	*bytes = got < max ? got : max;
out:
	qcow2_cache_put(&s->l2_cache, l2);
	return ret;
}

/* Install a new L2 table (fresh or copied from `old_off`) for L1 index l1i. The table lives in the
 * cache (written after the refcount blocks); the L1 entry is written by the next metadata flush,
 * after the table is durable, so no sync is needed here. */
static int l2_allocate(struct block_device *bs, uint64_t l1i, uint64_t old_off, uint8_t **out)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t new_off;
	uint8_t *l2, *old = NULL;
	int ret;

	if (old_off) {
		old = malloc(s->cluster_size);
		if (!old)
			return -ENOMEM;
		uint8_t *src;
		ret = qcow2_cache_get(&s->l2_cache, old_off, false, &src);
		if (ret < 0)
			goto out;
		memcpy(old, src, s->cluster_size);
		qcow2_cache_put(&s->l2_cache, src);
	}
	ret = qcow2_alloc_clusters(bs, 1, &new_off);
	if (ret < 0)
		goto out;
	ret = qcow2_cache_get(&s->l2_cache, new_off, true, &l2);
	if (ret < 0)
		goto out;
	if (old)
		memcpy(l2, old, s->cluster_size);
	s->l1[l1i] = new_off | QCOW2_OFLAG_COPIED;
	s->l1_dirty = true;
	if (old_off)
		ret = qcow2_free_deferred(bs, old_off, s->cluster_size);
	*out = l2;
out:
	free(old);
	return ret;
}

/* A writable (unshared) L2 table for the guest offset, pinned in the cache. */
static int l2_get_writable(struct block_device *bs, uint64_t offset, uint8_t **l2)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits), l2_off, rc;
	int ret;

	if (l1i >= s->l1_size)
		return error_set(-EINVAL, "%s: offset %#llx beyond the L1 table", bs->filename,
				 (unsigned long long)offset);
	ret = l2_offset_of(bs, l1i, &l2_off);
	if (ret < 0)
		return ret;
	if (!l2_off)
		return l2_allocate(bs, l1i, 0, l2);
	if (!(s->l1[l1i] & QCOW2_OFLAG_COPIED)) {
		ret = qcow2_refcount_get(bs, l2_off >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		if (rc > 1)
			return l2_allocate(bs, l1i, l2_off, l2);
		/* Sole owner after all: record it so. */
		s->l1[l1i] = l2_off | QCOW2_OFLAG_COPIED;
		s->l1_dirty = true;
	}
	return qcow2_cache_get(&s->l2_cache, l2_off, false, l2);
}

int qcow2_l2_set(struct block_device *bs, uint64_t offset, uint64_t entry)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t l2i = (offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
	uint8_t *l2;
	int ret;

	ret = l2_get_writable(bs, offset, &l2);
	if (ret < 0)
		return ret;
	put_be64(l2 + l2i * s->l2_esize, entry);
	qcow2_cache_mark_dirty(&s->l2_cache, l2);
	qcow2_cache_put(&s->l2_cache, l2);
	return 0;
}

int qcow2_entry_free(struct block_device *bs, uint64_t entry)
{
	struct qcow2_state *s = qcow2_state(bs);

	if (s->has_data_file)
		return 0; /* data file clusters are not refcounted */

	switch (qcow2_l2_type(s, entry)) {
	case QCOW2_C_NORMAL:
	case QCOW2_C_ZERO_ALLOC:
		return qcow2_free_deferred(bs, entry & QCOW2_OFFSET_MASK, s->cluster_size);
	case QCOW2_C_COMPRESSED: {
		uint64_t off = entry & s->cluster_offset_mask;
		uint64_t sectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
		return qcow2_free_deferred(bs, off & ~511ull, sectors * 512);
	}
	default:
		return 0;
	}
}

/* Write the whole in-memory L1 table (entries may point at new L2 tables: call after those are
 * durable). */
int qcow2_l1_write(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint8_t *buf;
	int ret;

	if (!s->l1_size) {
		s->l1_dirty = false;
		return 0;
	}
	buf = malloc((size_t)s->l1_size * 8);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->l1_size; i++)
		put_be64(buf + i * 8, s->l1[i]);
	ret = host_file_pwrite(&bs->file, s->l1_table_offset, buf, (size_t)s->l1_size * 8);
	free(buf);
	if (ret < 0)
		return error_set(ret, "%s: cannot write the L1 table", bs->filename);
	s->l1_dirty = false;
	return 0;
}

/* Refcount blocks, then L2 tables, then the L1 table, each durable before the next points at it;
 * then clusters freed meanwhile can be reused. */
int qcow2_metadata_flush(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	int ret;

	ret = qcow2_cache_flush(&s->rb_cache);
	if (ret == 0)
		ret = qcow2_cache_flush(&s->l2_cache);
	if (ret == 0 && s->l1_dirty) {
		ret = qcow2_l1_write(bs);
		if (ret == 0)
			ret = host_file_flush(&bs->file);
	}
	if (ret == 0 && s->pending_n && s->io_inflight == 0) {
		ret = qcow2_apply_pending_frees(bs);
		if (ret == 0)
			ret = qcow2_cache_flush(&s->rb_cache);
	}
	return ret;
}

int qcow2_l1_grow(struct block_device *bs, uint32_t new_size)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t bytes = (uint64_t)new_size * 8, new_off, old_off = s->l1_table_offset;
	uint64_t old_bytes = (uint64_t)s->l1_size * 8;
	uint64_t clusters = (bytes + s->cluster_size - 1) >> s->cluster_bits;
	uint8_t *buf, f[12];
	int ret;

	if (new_size <= s->l1_size)
		return 0;
	if (bytes > QCOW2_MAX_L1_BYTES)
		return error_set(-EFBIG, "%s: L1 table of %u entries is too large", bs->filename,
				 new_size);
	/* Pending L1 entries must point at durable L2 tables before the table is copied. */
	ret = qcow2_metadata_flush(bs);
	if (ret < 0)
		return ret;
	uint64_t *nl1 = realloc(s->l1, bytes);
	if (!nl1)
		return -ENOMEM;
	s->l1 = nl1;
	memset(s->l1 + s->l1_size, 0, bytes - old_bytes);
	buf = calloc(1, clusters << s->cluster_bits);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < new_size; i++)
		put_be64(buf + i * 8, s->l1[i]);
	ret = qcow2_alloc_clusters(bs, clusters, &new_off);
	if (ret == 0)
		ret = qcow2_cache_flush(&s->rb_cache);
	if (ret == 0)
		ret = host_file_pwrite(&bs->file, new_off, buf, clusters << s->cluster_bits);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	free(buf);
	if (ret < 0)
		return error_set(ret, "%s: cannot write the grown L1 table", bs->filename);
	put_be32(f, new_size);
	put_be64(f + 4, new_off);
	ret = host_file_pwrite(&bs->file, 36, f, sizeof(f));
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret < 0)
		return error_set(ret, "%s: cannot update the header", bs->filename);
	s->l1_table_offset = new_off;
	s->l1_size = new_size;
	if (old_bytes)
		return qcow2_free_now(bs, old_off, old_bytes);
	return 0;
}
