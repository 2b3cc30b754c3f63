/* qcow2: the internal snapshot table (read, list, write) and snapshot create/apply/delete.
 *
 * Each snapshot owns a copy of the L1 table; taking one adds a reference to every L2 table and
 * data cluster reachable from the active L1, so later writes copy on write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/endian.h"
#include "storage/formats/qcow2/qcow2.h"

#define SNAP_MAX_EXTRA 1024
#define SNAP_MAX_TABLE (64u << 20)

void qcow2_snapshots_free(struct qcow2_state *s)
{
	for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++) {
		free(s->snapshots[i].id);
		free(s->snapshots[i].name);
	}
	free(s->snapshots);
	s->snapshots = NULL;
}

int qcow2_snapshots_read(struct block_device *bs, struct qcow2_state *s)
{
	uint64_t file_size, pos = s->snapshots_offset;
	int ret;

	if (!s->nb_snapshots)
		return 0;
	ret = host_file_size(&bs->file, &file_size);
	if (ret < 0)
		return ret;
	s->snapshots = calloc(s->nb_snapshots, sizeof(*s->snapshots));
	if (!s->snapshots)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		struct qcow2_snapshot *sn = &s->snapshots[i];
		uint8_t h[40], extra[SNAP_MAX_EXTRA];

		if (pos + 40 > file_size || pos - s->snapshots_offset > SNAP_MAX_TABLE)
			return error_set(-EINVAL, "%s: snapshot table entry %u beyond end of file",
					 bs->filename, i);
		ret = host_file_pread(&bs->file, pos, h, sizeof(h));
		if (ret < 0)
			return error_set(ret, "%s: cannot read the snapshot table", bs->filename);
		sn->l1_table_offset = get_be64(h);
		sn->l1_size = get_be32(h + 8);
		uint16_t id_len = get_be16(h + 12), name_len = get_be16(h + 14);
		sn->date_sec = get_be32(h + 16);
		sn->date_nsec = get_be32(h + 20);
		sn->vm_clock_nsec = get_be64(h + 24);
		sn->vm_state_size = get_be32(h + 32);
		sn->extra_size = get_be32(h + 36);
		if (sn->extra_size > SNAP_MAX_EXTRA)
			return error_set(-EINVAL, "%s: snapshot %u: extra data too large (%u)",
					 bs->filename, i, sn->extra_size);
		pos += 40;
		uint64_t var = (uint64_t)sn->extra_size + id_len + name_len;
		if (pos + var > file_size)
			return error_set(-EINVAL, "%s: snapshot %u beyond end of file",
					 bs->filename, i);
		memset(extra, 0, sizeof(extra));
		ret = host_file_pread(&bs->file, pos, extra, sn->extra_size);
		if (ret < 0)
			return ret;
		if (sn->extra_size >= 8)
			sn->vm_state_size = get_be64(extra);
		if (sn->extra_size >= 16) {
			sn->disk_size = get_be64(extra + 8);
			sn->has_disk_size = true;
		}
		if (sn->extra_size >= 24) {
			sn->icount = get_be64(extra + 16);
			sn->has_icount = true;
		}
		pos += sn->extra_size;
		sn->id = calloc(1, (size_t)id_len + 1);
		sn->name = calloc(1, (size_t)name_len + 1);
		if (!sn->id || !sn->name)
			return -ENOMEM;
		ret = host_file_pread(&bs->file, pos, sn->id, id_len);
		if (ret == 0)
			ret = host_file_pread(&bs->file, pos + id_len, sn->name, name_len);
		if (ret < 0)
			return ret;
		pos += id_len + name_len;
		pos = (pos + 7) & ~7ull;
		if ((sn->l1_table_offset & (s->cluster_size - 1)) ||
		    (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
		    sn->l1_table_offset + (uint64_t)sn->l1_size * 8 > file_size)
			return error_set(-EINVAL, "%s: snapshot %u: invalid L1 table", bs->filename,
					 i);
	}
	return 0;
}

int qcow2_snapshot_list(struct block_device *bs, struct block_snapshot **list, int *count)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct block_snapshot *l;

	*list = NULL;
	*count = 0;
	if (!s->nb_snapshots)
		return 0;
	l = calloc(s->nb_snapshots, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		const struct qcow2_snapshot *sn = &s->snapshots[i];
		snprintf(l[i].id, sizeof(l[i].id), "%s", sn->id);
		snprintf(l[i].name, sizeof(l[i].name), "%s", sn->name);
		l[i].vm_state_size = sn->vm_state_size;
		l[i].date_sec = sn->date_sec;
		l[i].date_nsec = sn->date_nsec;
		l[i].vm_clock_nsec = sn->vm_clock_nsec;
		l[i].disk_size = sn->has_disk_size ? sn->disk_size : bs->size;
	}
	*count = (int)s->nb_snapshots;
	pthread_mutex_unlock(&s->lock);
	*list = l;
	return 0;
}

/* ---- create / apply / delete ---- */

static struct qcow2_snapshot *snapshot_find(struct qcow2_state *s, const char *name_or_id)
{
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (!strcmp(s->snapshots[i].id, name_or_id))
			return &s->snapshots[i];
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (!strcmp(s->snapshots[i].name, name_or_id))
			return &s->snapshots[i];
	return NULL;
}

static int read_l1(struct block_device *bs, uint64_t off, uint32_t n, uint64_t **out)
{
	uint64_t *l1 = calloc(n ? n : 1, 8);
	int ret;

	if (!l1)
		return -ENOMEM;
	ret = host_file_pread(&bs->file, off, l1, (size_t)n * 8);
	if (ret < 0) {
		free(l1);
		return error_set(ret, "%s: cannot read a snapshot L1 table", bs->filename);
	}
	for (uint32_t i = 0; i < n; i++)
		l1[i] = get_be64((uint8_t *)&l1[i]);
	*out = l1;
	return 0;
}

static int write_l1(struct block_device *bs, uint64_t off, const uint64_t *l1, uint32_t n)
{
	uint8_t *buf = malloc(n ? (size_t)n * 8 : 1);
	int ret;

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		put_be64(buf + i * 8, l1[i]);
	ret = host_file_pwrite(&bs->file, off, buf, (size_t)n * 8);
	free(buf);
	return ret < 0 ? error_set(ret, "%s: cannot write an L1 table", bs->filename) : 0;
}

enum { L1_UNDO = 2 };

/* One refcount change of cluster c: +1, or L1_UNDO (-1 at once: takes back an increment nothing
 * points at yet) while `*n` undos remain; counts increments in *n. Returns 1 when done undoing. */
static int ref_step(struct block_device *bs, uint64_t c, int op, uint64_t *n)
{
	if (op == L1_UNDO) {
		if (*n == 0)
			return 1;
		(*n)--;
		return qcow2_refcount_update(bs, c, -1);
	}
	int ret = qcow2_refcount_update(bs, c, 1);
	if (ret == 0)
		(*n)++;
	return ret;
}

/* Walk an L1 and apply `op` to every L2 table and data cluster: +1, -1 (deferred), or L1_UNDO
 * (the first *n increments of a +1 walk, in the same order). */
static int l1_refs_walk(struct block_device *bs, const uint64_t *l1, uint32_t n, int op,
			uint64_t *count)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint8_t *l2 = malloc(s->cluster_size), *t;
	int ret = 0;

	if (!l2)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint64_t l2_off = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2_off)
			continue;
		if (l2_off & (s->cluster_size - 1)) {
			ret = error_set(-EIO, "%s: L1 entry %u: unaligned L2 offset %#llx",
					bs->filename, i, (unsigned long long)l2_off);
			break;
		}
		ret = qcow2_cache_get(&s->l2_cache, l2_off, false, &t);
		if (ret < 0)
			break;
		memcpy(l2, t, s->cluster_size);
		qcow2_cache_put(&s->l2_cache, t);
		for (uint64_t j = 0; j < (1ull << s->l2_bits) && ret == 0; j++) {
			uint64_t e = get_be64(l2 + j * s->l2_esize), off, len;
			switch (qcow2_l2_type(s, e)) {
			case QCOW2_C_NORMAL:
			case QCOW2_C_ZERO_ALLOC:
				off = e & QCOW2_OFFSET_MASK;
				len = s->cluster_size;
				if (off & (s->cluster_size - 1))
					ret = error_set(-EIO, "%s: unaligned data cluster %#llx",
							bs->filename, (unsigned long long)off);
				break;
			case QCOW2_C_COMPRESSED:
				/* Every host cluster the stream touches (packed streams share). */
				off = (e & s->cluster_offset_mask) & ~511ull;
				len = (((e >> s->csize_shift) & s->csize_mask) + 1) * 512;
				break;
			default:
				continue;
			}
			if (ret < 0)
				break;
			if (op < 0) {
				ret = qcow2_free_deferred(bs, off, len);
				continue;
			}
			for (uint64_t c = off >> s->cluster_bits;
			     c <= (off + len - 1) >> s->cluster_bits && ret == 0; c++)
				ret = ref_step(bs, c, op, count);
		}
		if (ret == 0)
			ret = op < 0 ? qcow2_free_deferred(bs, l2_off, s->cluster_size)
				     : ref_step(bs, l2_off >> s->cluster_bits, op, count);
	}
	free(l2);
	return ret < 0 ? ret : 0;
}

/* Add (+1) or drop (-1, deferred) one reference to every L2 table and data cluster of an L1. A
 * failed +1 (a refcount at its maximum: packed compressed clusters of narrow refcounts reach it)
 * takes back the increments it made, so the image is left as it was. */
static int l1_refs(struct block_device *bs, const uint64_t *l1, uint32_t n, int addend)
{
	uint64_t done = 0;
	int ret = l1_refs_walk(bs, l1, n, addend, &done);

	if (ret < 0 && addend > 0 && done)
		l1_refs_walk(bs, l1, n, L1_UNDO, &done);
	return ret;
}

/* Make the COPIED flags of the active L1 and its L2 tables say "refcount is exactly 1". */
int qcow2_fix_copied_flags(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	int ret = 0;

	for (uint32_t i = 0; i < s->l1_size && ret == 0; i++) {
		uint64_t l2_off = s->l1[i] & QCOW2_OFFSET_MASK, rc;
		uint8_t *l2;
		if (!l2_off)
			continue;
		ret = qcow2_refcount_get(bs, l2_off >> s->cluster_bits, &rc);
		if (ret < 0)
			break;
		uint64_t want = l2_off | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
		if (want != s->l1[i]) {
			s->l1[i] = want; /* written by the caller's metadata flush */
			s->l1_dirty = true;
		}
		/* Data entries are fixed even in a shared table: only the flag changes. */
		ret = qcow2_cache_get(&s->l2_cache, l2_off, false, &l2);
		if (ret < 0)
			break;
		bool dirty = false;
		for (uint64_t j = 0; j < (1ull << s->l2_bits) && ret == 0; j++) {
			uint64_t e = get_be64(l2 + j * s->l2_esize);
			enum qcow2_ctype t = qcow2_l2_type(s, e);
			if (t != QCOW2_C_NORMAL && t != QCOW2_C_ZERO_ALLOC)
				continue;
			rc = 1; /* a data file's clusters are never shared */
			if (!s->has_data_file)
				ret = qcow2_refcount_get(
				    bs, (e & QCOW2_OFFSET_MASK) >> s->cluster_bits, &rc);
			uint64_t ne =
			    rc == 1 ? (e | QCOW2_OFLAG_COPIED) : (e & ~QCOW2_OFLAG_COPIED);
			if (ret == 0 && ne != e) {
				put_be64(l2 + j * s->l2_esize, ne);
				dirty = true;
			}
		}
		if (dirty)
			qcow2_cache_mark_dirty(&s->l2_cache, l2);
		qcow2_cache_put(&s->l2_cache, l2);
	}
	return ret;
}

/* Write the snapshot table `sn` (n entries) to new clusters and switch the header to it. */
static int table_write(struct block_device *bs, struct qcow2_snapshot *sn, uint32_t n)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t size = 0, off = 0, old_off = s->snapshots_offset, old_size = 0;
	uint8_t *buf, *p, f[12];
	int ret;

	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		old_size += (40 + s->snapshots[i].extra_size + strlen(s->snapshots[i].id) +
			     strlen(s->snapshots[i].name) + 7) &
			    ~7ull;
	for (uint32_t i = 0; i < n; i++)
		size += (40 + 16 + strlen(sn[i].id) + strlen(sn[i].name) + 7) & ~7ull;
	buf = calloc(1, size ? size : 1);
	if (!buf)
		return -ENOMEM;
	p = buf;
	for (uint32_t i = 0; i < n; i++) {
		size_t il = strlen(sn[i].id), nl = strlen(sn[i].name);
		put_be64(p, sn[i].l1_table_offset);
		put_be32(p + 8, sn[i].l1_size);
		put_be16(p + 12, (uint16_t)il);
		put_be16(p + 14, (uint16_t)nl);
		put_be32(p + 16, sn[i].date_sec);
		put_be32(p + 20, sn[i].date_nsec);
		put_be64(p + 24, sn[i].vm_clock_nsec);
		put_be32(p + 32,
			 sn[i].vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn[i].vm_state_size);
		put_be32(p + 36, 16);
		put_be64(p + 40, sn[i].vm_state_size);
		put_be64(p + 48, sn[i].has_disk_size ? sn[i].disk_size : bs->size);
		memcpy(p + 56, sn[i].id, il);
		memcpy(p + 56 + il, sn[i].name, nl);
		sn[i].extra_size = 16;
		p += (56 + il + nl + 7) & ~7ull;
	}
	if (size) {
		ret =
		    qcow2_alloc_clusters(bs, (size + s->cluster_size - 1) >> s->cluster_bits, &off);
		if (ret == 0)
			ret = qcow2_cache_flush(&s->rb_cache);
		if (ret == 0)
			ret = host_file_pwrite(&bs->file, off, buf, size);
		if (ret < 0) {
			free(buf);
			return error_set(ret, "%s: cannot write the snapshot table", bs->filename);
		}
	}
	free(buf);
	ret = qcow2_metadata_flush(bs);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret < 0)
		return ret;
	put_be32(f, n);
	put_be64(f + 4, off);
	ret = host_file_pwrite(&bs->file, 60, f, sizeof(f));
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret < 0)
		return error_set(ret, "%s: cannot update the header", bs->filename);
	s->snapshots_offset = off;
	if (old_size)
		return qcow2_free_now(bs, old_off, old_size);
	return 0;
}

static int check_writable(struct block_device *bs)
{
	if (qcow2_state(bs)->read_only)
		return error_set(-EROFS, "%s: image is read-only", bs->filename);
	return 0;
}

/* Wait until no data I/O is in flight, then return freed clusters to the allocator. */
static int settle_frees(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	int ret = qcow2_metadata_flush(bs);

	while (ret == 0 && s->io_inflight)
		pthread_cond_wait(&s->cond, &s->lock);
	if (ret == 0)
		ret = qcow2_apply_pending_frees(bs);
	return ret;
}

int qcow2_snapshot_create(struct block_device *bs, const char *name)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct qcow2_snapshot *all = NULL, *sn;
	struct timespec now;
	uint64_t l1_off = 0, next_id = 1;
	int ret = check_writable(bs);

	if (ret == 0)
		ret = qcow2_data_file_refuse(bs, "internal snapshots");
	if (ret < 0)
		return ret;
	if (!*name || strlen(name) > 255)
		return error_set(-EINVAL, "%s: invalid snapshot name", bs->filename);
	pthread_mutex_lock(&s->lock);
	if (snapshot_find(s, name)) {
		ret = error_set(-EEXIST, "%s: snapshot '%s' already exists", bs->filename, name);
		goto out;
	}
	if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
		ret = error_set(-ENOSPC, "%s: too many snapshots", bs->filename);
		goto out;
	}
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		uint64_t id = strtoull(s->snapshots[i].id, NULL, 10);
		if (id >= next_id)
			next_id = id + 1;
	}
	all = calloc(s->nb_snapshots + 1, sizeof(*all));
	if (!all) {
		ret = -ENOMEM;
		goto out;
	}
	if (s->nb_snapshots)
		memcpy(all, s->snapshots, s->nb_snapshots * sizeof(*all));
	sn = &all[s->nb_snapshots];
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)next_id);
	sn->id = strdup(idbuf);
	sn->name = strdup(name);
	if (!sn->id || !sn->name) {
		ret = -ENOMEM;
		goto fail;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	sn->date_sec = (uint32_t)now.tv_sec;
	sn->date_nsec = (uint32_t)now.tv_nsec;
	sn->disk_size = bs->size;
	sn->has_disk_size = true;
	sn->l1_size = s->l1_size;

	/* References first (durable before anything points at them), then the copied L1. */
	ret = qcow2_metadata_flush(bs);
	if (ret == 0)
		ret = l1_refs(bs, s->l1, s->l1_size, 1);
	if (ret == 0 && s->l1_size)
		ret = qcow2_alloc_clusters(
		    bs, ((uint64_t)s->l1_size * 8 + s->cluster_size - 1) >> s->cluster_bits,
		    &l1_off);
	if (ret == 0)
		ret = qcow2_fix_copied_flags(bs);
	if (ret == 0)
		ret = qcow2_metadata_flush(bs);
	if (ret == 0 && s->l1_size)
		ret = write_l1(bs, l1_off, s->l1, s->l1_size);
	sn->l1_table_offset = l1_off;
	if (ret == 0)
		ret = table_write(bs, all, s->nb_snapshots + 1);
	if (ret < 0)
		goto fail;
	free(s->snapshots);
	s->snapshots = all;
	s->nb_snapshots++;
	goto out;
fail:
	free(sn->id);
	free(sn->name);
	free(all);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The start of apply and delete: the image writable, s->lock taken (held on success only) and
 * the snapshot found by ID or name. */
static int snapshot_begin(struct block_device *bs, const char *name_or_id,
			  struct qcow2_snapshot **sn)
{
	struct qcow2_state *s = qcow2_state(bs);
	int ret = check_writable(bs);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->lock);
	*sn = snapshot_find(s, name_or_id);
	if (*sn)
		return 0;
	pthread_mutex_unlock(&s->lock);
	return error_set(-ENOENT, "%s: no snapshot '%s'", bs->filename, name_or_id);
}

int qcow2_snapshot_apply(struct block_device *bs, const char *name_or_id)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct qcow2_snapshot *sn;
	uint64_t *l1 = NULL, *old = NULL;
	int ret = snapshot_begin(bs, name_or_id, &sn);

	if (ret < 0)
		return ret;
	if ((sn->has_disk_size && sn->disk_size != bs->size) || sn->l1_size > s->l1_size) {
		ret = error_set(-ENOTSUP, "%s: snapshot '%s' has another disk size", bs->filename,
				name_or_id);
		goto out;
	}
	ret = read_l1(bs, sn->l1_table_offset, sn->l1_size, &l1);
	if (ret < 0)
		goto out;
	old = malloc((size_t)s->l1_size * 8 + 8);
	if (!old) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(old, s->l1, (size_t)s->l1_size * 8);
	ret = qcow2_metadata_flush(bs);
	if (ret == 0)
		ret = l1_refs(bs, l1, sn->l1_size, 1);
	if (ret == 0)
		ret = qcow2_metadata_flush(bs);
	if (ret < 0)
		goto out;
	/* Switch the active L1 to the snapshot's content; then drop the old references. */
	memset(s->l1, 0, (size_t)s->l1_size * 8);
	for (uint32_t i = 0; i < sn->l1_size; i++)
		s->l1[i] = l1[i] & ~QCOW2_OFLAG_COPIED;
	ret = write_l1(bs, s->l1_table_offset, s->l1, s->l1_size);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret == 0)
		ret = l1_refs(bs, old, s->l1_size, -1);
	if (ret == 0)
		ret = settle_frees(bs);
	if (ret == 0)
		ret = qcow2_fix_copied_flags(bs);
	if (ret == 0)
		ret = qcow2_metadata_flush(bs);
out:
	free(l1);
	free(old);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_snapshot_delete(struct block_device *bs, const char *name_or_id)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct qcow2_snapshot *sn, *rest = NULL;
	uint64_t *l1 = NULL;
	int ret = snapshot_begin(bs, name_or_id, &sn);

	if (ret < 0)
		return ret;
	uint32_t idx = (uint32_t)(sn - s->snapshots), n = s->nb_snapshots - 1;
	struct qcow2_snapshot gone = *sn;
	ret = read_l1(bs, gone.l1_table_offset, gone.l1_size, &l1);
	if (ret < 0)
		goto out;
	rest = calloc(n ? n : 1, sizeof(*rest));
	if (!rest) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(rest, s->snapshots, idx * sizeof(*rest));
	memcpy(rest + idx, s->snapshots + idx + 1, (n - idx) * sizeof(*rest));
	/* The table stops naming it first; only then are its clusters released. */
	ret = table_write(bs, rest, n);
	if (ret < 0)
		goto out;
	free(s->snapshots);
	s->snapshots = rest;
	s->nb_snapshots = n;
	rest = NULL;
	if (!n)
		s->snapshots_offset = 0;
	ret = l1_refs(bs, l1, gone.l1_size, -1);
	if (ret == 0 && gone.l1_size)
		ret = qcow2_free_deferred(bs, gone.l1_table_offset, (uint64_t)gone.l1_size * 8);
	if (ret == 0)
		ret = settle_frees(bs);
	if (ret == 0)
		ret = qcow2_fix_copied_flags(bs);
	if (ret == 0)
		ret = qcow2_metadata_flush(bs);
	free(gone.id);
	free(gone.name);
out:
	free(rest);
	free(l1);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- reading a snapshot (convert -l) ---- */

/* By ID and name when both are given, else by the one given (qemu's rule). */
static struct qcow2_snapshot *snapshot_find_exact(struct qcow2_state *s, const char *id,
						  const char *name)
{
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if ((!id || !strcmp(s->snapshots[i].id, id)) &&
		    (!name || !strcmp(s->snapshots[i].name, name)))
			return &s->snapshots[i];
	return NULL;
}

int qcow2_snapshot_load_tmp(struct block_device *bs, const char *id, const char *name)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct qcow2_snapshot *sn;
	uint64_t *l1 = NULL, file_size;
	int ret;

	if (!s->read_only)
		return error_set(-EINVAL, "%s: a snapshot is read only from a read-only image",
				 bs->filename);
	pthread_mutex_lock(&s->lock);
	sn = snapshot_find_exact(s, id, name);
	if (!sn) {
		if (id && name)
			ret = error_set(-ENOENT, "%s: no snapshot with ID '%s' and name '%s'",
					bs->filename, id, name);
		else if (id)
			ret = error_set(-ENOENT, "%s: no snapshot with ID '%s'", bs->filename, id);
		else
			ret = error_set(-ENOENT, "%s: no snapshot named '%s'", bs->filename, name);
		goto out;
	}
	ret = host_file_size(&bs->file, &file_size);
	if (ret == 0)
		ret = read_l1(bs, sn->l1_table_offset, sn->l1_size, &l1);
	if (ret < 0)
		goto out;
	/* The snapshot's L1 is trusted no more than the active one was at open. */
	for (uint32_t i = 0; i < sn->l1_size; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
		if ((off & (s->cluster_size - 1)) || (off && off >= file_size)) {
			ret = error_set(-EINVAL,
					"%s: snapshot '%s': L1 entry %u: L2 table at %#llx invalid",
					bs->filename, sn->name, i, (unsigned long long)off);
			goto out;
		}
	}
	/* Read-only from here on: the header is never written, so the active L1 can simply be
	 * replaced in memory. The virtual size stays the image's, as in qemu-img: clusters past the
	 * snapshot's L1 read as unallocated. */
	free(s->l1);
	s->l1 = l1;
	l1 = NULL;
	s->l1_size = sn->l1_size;
	s->l1_table_offset = sn->l1_table_offset;
out:
	free(l1);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
