/* Growing a VDI image (`img resize`): more blocks in the map, a larger disk size; a fixed image
 * also allocates its new blocks.
 *
 * When the map outgrows the room before the data area (qemu-img leaves at most 511 spare bytes;
 * VirtualBox and minivmm align the data to 1 MiB), the data area moves up by whole blocks, as
 * VirtualBox does: the blocks in the way are copied to the end of the file, then the map is
 * rewritten in the new numbering and the header points at the new data offset. That last step is
 * two writes and is not atomic against a crash; the copies are flushed first, and resizing is an
 * offline operation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

/* Grows the map in memory to new_blocks entries. */
static int vdi_grow_arrays(struct vdi_state *s, uint32_t new_blocks)
{
	uint32_t *b = realloc(s->bmap, sizeof(uint32_t) * new_blocks);
	uint32_t *o;

	if (!b)
		return -ENOMEM;
	s->bmap = b;
	o = realloc(s->owner, sizeof(uint32_t) * new_blocks);
	if (!o)
		return -ENOMEM;
	s->owner = o;
	for (uint32_t i = s->blocks; i < new_blocks; i++)
		s->bmap[i] = s->owner[i] = VDI_BLOCK_FREE;
	return 0;
}

/* Moves the data area up by enough whole blocks for a map of new_blocks entries. Called with
 * io_lock exclusive and meta_lock, after vdi_grow_arrays(). */
static int vdi_move_data_area(struct block_device *bs, uint32_t new_blocks)
{
	struct vdi_state *s = bs->state;
	uint64_t bb = vdi_block_bytes(s);
	uint64_t need = s->offset_bmap + (uint64_t)new_blocks * 4;
	uint64_t m64 = (need - s->offset_data + bb - 1) / bb;
	uint64_t new_data = s->offset_data + m64 * bb;
	uint32_t m, first_dest, moved;
	int ret;

	if (new_data > UINT32_MAX)
		return error_set(-EFBIG, "%s: the VDI block map would not fit below 4 GiB",
				 bs->filename);
	m = (uint32_t)m64;
	moved = s->allocated < m ? s->allocated : m;
	/* Old slots [0, moved) go to old slots first_dest + j: new indices allocated-moved+j. */
	first_dest = s->allocated > m ? s->allocated : m;
	for (uint32_t j = 0; j < moved; j++) {
		ret = vdi_copy_data(bs, j, first_dest + j);
		if (ret < 0)
			return ret;
	}
	ret = host_file_flush(&bs->file);
	if (ret < 0)
		return error_set(ret, "%s: cannot flush the image", bs->filename);

	for (uint32_t i = 0; i < s->blocks; i++) {
		uint32_t e = s->bmap[i];

		if (VDI_IS_ALLOCATED(e))
			s->bmap[i] = (e < m ? first_dest + e : e) - m;
	}
	s->offset_data = new_data;
	for (uint32_t i = 0; i < new_blocks; i++)
		s->owner[i] = VDI_BLOCK_FREE;
	for (uint32_t i = 0; i < s->blocks; i++)
		if (VDI_IS_ALLOCATED(s->bmap[i]))
			s->owner[s->bmap[i]] = i;
	put_le32(s->head + VDI_OFF_DATA, (uint32_t)new_data);
	return 0;
}

int vdi_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		 bool shrink_allowed)
{
	struct vdi_state *s = bs->state;
	bool fixed = s->type == VDI_TYPE_FIXED;
	uint64_t nb64 = (new_size + s->block_size - 1) / s->block_size;
	uint32_t old_blocks = s->blocks, new_blocks;
	bool moved = false;
	int ret = 0;

	(void)shrink_allowed;
	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	if (new_size % VDI_SECTOR)
		return error_set(-EINVAL, "%s: VDI size must be a multiple of 512 bytes",
				 bs->filename);
	if (new_size < bs->size)
		return error_set(-ENOTSUP, "%s: shrinking a VDI is not supported", bs->filename);
	if (nb64 > VDI_BLOCKS_MAX)
		return error_set(-EFBIG, "%s: %" PRIu64 " bytes is too large for a VDI",
				 bs->filename, new_size);
	new_blocks = nb64 > old_blocks ? (uint32_t)nb64 : old_blocks;

	pthread_rwlock_wrlock(&s->io_lock);
	pthread_mutex_lock(&s->meta_lock);
	if (new_blocks > old_blocks && vdi_grow_arrays(s, new_blocks) < 0)
		ret = error_set(-ENOMEM, "%s: out of memory", bs->filename);
	if (ret == 0 && s->offset_bmap + (uint64_t)new_blocks * 4 > s->offset_data) {
		ret = vdi_move_data_area(bs, new_blocks);
		moved = ret == 0;
	}
	/* A fixed image allocates its new blocks; the map is written before the header makes
	 * the new entries count. */
	for (uint32_t i = old_blocks; ret == 0 && fixed && i < new_blocks; i++) {
		s->bmap[i] = s->allocated;
		s->owner[s->allocated++] = i;
	}
	if (ret == 0 && (new_blocks > old_blocks || moved)) {
		s->blocks = new_blocks;
		ret = moved ? vdi_write_bmap(bs, 0, new_blocks)
			    : vdi_write_bmap(bs, old_blocks, new_blocks - old_blocks);
	}
	if (ret == 0 && (fixed || moved)) {
		uint64_t end = s->offset_data + (uint64_t)s->allocated * vdi_block_bytes(s);
		uint64_t start = s->offset_data +
				 (uint64_t)(fixed ? old_blocks : s->allocated) * vdi_block_bytes(s);

		if (end > s->file_size) {
			ret = vdi_prealloc(&bs->file, start > s->file_size ? start : s->file_size,
					   end, prealloc);
			if (ret < 0)
				error_set(ret, "%s: cannot extend the image", bs->filename);
			else
				s->file_size = end;
		}
	}
	if (ret == 0) {
		put_le64(s->head + VDI_OFF_DISK_SIZE, new_size);
		put_le32(s->head + VDI_OFF_BLOCKS, s->blocks);
		put_le32(s->head + VDI_OFF_ALLOCATED, s->allocated);
		ret = vdi_write_header(bs);
	}
	if (ret == 0 && moved) { /* nothing past the new data end is referenced any more */
		uint64_t end = s->offset_data + (uint64_t)s->allocated * vdi_block_bytes(s);

		ret = host_file_flush(&bs->file);
		if (ret == 0 && s->file_size > end)
			ret = host_file_truncate(&bs->file, end);
		if (ret < 0)
			error_set(ret, "%s: cannot flush or trim the image", bs->filename);
		else if (s->file_size > end)
			s->file_size = end;
	}
	if (ret == 0) {
		s->disk_size = new_size;
		bs->size = new_size;
	}
	pthread_mutex_unlock(&s->meta_lock);
	pthread_rwlock_unlock(&s->io_lock);
	return ret;
}
