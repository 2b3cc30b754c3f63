/* qcow2: consistency check and repair.
 *
 * Refcounts are rebuilt in memory by walking every piece of metadata (header, L1/L2 tables of the
 * active state and of each snapshot, data and compressed clusters, the snapshot table, the refcount
 * table and blocks) and compared with those on disk: a higher on-disk count is a leak, a lower one
 * a corruption (the cluster could be reused while in use). Leaks are fixed with FIX_LEAKS,
 * corruptions with FIX_ERRORS. Bitmap metadata is not counted (we do not keep bitmaps).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/qcow2/qcow2.h"

#define QCOW2_CHECK_MAX_CLUSTERS (1ULL << 27) /* 1 GiB of counters */

struct check_ctx {
	struct block_device *bs;
	struct qcow2_state *s;
	uint64_t *ref;
	uint64_t nb; /* clusters in the file */
	struct block_check_result *res;
	uint64_t prev_host;
};

static void count(struct check_ctx *c, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	uint64_t first = off >> c->s->cluster_bits, last = (off + len - 1) >> c->s->cluster_bits;
	for (uint64_t i = first; i <= last; i++) {
		if (i >= c->nb) {
			c->res->corruptions++; /* referenced past the end of the file */
			continue;
		}
		c->ref[i]++;
	}
}

static int walk_l1(struct check_ctx *c, uint64_t l1_off, uint32_t l1_size, bool active)
{
	struct qcow2_state *s = c->s;
	uint64_t *l1 = NULL;
	uint8_t *l2 = malloc(s->cluster_size);
	int ret = 0;

	if (!l2)
		return -ENOMEM;
	count(c, l1_off, (uint64_t)l1_size * 8);
	if (active) {
		l1 = s->l1;
	} else {
		l1 = calloc(l1_size ? l1_size : 1, 8);
		if (!l1) {
			free(l2);
			return -ENOMEM;
		}
		if (host_file_pread(&c->bs->file, l1_off, l1, (size_t)l1_size * 8) < 0) {
			c->res->check_errors++;
			l1_size = 0;
		}
		for (uint32_t i = 0; i < l1_size; i++)
			l1[i] = get_be64((uint8_t *)&l1[i]);
	}
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2_off = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2_off)
			continue;
		if ((l2_off & (s->cluster_size - 1)) || (l2_off >> s->cluster_bits) >= c->nb) {
			c->res->corruptions++;
			continue;
		}
		count(c, l2_off, s->cluster_size);
		if (host_file_pread(&c->bs->file, l2_off, l2, s->cluster_size) < 0) {
			c->res->check_errors++;
			continue;
		}
		for (uint64_t j = 0; j < (1ull << s->l2_bits); j++) {
			uint64_t e = get_be64(l2 + j * s->l2_esize);
			uint64_t guest = (((uint64_t)i << s->l2_bits) + j) << s->cluster_bits;
			switch (qcow2_l2_type(s, e)) {
			case QCOW2_C_NORMAL:
			case QCOW2_C_ZERO_ALLOC: {
				uint64_t h = e & QCOW2_OFFSET_MASK;
				if (h & (s->cluster_size - 1)) {
					c->res->corruptions++;
					break;
				}
				/* Data file clusters sit at their guest offset, unrefcounted. */
				if (s->has_data_file && h != guest) {
					c->res->corruptions++;
					break;
				}
				if (!s->has_data_file)
					count(c, h, s->cluster_size);
				if (active) {
					c->res->allocated_clusters++;
					if (c->prev_host && h != c->prev_host + s->cluster_size)
						c->res->fragmented_clusters++;
					c->prev_host = h;
				}
				break;
			}
			case QCOW2_C_COMPRESSED: {
				uint64_t h = e & s->cluster_offset_mask;
				if (s->has_data_file) {
					c->res->corruptions++; /* no compression with a data file */
					break;
				}
				uint64_t n = ((e >> s->csize_shift) & s->csize_mask) + 1;
				count(c, h & ~511ull, n * 512);
				if (active) {
					c->res->allocated_clusters++;
					c->res->compressed_clusters++;
				}
				break;
			}
			default:
				break;
			}
		}
	}
	if (!active)
		free(l1);
	free(l2);
	return ret;
}

/* The COPIED flag must be set exactly where the (rebuilt) refcount is 1: a flag on a shared
 * cluster would let a write modify a snapshot in place. */
static int check_copied(struct check_ctx *c, uint64_t *bad)
{
	struct qcow2_state *s = c->s;
	uint8_t *l2 = malloc(s->cluster_size);

	if (!l2)
		return -ENOMEM;
	*bad = 0;
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2_off = s->l1[i] & QCOW2_OFFSET_MASK, ci = l2_off >> s->cluster_bits;
		if (!l2_off || (l2_off & (s->cluster_size - 1)) || ci >= c->nb)
			continue;
		if ((c->ref[ci] == 1) != !!(s->l1[i] & QCOW2_OFLAG_COPIED))
			(*bad)++;
		if (host_file_pread(&c->bs->file, l2_off, l2, s->cluster_size) < 0)
			continue;
		for (uint64_t j = 0; j < (1ull << s->l2_bits); j++) {
			uint64_t e = get_be64(l2 + j * s->l2_esize);
			enum qcow2_ctype t = qcow2_l2_type(s, e);
			uint64_t d = (e & QCOW2_OFFSET_MASK) >> s->cluster_bits;
			if ((t != QCOW2_C_NORMAL && t != QCOW2_C_ZERO_ALLOC) || d >= c->nb ||
			    s->has_data_file)
				continue;
			if ((c->ref[d] == 1) != !!(e & QCOW2_OFLAG_COPIED))
				(*bad)++;
		}
	}
	free(l2);
	return 0;
}

/* Persistent bitmaps (kept by other programs; valid while the autoclear bit is set) own their
 * directory, tables and data clusters: count them so they are not taken for leaks. */
static void count_bitmaps(struct check_ctx *c)
{
	struct qcow2_state *s = c->s;
	const uint8_t *ext = NULL;

	if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return;
	for (size_t pos = 0; pos + 8 <= s->unknown_ext_len;) {
		uint32_t type = get_be32(s->unknown_ext + pos),
			 len = get_be32(s->unknown_ext + pos + 4);
		if (type == QCOW2_EXT_BITMAPS && len >= 24 && pos + 8 + len <= s->unknown_ext_len)
			ext = s->unknown_ext + pos + 8;
		pos += 8 + (((size_t)len + 7) & ~(size_t)7);
	}
	if (!ext)
		return;
	uint32_t nb = get_be32(ext);
	uint64_t dsize = get_be64(ext + 8), doff = get_be64(ext + 16);
	if (dsize > (64u << 20) || (doff >> s->cluster_bits) >= c->nb) {
		c->res->corruptions++;
		return;
	}
	uint8_t *dir = malloc(dsize ? dsize : 1);
	if (!dir || host_file_pread(&c->bs->file, doff, dir, dsize) < 0) {
		c->res->check_errors++;
		free(dir);
		return;
	}
	count(c, doff, dsize);
	uint64_t pos = 0;
	for (uint32_t i = 0; i < nb && pos + 24 <= dsize; i++) {
		uint64_t toff = get_be64(dir + pos);
		uint32_t tsize = get_be32(dir + pos + 8);
		uint16_t name = get_be16(dir + pos + 18);
		uint32_t extra = get_be32(dir + pos + 20);
		pos += (24 + (uint64_t)extra + name + 7) & ~7ull;
		if ((toff >> s->cluster_bits) >= c->nb || (uint64_t)tsize * 8 > (64u << 20)) {
			c->res->corruptions++;
			continue;
		}
		uint8_t *tab = malloc(tsize ? (size_t)tsize * 8 : 1);
		if (!tab || host_file_pread(&c->bs->file, toff, tab, (size_t)tsize * 8) < 0) {
			c->res->check_errors++;
			free(tab);
			continue;
		}
		count(c, toff, (uint64_t)tsize * 8);
		for (uint32_t j = 0; j < tsize; j++) {
			uint64_t d = get_be64(tab + (size_t)j * 8) & QCOW2_OFFSET_MASK;
			if (d)
				count(c, d, s->cluster_size);
		}
		free(tab);
	}
	free(dir);
}

static uint64_t snapshot_table_size(const struct qcow2_state *s)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		const struct qcow2_snapshot *sn = &s->snapshots[i];
		n += (40 + sn->extra_size + strlen(sn->id) + strlen(sn->name) + 7) & ~7ull;
	}
	return n;
}

/* Set the on-disk refcount of cluster i to v (refcount block must exist unless v > 0). */
static int set_refcount(struct check_ctx *c, uint64_t i, uint64_t ondisk, uint64_t v)
{
	if (v > c->s->refcount_max)
		return -ERANGE;
	uint64_t idx0 = i >> c->s->refblock_bits;
	/* A missing refcount block cannot be placed safely in a range already in use. */
	if (idx0 >= c->s->reftable_entries || !c->s->reftable[idx0])
		return -ENOTSUP;
	if (v > ondisk)
		return qcow2_refcount_update(c->bs, i, (int64_t)(v - ondisk));
	uint8_t *blk;
	uint64_t idx = i >> c->s->refblock_bits;
	int ret = qcow2_cache_get(&c->s->rb_cache, c->s->reftable[idx], false, &blk);
	if (ret < 0)
		return ret;
	qcow2_refcount_write_entry(c->s, blk, i & ((1ull << c->s->refblock_bits) - 1), v);
	qcow2_cache_mark_dirty(&c->s->rb_cache, blk);
	qcow2_cache_put(&c->s->rb_cache, blk);
	if (v == 0 && i < c->s->free_hint)
		c->s->free_hint = i;
	return 0;
}

static int compare(struct check_ctx *c, int fix)
{
	struct qcow2_state *s = c->s;
	uint64_t covered = s->reftable_entries << s->refblock_bits;
	int ret;

	for (uint64_t i = 0; i < covered || i < c->nb; i++) {
		uint64_t idx = i >> s->refblock_bits, ondisk = 0;
		uint64_t want = i < c->nb ? c->ref[i] : 0;
		if (i >= c->nb && (idx >= s->reftable_entries || !s->reftable[idx])) {
			/* Past the file and no block: skip the whole uncovered range. */
			i = ((idx + 1) << s->refblock_bits) - 1;
			continue;
		}
		ret = qcow2_refcount_get(c->bs, i, &ondisk);
		if (ret < 0) {
			c->res->check_errors++;
			continue;
		}
		if (want && (i + 1) * s->cluster_size > c->res->image_end_offset)
			c->res->image_end_offset = (i + 1) * s->cluster_size;
		if (ondisk == want)
			continue;
		if (ondisk > want) {
			c->res->leaks++;
			if ((fix & BLOCK_CHECK_FIX_LEAKS) && set_refcount(c, i, ondisk, want) == 0)
				c->res->leaks_fixed++;
		} else {
			c->res->corruptions++;
			if ((fix & BLOCK_CHECK_FIX_ERRORS) && set_refcount(c, i, ondisk, want) == 0)
				c->res->corruptions_fixed++;
		}
	}
	return 0;
}

int qcow2_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct check_ctx c = {.bs = bs, .s = s, .res = res};
	uint64_t fsize;
	int ret;

	memset(res, 0, sizeof(*res));
	if (s->read_only)
		fix = 0;
	pthread_mutex_lock(&s->lock);
	if (!s->read_only) {
		ret = qcow2_metadata_flush(bs);
		if (ret < 0)
			goto out;
	}
	ret = host_file_size(&bs->file, &fsize);
	if (ret < 0)
		goto out;
	c.nb = (fsize + s->cluster_size - 1) >> s->cluster_bits;
	/* One counter per cluster of the file: a file of more clusters than that (a sparse file
	 * with something written far out; found by fuzz_image) is refused rather than asking for
	 * terabytes of counters. 2^27 clusters is 8 TiB of file with 64 KiB clusters. */
	if (c.nb > QCOW2_CHECK_MAX_CLUSTERS) {
		ret = error_set(-EFBIG,
				"%s: image file of %llu bytes has more clusters (%llu) than check "
				"counts (%llu)",
				bs->filename, (unsigned long long)fsize, (unsigned long long)c.nb,
				(unsigned long long)QCOW2_CHECK_MAX_CLUSTERS);
		goto out;
	}
	c.ref = calloc(c.nb ? c.nb : 1, sizeof(*c.ref));
	if (!c.ref) {
		ret = -ENOMEM;
		goto out;
	}
	res->total_clusters = (bs->size + s->cluster_size - 1) >> s->cluster_bits;
	count(&c, 0, s->cluster_size);
	ret = walk_l1(&c, s->l1_table_offset, s->l1_size, true);
	for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++)
		ret = walk_l1(&c, s->snapshots[i].l1_table_offset, s->snapshots[i].l1_size, false);
	if (ret < 0)
		goto out;
	if (s->nb_snapshots)
		count(&c, s->snapshots_offset, snapshot_table_size(s));
	count_bitmaps(&c);
	count(&c, s->refcount_table_offset,
	      (uint64_t)s->refcount_table_clusters << s->cluster_bits);
	for (uint64_t i = 0; i < s->reftable_entries; i++) {
		if (!s->reftable[i])
			continue;
		if ((s->reftable[i] >> s->cluster_bits) >= c.nb)
			res->corruptions++;
		else
			count(&c, s->reftable[i], s->cluster_size);
	}
	uint64_t bad_copied = 0;
	ret = check_copied(&c, &bad_copied);
	if (ret < 0)
		goto out;
	res->corruptions += bad_copied;
	ret = compare(&c, fix);
	if (ret == 0 && bad_copied && (fix & BLOCK_CHECK_FIX_ERRORS)) {
		/* Refcounts on disk are right now: derive the flags from them. */
		ret = qcow2_fix_copied_flags(bs);
		if (ret == 0)
			res->corruptions_fixed += bad_copied;
	}
	if (ret == 0 && fix && (res->leaks_fixed || res->corruptions_fixed)) {
		/* Repaired refcounts no longer vouch for the compressed-stream cursor's cluster. */
		s->compress_next = 0;
		ret = qcow2_metadata_flush(bs);
	}
	if (ret == 0 && fix && (s->incompat & QCOW2_INCOMPAT_CORRUPT) &&
	    res->corruptions == res->corruptions_fixed && (fix & BLOCK_CHECK_FIX_ERRORS)) {
		s->incompat &= ~QCOW2_INCOMPAT_CORRUPT;
		ret = qcow2_header_update_features(bs, s);
	}
out:
	free(c.ref);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
