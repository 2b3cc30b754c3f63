/* qcow2: guest reads and writes, flush, discard, write_zeroes, block_status.
 *
 * The mapping is looked up under the metadata lock; data is read and written outside it. A write
 * to a cluster not owned by the active L1 (unallocated, zero, compressed, shared with a snapshot)
 * allocates new host clusters, fills the uncovered head and tail from the old content (copy on
 * write), and only then points the L2 entry at them. The guest clusters being allocated are
 * recorded so that a second writer waits instead of allocating them again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/formats/qcow2/qcow2.h"

static bool alloc_busy(struct qcow2_state *s, uint64_t first, uint64_t last)
{
	for (int i = 0; i + 1 < s->alloc_n; i += 2)
		if (first <= s->alloc_inflight[i + 1] && s->alloc_inflight[i] <= last)
			return true;
	return false;
}

static int alloc_begin(struct qcow2_state *s, uint64_t first, uint64_t last)
{
	if (s->alloc_n + 2 > s->alloc_cap) {
		int cap = s->alloc_cap ? s->alloc_cap * 2 : 16;
		uint64_t *n = realloc(s->alloc_inflight, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->alloc_inflight = n;
		s->alloc_cap = cap;
	}
	s->alloc_inflight[s->alloc_n++] = first;
	s->alloc_inflight[s->alloc_n++] = last;
	return 0;
}

static void alloc_end(struct qcow2_state *s, uint64_t first)
{
	for (int i = 0; i + 1 < s->alloc_n; i += 2) {
		if (s->alloc_inflight[i] == first) {
			s->alloc_inflight[i] = s->alloc_inflight[s->alloc_n - 2];
			s->alloc_inflight[i + 1] = s->alloc_inflight[s->alloc_n - 1];
			s->alloc_n -= 2;
			break;
		}
	}
	pthread_cond_broadcast(&s->cond);
}

void qcow2_wait_allocation(struct qcow2_state *s, uint64_t cluster)
{
	while (alloc_busy(s, cluster, cluster))
		pthread_cond_wait(&s->cond, &s->lock);
}

static void io_end(struct qcow2_state *s)
{
	pthread_mutex_lock(&s->lock);
	s->io_inflight--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* How a run of cluster type `type` (L2 entry `entry`) at guest offset reads. */
static void qcow2_describe(struct qcow2_state *s, uint64_t offset, enum qcow2_ctype type,
			   uint64_t entry, struct block_map *m)
{
	switch (type) {
	case QCOW2_C_UNALLOCATED:
		m->kind = BLOCK_MAP_BACKING;
		break;
	case QCOW2_C_ZERO_PLAIN:
	case QCOW2_C_ZERO_ALLOC:
		m->kind = BLOCK_MAP_ZERO;
		break;
	case QCOW2_C_NORMAL:
		m->kind = BLOCK_MAP_HOST;
		m->host = (entry & QCOW2_OFFSET_MASK) + (offset & (s->cluster_size - 1));
		if (s->has_data_file) {
			m->file = &s->data_file;
			m->name = s->data_file_path;
		}
		break;
	case QCOW2_C_COMPRESSED:
		m->kind = BLOCK_MAP_DRIVER; /* qcow2_read_compressed_run */
		m->host = entry;
		break;
	}
}

/* A read's map: the L2 lookup under the lock; the run is counted in flight (io_inflight) until
 * qcow2_read_end, so that the clusters it names are not reused under it. */
static int qcow2_read_map(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			  struct block_map *m)
{
	struct qcow2_state *s = qcow2_state(bs);
	enum qcow2_ctype type;
	uint64_t entry;
	int ret;

	(void)opaque;
	pthread_mutex_lock(&s->lock);
	ret = qcow2_map(bs, offset, len, &type, &entry, &m->len);
	if (ret == 0)
		s->io_inflight++;
	pthread_mutex_unlock(&s->lock);
	if (ret == 0)
		qcow2_describe(s, offset, type, entry, m);
	return ret;
}

static int qcow2_read_compressed_run(struct block_device *bs, void *opaque, uint64_t offset,
				     const struct block_map *m, const struct iovec *part, int n)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint8_t *buf = malloc(s->cluster_size);
	int ret;

	(void)opaque;
	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = qcow2_read_compressed(bs, m->host, buf);
	if (ret == 0)
		iov_from_buf(part, n, 0, buf + (offset & (s->cluster_size - 1)), m->len);
	free(buf);
	return ret;
}

static void qcow2_read_end(struct block_device *bs, void *opaque, const struct block_map *m)
{
	(void)opaque;
	(void)m;
	io_end(qcow2_state(bs));
}

/* cow_fill's map: the one run it has already looked up (opaque). */
static int qcow2_known_map(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			   struct block_map *m)
{
	(void)bs;
	(void)offset;
	*m = *(const struct block_map *)opaque;
	m->len = len;
	return 0;
}

static const struct block_map_ops qcow2_known_ops = {
    .map = qcow2_known_map,
    .io = qcow2_read_compressed_run,
};

static const struct block_map_ops qcow2_read_ops = {
    .map = qcow2_read_map,
    .io = qcow2_read_compressed_run,
    .end = qcow2_read_end,
};

int qcow2_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_preadv(bs, offset, iov, iovcnt, &qcow2_read_ops, NULL);
}

/* The io_uring engine's map: reads of allocated data and overwrites of clusters this image owns
 * (COPIED; block_aio leaves overwrites to its pool now, like raw writes) are one run of the image
 * file; the run counts as in flight (io_inflight) until
 * qcow2_aio_map_end, so that its clusters are not freed and reused under it, exactly as for the
 * synchronous path.  Anything else (allocation, copy on write, zero or compressed clusters,
 * backing reads, subclusters, an external data file) is 1: the driver's own path.  The hold ends
 * when block_aio reaps the completion, so whatever waits for io_inflight to reach 0 (snapshot
 * operations) must not run on the reaping thread while such requests are pending: drain first. */
/* Whether looking up the guest offset needs no I/O: no L2 table (unallocated) or a cached one.
 * The io_uring engine submits from the VM's event loop, which must not wait for a table to load:
 * a request whose table is not cached goes to the pool (1), which loads it. Lock held. */
static bool l2_cached(struct qcow2_state *s, uint64_t offset)
{
	uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
	uint64_t l2_off = l1i < s->l1_size ? s->l1[l1i] & QCOW2_OFFSET_MASK : 0;

	return !l2_off || qcow2_cache_has(&s->l2_cache, l2_off);
}

int qcow2_aio_map(struct block_device *bs, uint64_t offset, uint64_t len, bool write,
		  uint64_t *host)
{
	struct qcow2_state *s = qcow2_state(bs);
	enum qcow2_ctype type;
	uint64_t entry, bytes;
	int ret;

	if (s->has_data_file || s->extended_l2 || (write && s->read_only))
		return 1;
	pthread_mutex_lock(&s->lock);
	if (!l2_cached(s, offset) || (write && alloc_busy(s, offset >> s->cluster_bits,
							  (offset + len - 1) >> s->cluster_bits))) {
		pthread_mutex_unlock(&s->lock);
		return 1;
	}
	ret = qcow2_map(bs, offset, len, &type, &entry, &bytes);
	if (ret == 0 &&
	    (type != QCOW2_C_NORMAL || bytes < len || (write && !(entry & QCOW2_OFLAG_COPIED))))
		ret = 1;
	if (ret == 0) {
		s->io_inflight++;
		*host = (entry & QCOW2_OFFSET_MASK) + (offset & (s->cluster_size - 1));
	}
	pthread_mutex_unlock(&s->lock);
	return ret < 0 ? 1 : ret;
}

void qcow2_aio_map_end(struct block_device *bs)
{
	io_end(qcow2_state(bs));
}

/* The io_uring engine's allocating write of whole clusters that are unallocated or plain zero
 * (nothing old to copy, not even from a backing file): reserve contiguous host clusters (their
 * refcounts set, the L2 entries untouched, so reads still see the old content and a crash before
 * qcow2_aio_alloc_end leaks them at worst) and mark the guest clusters as being allocated, so
 * that other writers wait.  The engine writes the data, then qcow2_aio_alloc_end maps them.  The
 * refcount and L2 updates stay in the metadata caches and reach the file in one batch at the next
 * flush, refcounts first (qcow2_metadata_flush), so an L2 entry is never on disk before the
 * refcount of its cluster, nor set before its data was written.  No table is read here: a
 * request that would need one (L2 or refcount block not cached) goes to the pool (1). */
int qcow2_aio_alloc(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *host)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size, first, last, entry, bytes;
	enum qcow2_ctype type;
	int ret = 1;

	if (s->has_data_file || s->extended_l2 || s->read_only || !len ||
	    ((offset | len) & (cs - 1)))
		return 1;
	first = offset >> s->cluster_bits;
	last = (offset + len - 1) >> s->cluster_bits;
	pthread_mutex_lock(&s->lock);
	/* The submitting thread (the VM's event loop) reads no table: L2 and refcount blocks must
	 * be cached, else the pool does the whole write. */
	if (!l2_cached(s, offset) || alloc_busy(s, first, last) ||
	    !qcow2_alloc_cached(bs, last - first + 1))
		goto out;
	if (qcow2_map(bs, offset, len, &type, &entry, &bytes) < 0 || bytes < len ||
	    (type != QCOW2_C_UNALLOCATED && type != QCOW2_C_ZERO_PLAIN))
		goto out;
	if (alloc_begin(s, first, last) < 0)
		goto out;
	/* A failure here (no space, unreadable refcounts) is reported again by the pool's path. */
	if (qcow2_alloc_clusters(bs, last - first + 1, host) < 0) {
		alloc_end(s, first);
		goto out;
	}
	qcow2_file_grow(bs, *host + len);
	s->io_inflight++;
	ret = 0;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Whether mapping [offset, offset+len) needs no I/O: every L2 table of the range is this image's
 * own (no copy for a snapshot) and in the cache, and no old entry has a host cluster to free
 * (aio_alloc took only unallocated or plain zero clusters, and alloc_busy kept other writers
 * out, so this holds unless the image was changed under us).  Lock held. */
static bool alloc_end_cached(struct block_device *bs, uint64_t offset, uint64_t len)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t per_l2 = 1ull << (s->cluster_bits + s->l2_bits);

	for (uint64_t at = offset; at < offset + len; at = (at / per_l2 + 1) * per_l2) {
		uint64_t l1i = at / per_l2;
		if (l1i >= s->l1_size || !(s->l1[l1i] & QCOW2_OFLAG_COPIED) ||
		    !qcow2_cache_has(&s->l2_cache, s->l1[l1i] & QCOW2_OFFSET_MASK))
			return false;
	}
	for (uint64_t at = offset; at < offset + len; at += s->cluster_size) {
		uint64_t old;
		enum qcow2_ctype t;
		if (qcow2_l2_lookup(bs, at, &old) < 0)
			return false;
		t = qcow2_l2_type(s, old);
		if (t != QCOW2_C_UNALLOCATED && t != QCOW2_C_ZERO_PLAIN)
			return false;
	}
	return true;
}

/* The data of a qcow2_aio_alloc reservation was written (result 0): point the L2 entries at it.
 * Otherwise the clusters go back (freed once no I/O is in flight), and the range reads as before.
 * Without may_block, only when that needs no I/O (alloc_end_cached; a failed write's clusters
 * are freed through the refcount blocks, which may have to be read): else -EWOULDBLOCK. */
int qcow2_aio_alloc_end(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t host,
			int result, bool may_block)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size;
	int ret = result;

	pthread_mutex_lock(&s->lock);
	if (!may_block && (ret < 0 || !alloc_end_cached(bs, offset, len))) {
		pthread_mutex_unlock(&s->lock);
		return -EWOULDBLOCK;
	}
	s->io_inflight--;
	if (ret < 0) {
		qcow2_free_deferred(bs, host, len);
	} else {
		for (uint64_t i = 0; i < len / cs && ret == 0; i++) {
			uint64_t old;
			ret = qcow2_l2_lookup(bs, offset + i * cs, &old);
			if (ret == 0)
				ret = qcow2_l2_set(bs, offset + i * cs,
						   (host + i * cs) | QCOW2_OFLAG_COPIED);
			if (ret == 0)
				ret = qcow2_entry_free(bs, old);
		}
	}
	alloc_end(s, offset >> s->cluster_bits); /* wakes waiters, io_inflight's too */
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The old content of [start, start+len) of one guest cluster, for copy on write (lock not held). */
static int cow_fill(struct block_device *bs, uint64_t start, enum qcow2_ctype type, uint64_t entry,
		    uint8_t *buf, size_t len)
{
	struct iovec v = {.iov_base = buf, .iov_len = len};

	if (!len)
		return 0;
	if (type == QCOW2_C_UNALLOCATED && start >= bs->size) {
		memset(buf, 0, len);
		return 0;
	}
	if (type == QCOW2_C_UNALLOCATED && start + len > bs->size) {
		memset(buf, 0, len);
		v.iov_len = bs->size - start;
	}
	struct block_map m = {0};
	qcow2_describe(qcow2_state(bs), start, type, entry, &m);
	return block_map_preadv(bs, start, &v, 1, &qcow2_known_ops, &m);
}

/* Allocate host clusters for guest clusters [offset, offset+bytes) rounded out to clusters, all
 * of one type, write the guest data with COW head/tail, then map them. Called with the lock held
 * and the clusters registered in alloc_inflight; drops the lock around the data write. */
static int write_alloc(struct block_device *bs, uint64_t offset, const struct iovec *iov,
		       int iovcnt, uint64_t bytes, enum qcow2_ctype type, uint64_t entry)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size;
	uint64_t start = offset & ~(cs - 1), end = (offset + bytes + cs - 1) & ~(cs - 1);
	uint64_t n = (end - start) >> s->cluster_bits, host;
	size_t head = offset - start, tail = end - (offset + bytes);
	uint8_t *hbuf = NULL, *tbuf = NULL;
	struct iovec *v = NULL;
	int ret, vn = 0;

	/* An external data file holds the clusters at their guest offsets: nothing to allocate. */
	host = start;
	ret = s->has_data_file ? 0 : qcow2_alloc_clusters(bs, n, &host);
	if (ret < 0)
		return ret;
	if (!s->has_data_file)
		qcow2_file_grow(bs, host + n * cs);
	s->io_inflight++;
	pthread_mutex_unlock(&s->lock);

	v = malloc(sizeof(*v) * (size_t)(iovcnt + 2));
	hbuf = head ? malloc(head) : NULL;
	tbuf = tail ? malloc(tail) : NULL;
	if (!v || (head && !hbuf) || (tail && !tbuf)) {
		ret = -ENOMEM;
		goto relock;
	}
	/* Multi-cluster runs are only ever of a type whose old content is position independent
	 * (unallocated, zero) or a single cluster, so one entry describes both ends. */
	ret = cow_fill(bs, start, type, entry, hbuf, head);
	if (ret == 0 && tail) {
		uint64_t tail_entry = entry;
		if (type == QCOW2_C_NORMAL)
			tail_entry = entry + (n - 1) * cs;
		ret = cow_fill(bs, offset + bytes, type, tail_entry, tbuf, tail);
	}
	if (ret < 0)
		goto relock;
	if (head)
		v[vn++] = (struct iovec){.iov_base = hbuf, .iov_len = head};
	memcpy(v + vn, iov, sizeof(*iov) * (size_t)iovcnt);
	vn += iovcnt;
	if (tail)
		v[vn++] = (struct iovec){.iov_base = tbuf, .iov_len = tail};
	ret = host_file_pwritev(qcow2_data(bs), host, v, vn);
	if (ret < 0)
		ret = error_set(ret, "%s: write error at %#llx", qcow2_data_name(bs),
				(unsigned long long)host);
relock:
	free(v);
	free(hbuf);
	free(tbuf);
	pthread_mutex_lock(&s->lock);
	s->io_inflight--;
	pthread_cond_broadcast(&s->cond);
	if (ret < 0) {
		if (!s->has_data_file)
			qcow2_free_deferred(bs, host, n * cs);
		return ret;
	}
	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t old;
		ret = qcow2_l2_lookup(bs, start + i * cs, &old);
		if (ret == 0)
			ret =
			    qcow2_l2_set(bs, start + i * cs, (host + i * cs) | QCOW2_OFLAG_COPIED);
		if (ret == 0)
			ret = qcow2_entry_free(bs, old);
	}
	return ret;
}

/* Write one run starting at offset (at most `len` bytes); *done gets the bytes consumed. */
static int write_run(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
		     uint64_t len, struct iovec *part, uint64_t *done)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size, first = offset >> s->cluster_bits;
	enum qcow2_ctype type;
	uint64_t entry, bytes, rc;
	int ret, n;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (alloc_busy(s, first, first))
			pthread_cond_wait(&s->cond, &s->lock);
		ret = qcow2_map(bs, offset, len, &type, &entry, &bytes);
		if (ret < 0)
			goto out;
		if (type != QCOW2_C_NORMAL || (entry & QCOW2_OFLAG_COPIED))
			break;
		/* Not flagged as ours: shared with a snapshot unless its refcount says otherwise.
		 * (Data file clusters are never shared.) */
		rc = 1;
		ret = s->has_data_file
			  ? 0
			  : qcow2_refcount_get(bs, (entry & QCOW2_OFFSET_MASK) >> s->cluster_bits,
					       &rc);
		if (ret < 0)
			goto out;
		if (rc != 1)
			break;
		ret = qcow2_l2_set(bs, offset, entry | QCOW2_OFLAG_COPIED);
		if (ret < 0)
			goto out;
	}
	if (type == QCOW2_C_NORMAL && (entry & QCOW2_OFLAG_COPIED)) {
		uint64_t host = (entry & QCOW2_OFFSET_MASK) + (offset & (cs - 1));
		s->io_inflight++;
		pthread_mutex_unlock(&s->lock);
		n = iov_slice(iov, iovcnt, 0, bytes, part, iovcnt);
		ret = n < 0 ? n : host_file_pwritev(qcow2_data(bs), host, part, n);
		if (ret < 0)
			ret = error_set(ret, "%s: write error at %#llx", qcow2_data_name(bs),
					(unsigned long long)offset);
		io_end(s);
		*done = bytes;
		return ret;
	}
	/* Allocation: unallocated and zero runs may span clusters; others go one at a time. */
	if (type != QCOW2_C_UNALLOCATED && type != QCOW2_C_ZERO_PLAIN) {
		uint64_t to_end = cs - (offset & (cs - 1));
		if (bytes > to_end)
			bytes = to_end;
	}
	uint64_t last = (offset + bytes - 1) >> s->cluster_bits;
	/* Clusters of the run other than the first may be in flight elsewhere: stop before them. */
	for (uint64_t c = first + 1; c <= last; c++) {
		if (alloc_busy(s, c, c)) {
			bytes = (c << s->cluster_bits) - offset;
			last = c - 1;
			break;
		}
	}
	ret = alloc_begin(s, first, last);
	if (ret < 0)
		goto out;
	n = iov_slice(iov, iovcnt, 0, bytes, part, iovcnt);
	ret = n < 0 ? n : write_alloc(bs, offset, part, n, bytes, type, entry);
	alloc_end(s, first);
	*done = bytes;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	size_t total = iov_size(iov, iovcnt), pos = 0;
	struct iovec *rest = malloc(sizeof(*rest) * (size_t)(iovcnt > 0 ? iovcnt : 1));
	struct iovec *part = malloc(sizeof(*part) * (size_t)(iovcnt > 0 ? iovcnt : 1));
	int ret = 0;

	if (!rest || !part) {
		free(rest);
		free(part);
		return -ENOMEM;
	}
	if (qcow2_state(bs)->read_only)
		ret = error_set(-EROFS, "%s: image is read-only", bs->filename);
	while (ret == 0 && pos < total) {
		uint64_t done = 0;
		int n = iov_slice(iov, iovcnt, pos, total - pos, rest, iovcnt);
		if (n < 0) {
			ret = n;
			break;
		}
		ret = write_run(bs, offset + pos, rest, n, total - pos, part, &done);
		pos += done;
	}
	free(rest);
	free(part);
	return ret;
}

int qcow2_flush(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	int ret;

	if (s->read_only)
		return 0;
	/* Data in an external data file is durable before the tables that map it. */
	if (s->has_data_file && (ret = host_file_flush(&s->data_file)) < 0)
		return error_set(ret, "%s: flush failed", s->data_file_path);
	pthread_mutex_lock(&s->lock);
	/* Bound the deferred frees: wait for in-flight data I/O once they pile up. */
	while (s->pending_n > 8192 && s->io_inflight)
		pthread_cond_wait(&s->cond, &s->lock);
	ret = qcow2_metadata_flush(bs);
	pthread_mutex_unlock(&s->lock);
	/* Data needs no metadata lock: other requests go on while the host file syncs. */
	if (ret == 0) {
		ret = host_file_flush(&bs->file);
		if (ret < 0)
			ret = error_set(ret, "%s: flush failed", bs->filename);
	}
	return ret;
}

/* New L2 entry for a whole cluster being discarded or zeroed; -1 means "write zeroes as data". */
static int64_t zero_entry(struct block_device *bs, uint64_t old, bool unmap, bool zero)
{
	struct qcow2_state *s = qcow2_state(bs);
	enum qcow2_ctype t = qcow2_l2_type(s, old);

	if (s->version >= 3) {
		if (!zero && !bs->backing)
			return 0;
		if (!unmap && (t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC) &&
		    (old & QCOW2_OFLAG_COPIED))
			return (int64_t)((old & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COPIED)) |
					 QCOW2_OFLAG_ZERO);
		return (int64_t)QCOW2_OFLAG_ZERO;
	}
	/* Version 2 has no zero flag: deallocate when that reads as zeroes. */
	if (!bs->backing && (unmap || t == QCOW2_C_UNALLOCATED))
		return 0;
	if (!zero)
		return 0; /* discard: the backing content shows through again */
	return -1;
}

/* A raw data file must read as the disk itself: zero (or discard) whole clusters by zeroing them
 * in the data file, every cluster mapped where it lives. */
static int zero_raw_data_file(struct block_device *bs, uint64_t offset, uint64_t len)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size;
	int ret = 0;

	for (uint64_t off = offset; off < offset + len && ret == 0; off += cs) {
		uint64_t c = off >> s->cluster_bits, old, n = cs;
		if (off + n > bs->size)
			n = bs->size - off; /* the data file is exactly the disk */
		pthread_mutex_lock(&s->lock);
		while (alloc_busy(s, c, c))
			pthread_cond_wait(&s->cond, &s->lock);
		ret = qcow2_l2_lookup(bs, off, &old);
		if (ret == 0 && (ret = host_file_write_zeroes(&s->data_file, off, n)) < 0)
			ret = error_set(ret, "%s: cannot write zeroes at %#llx", s->data_file_path,
					(unsigned long long)off);
		if (ret == 0 && old != (off | QCOW2_OFLAG_COPIED))
			ret = qcow2_l2_set(bs, off, off | QCOW2_OFLAG_COPIED);
		pthread_mutex_unlock(&s->lock);
	}
	return ret;
}

/* Apply discard (zero=false) or write_zeroes (zero=true) to whole clusters [offset, offset+len). */
static int zero_clusters(struct block_device *bs, uint64_t offset, uint64_t len, bool unmap,
			 bool zero)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size;
	int ret = 0;

	if (s->data_file_raw)
		return zero_raw_data_file(bs, offset, len);
	for (uint64_t off = offset; off < offset + len && ret == 0; off += cs) {
		uint64_t c = off >> s->cluster_bits, old;
		pthread_mutex_lock(&s->lock);
		while (alloc_busy(s, c, c))
			pthread_cond_wait(&s->cond, &s->lock);
		ret = qcow2_l2_lookup(bs, off, &old);
		int64_t ne = ret == 0 ? zero_entry(bs, old, unmap, zero) : 0;
		if (ret == 0 && ne >= 0 && (uint64_t)ne != old) {
			ret = qcow2_l2_set(bs, off, (uint64_t)ne);
			if (ret == 0 && !((uint64_t)ne & QCOW2_OFFSET_MASK))
				ret = qcow2_entry_free(bs, old);
		}
		pthread_mutex_unlock(&s->lock);
		if (ret == 0 && ne < 0) {
			uint8_t *z = calloc(1, cs);
			if (!z)
				return -ENOMEM;
			struct iovec v = {.iov_base = z, .iov_len = cs};
			ret = qcow2_pwritev(bs, off, &v, 1);
			free(z);
		}
	}
	return ret;
}

static int write_zero_bytes(struct block_device *bs, uint64_t offset, uint64_t len)
{
	uint8_t *z;
	int ret;

	if (!len)
		return 0;
	z = calloc(1, len);
	if (!z)
		return -ENOMEM;
	struct iovec v = {.iov_base = z, .iov_len = len};
	ret = qcow2_pwritev(bs, offset, &v, 1);
	free(z);
	return ret;
}

/* Whole clusters of the range; the last partial cluster counts as whole when it ends the disk. */
static void cluster_span(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *a,
			 uint64_t *b)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size, end = offset + len;

	*a = (offset + cs - 1) & ~(cs - 1);
	*b = end == bs->size ? ((end + cs - 1) & ~(cs - 1)) : (end & ~(cs - 1));
	if (*b < *a)
		*b = *a;
}

int qcow2_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags)
{
	uint64_t a, b;
	int ret;

	if (qcow2_state(bs)->read_only)
		return error_set(-EROFS, "%s: image is read-only", bs->filename);
	cluster_span(bs, offset, len, &a, &b);
	if (a >= b || a >= offset + len)
		return write_zero_bytes(bs, offset, len);
	ret = write_zero_bytes(bs, offset, a - offset);
	if (ret == 0)
		ret = zero_clusters(bs, a, b - a, flags & BLOCK_ZERO_MAY_UNMAP, true);
	if (ret == 0 && b < offset + len)
		ret = write_zero_bytes(bs, b, offset + len - b);
	return ret;
}

int qcow2_discard(struct block_device *bs, uint64_t offset, uint64_t len)
{
	uint64_t a, b;

	if (qcow2_state(bs)->read_only)
		return error_set(-EROFS, "%s: image is read-only", bs->filename);
	cluster_span(bs, offset, len, &a, &b);
	if (a >= b)
		return 0; /* discard is advisory: partial clusters are left alone */
	return zero_clusters(bs, a, b - a, true, false);
}

int qcow2_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		       int *status, uint64_t *map_offset)
{
	struct qcow2_state *s = qcow2_state(bs);
	enum qcow2_ctype type;
	uint64_t entry, bytes;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = qcow2_map(bs, offset, len, &type, &entry, &bytes);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return ret;
	*pnum = bytes;
	switch (type) {
	case QCOW2_C_UNALLOCATED:
		*status = bs->backing ? 0 : BLOCK_STATUS_ZERO;
		break;
	case QCOW2_C_ZERO_PLAIN:
		*status = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
		break;
	case QCOW2_C_ZERO_ALLOC:
		*status = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID;
		*map_offset = (entry & QCOW2_OFFSET_MASK) + (offset & (s->cluster_size - 1));
		break;
	case QCOW2_C_NORMAL:
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID;
		*map_offset = (entry & QCOW2_OFFSET_MASK) + (offset & (s->cluster_size - 1));
		break;
	case QCOW2_C_COMPRESSED:
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_COMPRESSED;
		break;
	}
	return 0;
}
