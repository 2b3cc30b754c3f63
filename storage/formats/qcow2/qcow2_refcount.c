/* qcow2: refcounts (1..64-bit entries), cluster allocation, freeing, and refcount table growth.
 *
 * A missing refcount block is placed at the first cluster of the range it describes (nothing else
 * can live there: no cluster in that range is counted), so it always describes itself. The refcount
 * table grows by writing a larger copy, plus the blocks that count it, past everything counted so
 * far, then switching the header to it.  Callers hold the metadata lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/qcow2/qcow2.h"

uint64_t qcow2_refcount_read_entry(const struct qcow2_state *s, const uint8_t *blk, uint64_t i)
{
	uint32_t bits = 1u << s->refcount_order;

	switch (bits) {
	case 64:
		return get_be64(blk + i * 8);
	case 32:
		return get_be32(blk + i * 4);
	case 16:
		return get_be16(blk + i * 2);
	case 8:
		return blk[i];
	default: {
		uint64_t bit = i * bits;
		return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	}
}

void qcow2_refcount_write_entry(const struct qcow2_state *s, uint8_t *blk, uint64_t i, uint64_t v)
{
	uint32_t bits = 1u << s->refcount_order;

	switch (bits) {
	case 64:
		put_be64(blk + i * 8, v);
		break;
	case 32:
		put_be32(blk + i * 4, (uint32_t)v);
		break;
	case 16:
		put_be16(blk + i * 2, (uint16_t)v);
		break;
	case 8:
		blk[i] = (uint8_t)v;
		break;
	default: {
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
	}
	}
}

int qcow2_refcount_get(struct block_device *bs, uint64_t cluster, uint64_t *rc)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t idx = cluster >> s->refblock_bits;
	uint8_t *blk;
	int ret;

	*rc = 0;
	if (idx >= s->reftable_entries || !s->reftable[idx])
		return 0;
	ret = qcow2_cache_get(&s->rb_cache, s->reftable[idx], false, &blk);
	if (ret < 0)
		return ret;
	*rc = qcow2_refcount_read_entry(s, blk, cluster & ((1ull << s->refblock_bits) - 1));
	qcow2_cache_put(&s->rb_cache, blk);
	return 0;
}

int qcow2_reftable_write(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	size_t bytes = (size_t)s->refcount_table_clusters << s->cluster_bits;
	uint8_t *buf = calloc(1, bytes);
	int ret;

	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < s->reftable_entries; i++)
		put_be64(buf + i * 8, s->reftable[i]);
	ret = host_file_pwrite(&bs->file, s->refcount_table_offset, buf, bytes);
	free(buf);
	return ret < 0 ? error_set(ret, "%s: cannot write the refcount table", bs->filename) : 0;
}

/* Grow the refcount table so that index `need` exists. The new table and the refcount blocks
 * counting it are placed in the first range not described by the old table. */
static int reftable_grow(struct block_device *bs, uint64_t need)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t epb = 1ull << s->refblock_bits, cs = s->cluster_size;
	uint64_t b0 = s->reftable_entries, entries = s->reftable_entries * 2, tc, nrb = 1;
	uint64_t old_off = s->refcount_table_offset, old_clusters = s->refcount_table_clusters;
	uint64_t *nt;
	uint8_t *blk;
	int ret;

	if (entries < need + 1)
		entries = need + 1;
	for (;;) {
		tc = (entries * 8 + cs - 1) / cs;
		uint64_t ranges = (tc + nrb + epb - 1) / epb;
		if (ranges > nrb) {
			nrb = ranges;
			continue;
		}
		if (entries < b0 + nrb + 1) {
			entries = b0 + nrb + 1;
			continue;
		}
		break;
	}
	if (tc * cs > QCOW2_MAX_REFTABLE_BYTES)
		return error_set(-EFBIG, "%s: refcount table would exceed %u bytes", bs->filename,
				 QCOW2_MAX_REFTABLE_BYTES);
	entries = tc * cs / 8;
	nt = calloc(entries, 8);
	if (!nt)
		return -ENOMEM;
	memcpy(nt, s->reftable, s->reftable_entries * 8);

	/* Layout from cluster c0: [table: tc clusters][refcount blocks: nrb clusters]. */
	uint64_t c0 = b0 * epb;
	blk = calloc(1, cs);
	if (!blk) {
		free(nt);
		return -ENOMEM;
	}
	for (uint64_t r = 0; r < nrb; r++) {
		memset(blk, 0, cs);
		for (uint64_t c = (b0 + r) * epb; c < (b0 + r + 1) * epb && c < c0 + tc + nrb; c++)
			qcow2_refcount_write_entry(s, blk, c - (b0 + r) * epb, 1);
		uint64_t off = (c0 + tc + r) * cs;
		ret = host_file_pwrite(&bs->file, off, blk, cs);
		if (ret < 0)
			goto fail_io;
		nt[b0 + r] = off;
	}
	uint64_t *old = s->reftable;
	uint64_t old_entries = s->reftable_entries;
	s->reftable = nt;
	s->reftable_entries = entries;
	s->refcount_table_offset = c0 * cs;
	s->refcount_table_clusters = (uint32_t)tc;
	ret = qcow2_reftable_write(bs);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret == 0) {
		uint8_t f[12];
		put_be64(f, s->refcount_table_offset);
		put_be32(f + 8, s->refcount_table_clusters);
		ret = host_file_pwrite(&bs->file, 48, f, sizeof(f));
		if (ret == 0)
			ret = host_file_flush(&bs->file);
	}
	if (ret < 0) {
		s->reftable = old;
		s->reftable_entries = old_entries;
		s->refcount_table_offset = old_off;
		s->refcount_table_clusters = (uint32_t)old_clusters;
		free(nt);
		free(blk);
		return error_set(ret, "%s: cannot grow the refcount table", bs->filename);
	}
	free(old);
	free(blk);
	/* The old table is no longer referenced by the (synced) header. */
	return qcow2_free_now(bs, old_off, old_clusters * cs);
fail_io:
	free(nt);
	free(blk);
	return error_set(ret, "%s: cannot write a refcount block", bs->filename);
}

int qcow2_refcount_update(struct block_device *bs, uint64_t cluster, int64_t delta)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t idx = cluster >> s->refblock_bits, rc;
	uint8_t *blk;
	int ret;

	if (idx >= s->reftable_entries || !s->reftable[idx])
		return error_set(-EIO, "%s: no refcount block for cluster %#llx", bs->filename,
				 (unsigned long long)cluster);
	ret = qcow2_cache_get(&s->rb_cache, s->reftable[idx], false, &blk);
	if (ret < 0)
		return ret;
	uint64_t i = cluster & ((1ull << s->refblock_bits) - 1);
	rc = qcow2_refcount_read_entry(s, blk, i);
	if ((delta < 0 && rc < (uint64_t)-delta) ||
	    (delta > 0 && s->refcount_max - rc < (uint64_t)delta)) {
		qcow2_cache_put(&s->rb_cache, blk);
		return error_set(delta < 0 ? -EIO : -ERANGE,
				 "%s: refcount %s for cluster %#llx (refcount %llu)", bs->filename,
				 delta < 0 ? "underflow" : "overflow", (unsigned long long)cluster,
				 (unsigned long long)rc);
	}
	qcow2_refcount_write_entry(s, blk, i, rc + (uint64_t)delta);
	qcow2_cache_mark_dirty(&s->rb_cache, blk);
	qcow2_cache_put(&s->rb_cache, blk);
	if (rc + (uint64_t)delta == 0 && cluster < s->free_hint)
		s->free_hint = cluster;
	/* A freed cluster may be reused for anything: no more compressed streams go into it. */
	if (rc + (uint64_t)delta == 0 && s->compress_next &&
	    cluster == s->compress_next >> s->cluster_bits)
		s->compress_next = 0;
	return 0;
}

static bool range_missing(const struct qcow2_state *s, uint64_t idx)
{
	return idx >= s->reftable_entries || !s->reftable[idx];
}

/* Ranges without a refcount block among the clusters [a, b). */
static uint64_t missing_ranges(const struct qcow2_state *s, uint64_t a, uint64_t b, uint64_t *top)
{
	uint64_t k = 0;
	for (uint64_t idx = a >> s->refblock_bits; idx <= (b - 1) >> s->refblock_bits; idx++) {
		if (range_missing(s, idx)) {
			k++;
			*top = idx;
		}
	}
	return k;
}

/* New refcount blocks for the k ranges of [start, start+len) that lack one, placed at the end of
 * the run (clusters start+len-k ..); every cluster of the run gets refcount 1. */
static int alloc_with_refblocks(struct block_device *bs, uint64_t start, uint64_t len, uint64_t k)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t next = start + len - k, first_new = next;
	uint8_t *blk, e[8];
	int ret;

	for (uint64_t idx = start >> s->refblock_bits; idx <= (start + len - 1) >> s->refblock_bits;
	     idx++) {
		if (!range_missing(s, idx))
			continue;
		uint64_t off = next++ << s->cluster_bits;
		ret = qcow2_cache_get(&s->rb_cache, off, true, &blk);
		if (ret < 0)
			return ret;
		qcow2_cache_put(&s->rb_cache, blk);
		s->reftable[idx] = off;
	}
	for (uint64_t c = start; c < start + len; c++) {
		ret = qcow2_refcount_update(bs, c, 1);
		if (ret < 0)
			return ret;
	}
	if (!k)
		return 0;
	/* The blocks are durable before the refcount table points at them. */
	ret = qcow2_cache_flush(&s->rb_cache);
	if (ret < 0)
		return ret;
	for (uint64_t idx = start >> s->refblock_bits; idx <= (start + len - 1) >> s->refblock_bits;
	     idx++) {
		uint64_t off = s->reftable[idx];
		if ((off >> s->cluster_bits) < first_new || (off >> s->cluster_bits) >= start + len)
			continue;
		put_be64(e, off);
		ret = host_file_pwrite(&bs->file, s->refcount_table_offset + idx * 8, e, 8);
		if (ret < 0)
			return error_set(ret, "%s: cannot update the refcount table", bs->filename);
	}
	return 0;
}

/* Whether qcow2_alloc_clusters(bs, n) would run without I/O: it takes the first free run from
 * free_hint on, so this walks the same runs, and every refcount block it would read must be in
 * the cache and none be missing (a new block is flushed and the table written).  Looks at no
 * more than a few runs: a longer search is left to a thread that may block.  Lock held. */
bool qcow2_alloc_cached(struct block_device *bs, uint64_t n)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t start = s->free_hint, top = 0, rc;

	if (n == 0 || n > (1ull << s->refblock_bits))
		return false;
	for (int runs = 0; runs < 16; runs++) {
		uint64_t used = UINT64_MAX;
		if ((start + n) >> (63 - s->cluster_bits) ||
		    missing_ranges(s, start, start + n, &top))
			return false;
		for (uint64_t idx = start >> s->refblock_bits;
		     idx <= (start + n - 1) >> s->refblock_bits; idx++)
			if (!qcow2_cache_has(&s->rb_cache, s->reftable[idx]))
				return false;
		for (uint64_t c = start + n; c > start; c--) {
			if (qcow2_refcount_get(bs, c - 1, &rc) < 0)
				return false;
			if (rc) {
				used = c - 1;
				break;
			}
		}
		if (used == UINT64_MAX)
			return true;
		start = used + 1;
	}
	return false;
}

int qcow2_alloc_clusters(struct block_device *bs, uint64_t n, uint64_t *offset)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t start, len, k, top, rc;
	int ret;

	if (n == 0)
		return -EINVAL;
retry:
	for (start = s->free_hint;;) {
		uint64_t used = UINT64_MAX;
		/* Room for the data and for the refcount blocks it needs, which go right after. */
		k = 0;
		top = 0;
		for (;;) {
			uint64_t k2 = missing_ranges(s, start, start + n + k, &top);
			if (k2 == k)
				break;
			k = k2;
		}
		len = n + k;
		if ((start + len) >> (63 - s->cluster_bits))
			return error_set(-ENOSPC, "%s: image file full", bs->filename);
		for (uint64_t c = start + len; c > start; c--) {
			ret = qcow2_refcount_get(bs, c - 1, &rc);
			if (ret < 0)
				return ret;
			if (rc) {
				used = c - 1;
				break;
			}
		}
		if (used == UINT64_MAX)
			break;
		if (start == s->free_hint && used == start)
			s->free_hint = start + 1;
		start = used + 1;
	}
	if (k && top >= s->reftable_entries) {
		ret = reftable_grow(bs, top);
		if (ret < 0)
			return ret;
		goto retry; /* the new table took space */
	}
	ret = alloc_with_refblocks(bs, start, len, k);
	if (ret < 0)
		return ret;
	if (start == s->free_hint)
		s->free_hint = start + len;
	*offset = start << s->cluster_bits;
	return 0;
}

int qcow2_free_now(struct block_device *bs, uint64_t offset, uint64_t len)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t first = offset >> s->cluster_bits;
	uint64_t last = (offset + len - 1) >> s->cluster_bits;
	int ret;

	if (!len)
		return 0;
	for (uint64_t c = first; c <= last; c++) {
		uint64_t rc;
		ret = qcow2_refcount_update(bs, c, -1);
		if (ret < 0)
			return ret;
		ret = qcow2_refcount_get(bs, c, &rc);
		if (ret < 0)
			return ret;
		if (rc == 0) {
			/* A freed table must never be written back over the cluster's next use. */
			qcow2_cache_discard(&s->l2_cache, c << s->cluster_bits);
			qcow2_cache_discard(&s->rb_cache, c << s->cluster_bits);
			/* Give the space back to the host; reads of a freed cluster are never made.
			 */
			if (!s->read_only)
				host_file_punch_hole(&bs->file, c << s->cluster_bits,
						     s->cluster_size);
		}
	}
	return 0;
}

int qcow2_free_deferred(struct block_device *bs, uint64_t offset, uint64_t len)
{
	struct qcow2_state *s = qcow2_state(bs);

	if (!len)
		return 0;
	if (s->pending_n + 2 > s->pending_cap) {
		size_t cap = s->pending_cap ? s->pending_cap * 2 : 64;
		uint64_t *n = realloc(s->pending_free, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->pending_free = n;
		s->pending_cap = cap;
	}
	s->pending_free[s->pending_n++] = offset;
	s->pending_free[s->pending_n++] = len;
	return 0;
}

/* Called with L2 tables synced and no data I/O in flight. */
int qcow2_apply_pending_frees(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	int ret = 0;

	for (size_t i = 0; i + 1 < s->pending_n; i += 2) {
		ret = qcow2_free_now(bs, s->pending_free[i], s->pending_free[i + 1]);
		if (ret < 0)
			break;
	}
	s->pending_n = 0;
	return ret;
}
