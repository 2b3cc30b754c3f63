/* Growing a Parallels image (`img resize`): the BAT sits between the header and the first cluster,
 * so a disk can grow while its longer BAT still fits there (QEMU's images leave a whole cluster).
 * Shrinking and preallocation are refused. The new BAT entries are zeroed on disk before the
 * header names them, so a crash in between leaves the old, consistent size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/parallels/parallels.h"

int prl_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		 bool shrink_allowed)
{
	struct prl_state *s = bs->state;
	(void)shrink_allowed;

	if (new_size < bs->size)
		return error_set(-ENOTSUP, "%s: shrinking a Parallels image is not supported",
				 bs->filename);
	if (prealloc != BLOCK_PREALLOC_OFF)
		return error_set(-ENOTSUP, "%s: Parallels images cannot be preallocated",
				 bs->filename);
	if (new_size % PRL_SECTOR)
		return error_set(-EINVAL, "%s: new size %llu is not a multiple of 512",
				 bs->filename, (unsigned long long)new_size);
	uint64_t entries = (new_size + s->cluster_size - 1) / s->cluster_size;
	if (entries > PRL_MAX_ENTRIES || PRL_HEADER_SIZE + entries * 4 > s->data_start)
		return error_set(-ENOTSUP,
				 "%s: no room for a BAT of %llu entries before the data; convert "
				 "the image instead",
				 bs->filename, (unsigned long long)entries);
	if (memcmp(s->header, PRL_MAGIC_EXT, 16) && new_size / PRL_SECTOR > UINT32_MAX)
		return error_set(-EFBIG, "%s: too large for the old Parallels format",
				 bs->filename);

	pthread_mutex_lock(&s->lock);
	int ret = 0;
	uint32_t *bat = s->bat;
	if (entries > s->bat_entries) {
		bat = realloc(s->bat, entries * 4 + 4);
		if (!bat) {
			pthread_mutex_unlock(&s->lock);
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
		}
		s->bat = bat;
		memset(bat + s->bat_entries, 0, (entries - s->bat_entries) * 4);
		ret = host_file_write_zeroes(&bs->file, PRL_HEADER_SIZE + s->bat_entries * 4ull,
					     (entries - s->bat_entries) * 4);
		if (ret == 0)
			ret = host_file_flush(&bs->file);
	}
	if (ret == 0) {
		put_le32(s->header + PRL_H_BAT_ENTRIES, (uint32_t)entries);
		put_le32(s->header + PRL_H_CYLS, (uint32_t)(new_size / PRL_SECTOR / 16 / 32));
		put_le64(s->header + PRL_H_SECTORS, new_size / PRL_SECTOR);
		ret = host_file_pwrite(&bs->file, 0, s->header, PRL_HEADER_SIZE);
		if (ret == 0)
			ret = host_file_flush(&bs->file);
	}
	if (ret == 0) {
		s->bat_entries = (uint32_t)entries;
		bs->size = new_size;
	}
	pthread_mutex_unlock(&s->lock);
	return ret < 0 ? error_set(ret, "%s: cannot grow the Parallels image: %s", bs->filename,
				   strerror(-ret))
		       : 0;
}
