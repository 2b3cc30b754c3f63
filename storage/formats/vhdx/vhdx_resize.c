/* Growing a VHDX image (`img resize`), within the BAT region it already has.
 *
 * Order, so that a crash at any point leaves a consistent image: the bytes past the old end in a
 * present last block are zeroed (they become disk content); BAT sectors holding the new entries
 * are cleared through the log when they are not already zero; last, the virtual disk size item is
 * rewritten through the log. Shrinking, preallocation and growing past the BAT region (which would
 * move the BAT) are refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhdx/vhdx.h"

/* Zero, through the log, the on-disk BAT bytes [from, to) that are not zero already. */
static int vhdx_bat_clear(struct block_device *bs, struct vhdx_state *s, uint64_t from, uint64_t to)
{
	uint8_t sector[VHDX_LOG_SECTOR];

	for (uint64_t sec = from / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR; sec < to;
	     sec += VHDX_LOG_SECTOR) {
		int ret = host_file_pread(&bs->file, s->bat_offset + sec, sector, sizeof(sector));
		if (ret < 0)
			return error_set(ret, "%s: cannot read the BAT: %s", bs->filename,
					 strerror(-ret));
		uint64_t a = from > sec ? from - sec : 0;
		uint64_t b = to - sec < VHDX_LOG_SECTOR ? to - sec : VHDX_LOG_SECTOR;
		bool dirty = false;
		for (uint64_t i = a; i < b; i++)
			dirty |= sector[i] != 0;
		if (!dirty)
			continue;
		memset(sector + a, 0, b - a);
		ret = vhdx_log_write_sector(bs, s, s->bat_offset + sec, sector);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int vhdx_grow(struct block_device *bs, struct vhdx_state *s, uint64_t new_size)
{
	uint64_t blocks = (new_size + s->block_size - 1) / s->block_size;
	uint64_t entries = blocks + (blocks - 1) / s->chunk_ratio;
	uint8_t sector[VHDX_LOG_SECTOR];
	int ret;

	if (entries > s->bat_length / 8)
		return error_set(-ENOTSUP,
				 "%s: the BAT region (%llu bytes) has no room for %llu entries; "
				 "convert the image instead",
				 bs->filename, (unsigned long long)s->bat_length,
				 (unsigned long long)entries);
	if (s->size_item % VHDX_LOG_SECTOR > VHDX_LOG_SECTOR - 8)
		return error_set(-ENOTSUP, "%s: the disk size item straddles two sectors",
				 bs->filename);
	uint64_t *bat = realloc(s->bat, entries * 8 + 8);
	if (!bat)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	s->bat = bat;
	if (!s->session_open && (ret = vhdx_session_begin(bs, s)) < 0)
		return ret;
	uint64_t in = bs->size % s->block_size;
	uint64_t last = s->payload_blocks ? bat[vhdx_bat_index(s, s->payload_blocks - 1)] : 0;
	if (in && VHDX_BAT_STATE(last) == VHDX_BAT_FULLY_PRESENT) {
		ret = host_file_write_zeroes(&bs->file, VHDX_BAT_OFFSET(last) + in,
					     s->block_size - in);
		if (ret < 0)
			return error_set(ret, "%s: cannot clear the last block's tail: %s",
					 bs->filename, strerror(-ret));
	}
	ret = vhdx_bat_clear(bs, s, s->bat_entries * 8, entries * 8);
	if (ret < 0)
		return ret;
	memset(bat + s->bat_entries, 0, (entries - s->bat_entries) * 8);

	uint64_t sec = s->size_item / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
	ret = host_file_pread(&bs->file, sec, sector, sizeof(sector));
	if (ret < 0)
		return error_set(ret, "%s: cannot read the VHDX metadata: %s", bs->filename,
				 strerror(-ret));
	put_le64(sector + s->size_item % VHDX_LOG_SECTOR, new_size);
	ret = vhdx_log_write_sector(bs, s, sec, sector);
	if (ret < 0)
		return ret;
	s->payload_blocks = blocks;
	s->bat_entries = entries;
	bs->size = new_size;
	return 0;
}

int vhdx_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		  bool shrink_allowed)
{
	struct vhdx_state *s = bs->state;
	(void)shrink_allowed;

	if (new_size < bs->size)
		return error_set(-ENOTSUP, "%s: shrinking a VHDX image is not supported",
				 bs->filename);
	if (prealloc != BLOCK_PREALLOC_OFF)
		return error_set(-ENOTSUP, "%s: VHDX images cannot be preallocated on resize",
				 bs->filename);
	if (new_size % s->logical_sector || new_size > VHDX_MAX_SIZE)
		return error_set(-EINVAL,
				 "%s: new size %llu is not a multiple of %u bytes up to 64 TiB",
				 bs->filename, (unsigned long long)new_size, s->logical_sector);
	if (new_size == bs->size)
		return 0;
	pthread_mutex_lock(&s->lock);
	int ret = vhdx_grow(bs, s, new_size);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
