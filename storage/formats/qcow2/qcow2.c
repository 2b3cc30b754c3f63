/* qcow2: the driver table, open/close, truncate, info, set_backing.
 *
 * Supports versions 2 and 3 (compat 0.10 and 1.1), cluster sizes 512 B..2 MiB, refcount widths
 * 1..64 bits, zero clusters, compressed clusters (zlib, zstd), backing files and internal
 * snapshots, external data files (qcow2_data_file.c); extended L2 entries (subclusters) read-only.
 * Refused: encryption.
 * Refcounts are kept exact at all times (lazy_refcounts is recorded but not exploited); an image
 * left with the dirty bit by another program is repaired when opened read-write.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/qcow2/qcow2.h"

static int cache_entries(uint64_t cluster_size, uint64_t budget, int min, int max)
{
	uint64_t n = budget / cluster_size;
	return n < (uint64_t)min ? min : n > (uint64_t)max ? max : (int)n;
}

/* Allocate the state with its locks and caches for an already-parsed geometry. */
int qcow2_state_setup(struct block_device *bs, struct qcow2_state *s)
{
	int ret;

	ret = qcow2_cache_init(&s->l2_cache, bs, cache_entries(s->cluster_size, 4u << 20, 8, 256),
			       s->cluster_size);
	if (ret == 0)
		ret = qcow2_cache_init(&s->rb_cache, bs,
				       cache_entries(s->cluster_size, 1u << 20, 4, 64),
				       s->cluster_size);
	s->l2_cache.depends = &s->rb_cache;
	return ret;
}

void qcow2_state_free(struct qcow2_state *s)
{
	if (!s)
		return;
	qcow2_cache_destroy(&s->l2_cache);
	qcow2_cache_destroy(&s->rb_cache);
	qcow2_snapshots_free(s);
	qcow2_data_file_close(s);
	free(s->l1);
	free(s->reftable);
	free(s->unknown_ext);
	free(s->feature_table);
	free(s->pending_free);
	free(s->alloc_inflight);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

struct qcow2_state *qcow2_state_new(void)
{
	struct qcow2_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->data_file.fd = -1;
	return s;
}

static int qcow2_open(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state_new();
	int ret;

	if (!s)
		return -ENOMEM;
	bs->state = s;
	s->read_only = !(bs->flags & BLOCK_OPEN_RDWR);
	ret = qcow2_header_read(bs, s);
	if (ret < 0)
		goto fail;
	if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !s->read_only &&
	    !(bs->flags & BLOCK_OPEN_CHECK)) {
		ret = error_set(-EACCES,
				"%s: image is marked corrupt; it can only be opened "
				"read-only (or repaired with check -r all)",
				bs->filename);
		goto fail;
	}
	ret = qcow2_snapshots_read(bs, s);
	if (ret < 0)
		goto fail;
	ret = qcow2_state_setup(bs, s);
	if (ret < 0)
		goto fail;
	ret = qcow2_data_file_open(bs, s);
	if (ret < 0)
		goto fail;
	if (s->has_data_file && s->nb_snapshots) {
		ret = error_set(-EINVAL,
				"%s: internal snapshots in an image with an external "
				"data file",
				bs->filename);
		goto fail;
	}
	if (!s->read_only && (s->autoclear & ~QCOW2_AUTOCLEAR_DATA_FILE_RAW)) {
		/* Bitmaps and other autoclear extras are not maintained by us: declare them stale.
		 * The raw data file bit stays: writes keep the data file a raw image. */
		s->autoclear &= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
		ret = qcow2_header_update_features(bs, s);
		if (ret < 0)
			goto fail;
	}
	if (!s->read_only && (s->incompat & QCOW2_INCOMPAT_DIRTY) &&
	    !(bs->flags & BLOCK_OPEN_CHECK)) {
		/* Lazy refcounts were left inconsistent by a crash: rebuild them now. */
		struct block_check_result r;
		memset(&r, 0, sizeof(r));
		ret = qcow2_check(bs, &r, BLOCK_CHECK_FIX_LEAKS | BLOCK_CHECK_FIX_ERRORS);
		if (ret < 0)
			goto fail;
		s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
		ret = qcow2_header_update_features(bs, s);
		if (ret == 0)
			ret = host_file_flush(&bs->file);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	qcow2_state_free(s);
	bs->state = NULL;
	return ret;
}

static void qcow2_close(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);

	if (!s)
		return;
	if (!s->read_only && qcow2_flush(bs) == 0)
		qcow2_file_trim(bs);
	qcow2_state_free(s);
	bs->state = NULL;
}

static int write_size(struct block_device *bs, uint64_t size)
{
	uint8_t f[8];
	int ret;

	put_be64(f, size);
	ret = host_file_pwrite(&bs->file, 24, f, sizeof(f));
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	return ret < 0 ? error_set(ret, "%s: cannot update the virtual size", bs->filename) : 0;
}

/* Allocate host clusters for every unallocated guest cluster of [from, to). */
int qcow2_preallocate(struct block_device *bs, uint64_t from, uint64_t to, enum block_prealloc mode)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size, end_host = 0;
	int ret = 0;

	if (mode == BLOCK_PREALLOC_OFF)
		return 0;
	pthread_mutex_lock(&s->lock);
	for (uint64_t off = from & ~(cs - 1); off < to && ret == 0;) {
		uint64_t l2_end = ((off >> (s->cluster_bits + s->l2_bits)) + 1)
				  << (s->cluster_bits + s->l2_bits);
		uint64_t run_end = l2_end < to ? l2_end : ((to + cs - 1) & ~(cs - 1));
		uint64_t n = (run_end - off) >> s->cluster_bits, host, entry;

		/* Make the L2 table exist first so that the data run stays contiguous. */
		ret = qcow2_l2_lookup(bs, off, &entry);
		if (ret == 0 && entry == 0)
			ret = qcow2_l2_set(bs, off, 0);
		/* An external data file's clusters sit at their guest offsets, unrefcounted. */
		host = off;
		if (ret == 0 && !s->has_data_file)
			ret = qcow2_alloc_clusters(bs, n, &host);
		for (uint64_t i = 0; i < n && ret == 0; i++) {
			ret = qcow2_l2_lookup(bs, off + i * cs, &entry);
			if (ret == 0 && qcow2_l2_type(s, entry) == QCOW2_C_UNALLOCATED)
				ret = qcow2_l2_set(bs, off + i * cs,
						   (host + i * cs) | QCOW2_OFLAG_COPIED);
			else if (ret == 0 && !s->has_data_file)
				ret = qcow2_free_deferred(bs, host + i * cs, cs);
		}
		if (ret == 0 && host + n * cs > end_host)
			end_host = host + n * cs;
		if (ret == 0 && mode == BLOCK_PREALLOC_FALLOC)
			ret = host_file_allocate(qcow2_data(bs), host, n * cs);
		if (ret == 0 && mode == BLOCK_PREALLOC_FULL)
			ret = host_file_write_zeroes(qcow2_data(bs), host, n * cs);
		off = run_end;
	}
	if (ret == 0)
		ret = qcow2_metadata_flush(bs);
	pthread_mutex_unlock(&s->lock);
	if (ret == 0 && end_host) {
		uint64_t fsize;
		if (s->has_data_file && end_host > to)
			end_host = to; /* a raw data file is exactly the disk */
		ret = host_file_size(qcow2_data(bs), &fsize);
		if (ret == 0 && fsize < end_host)
			ret = host_file_truncate(qcow2_data(bs), end_host);
	}
	return ret < 0
		   ? error_set(ret, "%s: preallocation failed: %s", bs->filename, strerror(-ret))
		   : 0;
}

static int qcow2_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
			  bool shrink_allowed)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t old = bs->size, cs = s->cluster_size;
	int ret = 0;

	if (s->read_only)
		return error_set(-EROFS, "%s: image is read-only", bs->filename);
	if (new_size == old)
		return 0;
	if (s->nb_snapshots)
		return error_set(-ENOTSUP, "%s: cannot resize an image with snapshots",
				 bs->filename);
	if (new_size > (1ull << 62))
		return error_set(-EFBIG, "%s: size %llu too large", bs->filename,
				 (unsigned long long)new_size);
	if (new_size < old) {
		/* Clusters past the new end must be unused unless shrinking is explicitly allowed.
		 */
		uint64_t first = (new_size + cs - 1) & ~(cs - 1);
		pthread_mutex_lock(&s->lock);
		for (uint64_t off = first; off < old && ret == 0; off += cs) {
			uint64_t e;
			ret = qcow2_l2_lookup(bs, off, &e);
			if (ret == 0 && e && !shrink_allowed)
				ret = error_set(-ENOTSUP,
						"%s: data beyond the new size %llu: shrink refused",
						bs->filename, (unsigned long long)new_size);
			if (ret == 0 && e) {
				ret = qcow2_l2_set(bs, off, 0);
				if (ret == 0)
					ret = qcow2_entry_free(bs, e);
			}
		}
		if (ret == 0)
			ret = qcow2_metadata_flush(bs);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			return ret;
		ret = write_size(bs, new_size);
		if (ret == 0)
			bs->size = new_size;
		/* What lay past the new end of a data file can never be read again. */
		if (ret == 0 && s->has_data_file &&
		    (ret = host_file_truncate(&s->data_file, new_size)) < 0)
			ret = error_set(ret, "%s: cannot shrink %s: %s", bs->filename,
					s->data_file_path, strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	ret = qcow2_l1_grow(bs, (uint32_t)qcow2_l1_needed(s, new_size));
	pthread_mutex_unlock(&s->lock);
	if (ret == 0)
		ret = write_size(bs, new_size);
	if (ret < 0)
		return ret;
	bs->size = new_size;
	/* The grown area reads as zeroes even where the backing file is larger. */
	if (bs->backing && bs->backing->size > old) {
		uint64_t end = bs->backing->size < new_size ? bs->backing->size : new_size;
		ret = qcow2_write_zeroes(bs, old, end - old, 0);
		if (ret < 0)
			return ret;
	}
	/* A raw data file stays the whole disk: the new clusters are mapped and it grows. */
	if (s->data_file_raw && prealloc == BLOCK_PREALLOC_OFF)
		prealloc = BLOCK_PREALLOC_METADATA;
	return qcow2_preallocate(bs, old, new_size, prealloc);
}

static int qcow2_info(struct block_device *bs, struct json_object *out)
{
	struct qcow2_state *s = qcow2_state(bs);

	json_object_object_add(out, "compat",
			       json_object_new_string(s->version == 2 ? "0.10" : "1.1"));
	json_object_object_add(out, "compression-type",
			       json_object_new_string(s->compression_type ? "zstd" : "zlib"));
	if (s->version >= 3)
		json_object_object_add(
		    out, "lazy-refcounts",
		    json_object_new_boolean(!!(s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS)));
	if (s->incompat & QCOW2_INCOMPAT_DIRTY)
		json_object_object_add(out, "dirty-flag", json_object_new_boolean(true));
	json_object_object_add(out, "refcount-bits", json_object_new_int(1 << s->refcount_order));
	if (s->has_data_file) {
		json_object_object_add(out, "data-file", json_object_new_string(s->data_file_name));
		json_object_object_add(out, "data-file-raw",
				       json_object_new_boolean(s->data_file_raw));
	}
	if (s->version >= 3) {
		json_object_object_add(
		    out, "corrupt",
		    json_object_new_boolean(!!(s->incompat & QCOW2_INCOMPAT_CORRUPT)));
		json_object_object_add(out, "extended-l2", json_object_new_boolean(s->extended_l2));
	}
	return 0;
}

static int qcow2_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt)
{
	struct qcow2_state *s = qcow2_state(bs);
	char *name = backing ? strdup(backing) : NULL;
	char *fmt = backing_fmt ? strdup(backing_fmt) : NULL;
	int ret;

	if ((backing && !name) || (backing_fmt && !fmt)) {
		free(name);
		free(fmt);
		return -ENOMEM;
	}
	if (s->read_only) {
		free(name);
		free(fmt);
		return error_set(-EROFS, "%s: image is read-only", bs->filename);
	}
	pthread_mutex_lock(&s->lock);
	free(bs->backing_name);
	free(bs->backing_fmt);
	bs->backing_name = name;
	bs->backing_fmt = fmt;
	ret = qcow2_header_write(bs, s);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static uint32_t qcow2_cluster_size(struct block_device *bs)
{
	return (uint32_t)qcow2_state(bs)->cluster_size;
}

static const struct block_driver block_driver_qcow2 = {
    .name = "qcow2",
    .description = "QEMU copy-on-write image, versions 2 and 3",
    .has_backing = true,
    .probe = qcow2_probe,
    .probe_bytes = 8, /* magic and version */
    .open = qcow2_open,
    .close = qcow2_close,
    .create = qcow2_create,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .block_status = qcow2_block_status,
    .truncate = qcow2_truncate,
    .check = qcow2_check,
    .info = qcow2_info,
    .set_backing = qcow2_set_backing,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_load_tmp = qcow2_snapshot_load_tmp,
    .cluster_size = qcow2_cluster_size,
    .pwrite_compressed = qcow2_pwrite_compressed,
    .aio_map = qcow2_aio_map,
    .aio_map_end = qcow2_aio_map_end,
    .aio_alloc = qcow2_aio_alloc,
    .aio_alloc_end = qcow2_aio_alloc_end,
};
BLOCK_DRIVER(block_driver_qcow2);
