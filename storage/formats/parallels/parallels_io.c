/* Parallels data I/O through the BAT.
 *
 * BAT entries are read without a lock (aligned 32-bit loads) and set only under s->lock, after
 * the cluster they name holds its data: a new cluster goes at the end of the file (grown sparse,
 * so unwritten parts read as zeroes), then the BAT entry is written. A crash between the two
 * leaks the cluster; it never exposes a cluster that is not there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/parallels/parallels.h"

static int prl_io_error(struct block_device *bs, const char *what, uint64_t off, int ret)
{
	return error_set(ret, "%s: %s at offset %llu failed: %s", bs->filename, what,
			 (unsigned long long)off, strerror(-ret));
}

/* Host offset of virtual byte `offset`, 0 when its cluster is not allocated; *run is how far the
 * same cluster goes, bounded by len. */
static uint64_t prl_map(struct prl_state *s, uint64_t offset, uint64_t len, uint64_t *run)
{
	uint64_t idx = offset / s->cluster_size, in = offset % s->cluster_size;
	uint32_t e = __atomic_load_n(&s->bat[idx], __ATOMIC_ACQUIRE);

	*run = s->cluster_size - in < len ? s->cluster_size - in : len;
	return e ? (uint64_t)e * s->off_multiplier * PRL_SECTOR + in : 0;
}

static int prl_map_run(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
		       struct block_map *m)
{
	(void)opaque;
	m->host = prl_map(bs->state, offset, len, &m->len);
	m->kind = m->host ? BLOCK_MAP_HOST : BLOCK_MAP_ZERO;
	return 0;
}

/* Called with s->lock held: a new cluster at the end of the file. */
static int prl_allocate(struct block_device *bs, uint64_t *host)
{
	struct prl_state *s = bs->state;
	uint64_t unit = (uint64_t)s->off_multiplier * PRL_SECTOR, pos = s->data_end, fsize;
	int ret;

	if (pos / unit >= UINT32_MAX)
		return error_set(-ENOSPC, "%s: file too large for another Parallels cluster",
				 bs->filename);
	ret = host_file_size(&bs->file, &fsize);
	if (ret == 0 && fsize < pos + s->cluster_size)
		ret = host_file_truncate(&bs->file, pos + s->cluster_size);
	if (ret < 0)
		return prl_io_error(bs, "cluster allocation", pos, ret);
	*host = pos;
	s->data_end = pos + s->cluster_size;
	return 0;
}

static int prl_set_bat(struct block_device *bs, uint64_t idx, uint64_t host)
{
	struct prl_state *s = bs->state;
	uint32_t e = (uint32_t)(host / ((uint64_t)s->off_multiplier * PRL_SECTOR));
	uint8_t le[4];
	int ret;

	put_le32(le, e);
	ret = host_file_pwrite(&bs->file, PRL_HEADER_SIZE + idx * 4, le, 4);

	if (ret < 0)
		return prl_io_error(bs, "BAT update", PRL_HEADER_SIZE + idx * 4, ret);
	__atomic_store_n(&s->bat[idx], e, __ATOMIC_RELEASE);
	return 0;
}

/* A write to a cluster not allocated when mapped: data first, then the BAT entry, all under the
 * lock so that two writers of one cluster do not both allocate it. */
static int prl_write_alloc(struct block_device *bs, void *opaque, uint64_t offset,
			   const struct block_map *m, const struct iovec *part, int n)
{
	struct prl_state *s = bs->state;
	uint64_t idx = offset / s->cluster_size, in = offset % s->cluster_size, base = 0, run;
	int ret;

	(void)opaque;
	pthread_mutex_lock(&s->lock);
	uint64_t host = prl_map(s, offset, m->len, &run);
	if (host) {
		ret = host_file_pwritev(&bs->file, host, part, n);
	} else {
		ret = prl_allocate(bs, &base);
		if (ret == 0)
			ret = host_file_pwritev(&bs->file, base + in, part, n);
		if (ret == 0)
			ret = prl_set_bat(bs, idx, base);
	}
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		ret = error_set(ret, "%s: write at offset %llu failed: %s", bs->filename,
				(unsigned long long)offset, strerror(-ret));
	return ret;
}

static const struct block_map_ops prl_map_ops = {.map = prl_map_run, .io = prl_write_alloc};

int prl_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_preadv(bs, offset, iov, iovcnt, &prl_map_ops, NULL);
}

int prl_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_pwritev(bs, offset, iov, iovcnt, &prl_map_ops, NULL);
}

int prl_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		     int *status, uint64_t *map_offset)
{
	struct prl_state *s = bs->state;
	uint64_t run, host = prl_map(s, offset, len, &run), done;

	*map_offset = host;
	*status = host ? BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID
		       : BLOCK_STATUS_ZERO;
	for (done = run; done < len;) {
		uint64_t r, h = prl_map(s, offset + done, len - done, &r);
		if (!h != !host || (host && h != host + done))
			break;
		done += r;
	}
	*pnum = done;
	return 0;
}
