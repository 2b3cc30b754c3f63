/* VHDX data I/O through the BAT.
 *
 * BAT entries are read without a lock (aligned 64-bit loads) and set only under s->lock. A block
 * is allocated at the 1 MiB-aligned end of the file (grown sparse, so its unwritten parts read as
 * zeroes, which is what a not-present or zero block reads as), its data written, then its BAT
 * sector goes through the log (storage/formats/vhdx/vhdx_log.c). A crash before the log entry is
 * durable leaks the block; after it, the entry replays. The first write of a session renews the
 * write GUIDs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhdx/vhdx.h"

static int vhdx_io_error(struct block_device *bs, const char *what, uint64_t off, int ret)
{
	return error_set(ret, "%s: %s at offset %llu failed: %s", bs->filename, what,
			 (unsigned long long)off, strerror(-ret));
}

/* Host offset of virtual byte `offset` (0: not present, reads as zeroes); *run is how far the
 * same block goes, bounded by len. */
static uint64_t vhdx_map(struct vhdx_state *s, uint64_t offset, uint64_t len, uint64_t *run)
{
	uint64_t b = offset / s->block_size, in = offset % s->block_size;
	uint64_t e = __atomic_load_n(&s->bat[vhdx_bat_index(s, b)], __ATOMIC_ACQUIRE);

	*run = s->block_size - in < len ? s->block_size - in : len;
	return VHDX_BAT_STATE(e) == VHDX_BAT_FULLY_PRESENT ? VHDX_BAT_OFFSET(e) + in : 0;
}

static int vhdx_map_run(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
			struct block_map *m)
{
	(void)opaque;
	m->host = vhdx_map(bs->state, offset, len, &m->len);
	m->kind = m->host ? BLOCK_MAP_HOST : BLOCK_MAP_ZERO;
	return 0;
}

/* Called with s->lock held, after the block's data is in place at `host`: record it in the BAT
 * sector on disk through the log, then in memory. */
static int vhdx_bat_set(struct block_device *bs, uint64_t block, uint64_t host)
{
	struct vhdx_state *s = bs->state;
	uint64_t idx = vhdx_bat_index(s, block), byte = idx * 8;
	uint64_t sector_off = s->bat_offset + byte / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
	uint8_t sector[VHDX_LOG_SECTOR];
	uint64_t e = host | VHDX_BAT_FULLY_PRESENT;
	int ret;

	ret = host_file_pread(&bs->file, sector_off, sector, sizeof(sector));
	if (ret < 0)
		return vhdx_io_error(bs, "BAT read", sector_off, ret);
	put_le64(sector + byte % VHDX_LOG_SECTOR, e);
	ret = vhdx_log_write_sector(bs, s, sector_off, sector);
	if (ret < 0)
		return ret;
	__atomic_store_n(&s->bat[idx], e, __ATOMIC_RELEASE);
	return 0;
}

static int vhdx_allocate_write(struct block_device *bs, uint64_t block, uint64_t in,
			       const struct iovec *p, int n)
{
	struct vhdx_state *s = bs->state;
	uint64_t pos = s->file_end, fsize;
	int ret;

	if (pos > VHDX_BAT_OFFSET(~0ull) - s->block_size)
		return error_set(-ENOSPC, "%s: file too large for another VHDX block",
				 bs->filename);
	ret = host_file_size(&bs->file, &fsize);
	if (ret == 0 && fsize < pos + s->block_size)
		ret = host_file_truncate(&bs->file, pos + s->block_size);
	if (ret == 0)
		ret = host_file_pwritev(&bs->file, pos + in, p, n);
	if (ret < 0)
		return vhdx_io_error(bs, "block allocation", pos, ret);
	s->file_end = pos + s->block_size; /* taken even if the BAT update fails: leaked */
	return vhdx_bat_set(bs, block, pos);
}

/* A write to a block not present when mapped: allocate it under the lock, unless another writer
 * just did. */
static int vhdx_write_alloc(struct block_device *bs, void *opaque, uint64_t offset,
			    const struct block_map *m, const struct iovec *part, int n)
{
	struct vhdx_state *s = bs->state;
	uint64_t run, host;
	int ret = 0;

	(void)opaque;
	pthread_mutex_lock(&s->lock);
	host = vhdx_map(s, offset, m->len, &run);
	if (!host)
		ret = vhdx_allocate_write(bs, offset / s->block_size, offset % s->block_size, part,
					  n);
	pthread_mutex_unlock(&s->lock);
	if (host && ret == 0) {
		ret = host_file_pwritev(&bs->file, host, part, n);
		if (ret < 0)
			ret = vhdx_io_error(bs, "write", host, ret);
	}
	return ret;
}

static const struct block_map_ops vhdx_map_ops = {.map = vhdx_map_run, .io = vhdx_write_alloc};

int vhdx_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return block_map_preadv(bs, offset, iov, iovcnt, &vhdx_map_ops, NULL);
}

int vhdx_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	struct vhdx_state *s = bs->state;
	int ret = 0;

	/* The write GUIDs change before the first byte of the disk does. */
	if (!__atomic_load_n(&s->session_open, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&s->lock);
		if (!s->session_open)
			ret = vhdx_session_begin(bs, s);
		pthread_mutex_unlock(&s->lock);
	}
	if (ret < 0)
		return ret;
	return block_map_pwritev(bs, offset, iov, iovcnt, &vhdx_map_ops, NULL);
}
