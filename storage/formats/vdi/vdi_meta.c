/* VDI metadata updates: the header, the block map, and moves of data blocks.
 *
 * Ordering, so that a crash (kill -9 or power loss after the host flushed) never leaves a map entry
 * pointing at unwritten data and never lets the header count fall below the indices in use (both
 * VirtualBox and QEMU place their next block at index cBlocksAllocated):
 *   allocation: block data, then the header count, then the map entry;
 *   free:       the map entry, then the moved block's data and entry, then the header count.
 * When the count and the entry lie in the file's first 4 KiB page they go out in one write, which a
 * kill cannot tear; otherwise a crash between the two writes leaves the count one high (an orphan
 * block, harmless) which vdi_compact() repairs on the next read-write open.
 * Callers hold meta_lock (and io_lock exclusive for moves).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

#define VDI_PAGE 4096u
#define VDI_COPY_CHUNK (1u << 20)

int vdi_write_header(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	int ret = host_file_pwrite(&bs->file, 0, s->head, s->header_end);

	if (ret < 0)
		return error_set(ret, "%s: cannot write the VDI header", bs->filename);
	return 0;
}

int vdi_write_bmap(struct block_device *bs, uint32_t first, uint32_t count)
{
	struct vdi_state *s = bs->state;
	uint8_t buf[4096];

	while (count) {
		uint32_t n = count < sizeof(buf) / 4 ? count : sizeof(buf) / 4;
		int ret;

		for (uint32_t i = 0; i < n; i++)
			put_le32(buf + i * 4, vdi_entry(s, first + i));
		ret = host_file_pwrite(&bs->file, s->offset_bmap + (uint64_t)first * 4, buf,
				       (size_t)n * 4);
		if (ret < 0)
			return error_set(ret, "%s: cannot write the VDI block map", bs->filename);
		first += n;
		count -= n;
	}
	return 0;
}

/* Persists the header count and the map entry of blk, the count first. */
int vdi_commit_entry(struct block_device *bs, uint32_t blk)
{
	struct vdi_state *s = bs->state;
	uint64_t end = s->offset_bmap + ((uint64_t)blk + 1) * 4;
	int ret;

	if (s->head_len == s->offset_bmap && end <= VDI_PAGE) {
		uint8_t buf[VDI_PAGE];
		uint32_t hl = s->head_len - VDI_OFF_ALLOCATED;

		memcpy(buf, s->head + VDI_OFF_ALLOCATED, hl);
		for (uint32_t i = 0; i <= blk; i++)
			put_le32(buf + hl + i * 4, vdi_entry(s, i));
		ret = host_file_pwrite(&bs->file, VDI_OFF_ALLOCATED, buf, end - VDI_OFF_ALLOCATED);
		if (ret < 0)
			return error_set(ret, "%s: cannot write the VDI block map", bs->filename);
		return 0;
	}
	ret = vdi_write_header(bs);
	if (ret < 0)
		return ret;
	return vdi_write_bmap(bs, blk, 1);
}

/* VirtualBox gives an image a new modify UUID the first time it is written after opening. */
int vdi_refresh_modify_uuid(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	uint8_t old[16];
	int ret;

	if (__atomic_load_n(&s->modify_uuid_done, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&s->meta_lock);
	ret = 0;
	if (!s->modify_uuid_done) {
		memcpy(old, s->head + VDI_OFF_UUID_MODIFY, 16);
		ret = vdi_uuid_generate(s->head + VDI_OFF_UUID_MODIFY);
		if (ret < 0)
			error_set(ret, "%s: cannot generate a UUID", bs->filename);
		else
			ret = vdi_write_header(bs);
		if (ret < 0)
			memcpy(s->head + VDI_OFF_UUID_MODIFY, old, 16);
		else
			__atomic_store_n(&s->modify_uuid_done, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s->meta_lock);
	return ret;
}

int vdi_set_allocated(struct block_device *bs, uint32_t allocated)
{
	struct vdi_state *s = bs->state;

	put_le32(s->head + VDI_OFF_ALLOCATED, allocated);
	return vdi_write_header(bs);
}

int vdi_copy_data(struct block_device *bs, uint32_t from, uint32_t to)
{
	struct vdi_state *s = bs->state;
	uint64_t total = vdi_block_bytes(s);
	uint64_t src = vdi_data_offset(s, from) - s->block_extra;
	uint64_t dst = vdi_data_offset(s, to) - s->block_extra;
	size_t chunk = total < VDI_COPY_CHUNK ? (size_t)total : VDI_COPY_CHUNK;
	uint8_t *buf = malloc(chunk);
	int ret = 0;

	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	for (uint64_t done = 0; done < total && ret == 0; done += chunk) {
		ret = host_file_pread(&bs->file, src + done, buf, chunk);
		if (ret == 0)
			ret = host_file_pwrite(&bs->file, dst + done, buf, chunk);
	}
	free(buf);
	if (ret < 0)
		return error_set(ret, "%s: cannot move VDI data block %u to %u", bs->filename, from,
				 to);
	if (dst + total > s->file_size)
		s->file_size = dst + total;
	return 0;
}

/* Drops the file's tail past the last data block, so freed blocks leave no garbage behind. */
static int vdi_trim_file(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	uint64_t end = s->offset_data + (uint64_t)s->allocated * vdi_block_bytes(s);
	int ret;

	if (s->file_size <= end)
		return 0;
	ret = host_file_truncate(&bs->file, end);
	if (ret < 0)
		return error_set(ret, "%s: cannot truncate the image", bs->filename);
	s->file_size = end;
	return 0;
}

/* Moves data index from -> to (to is free) and repoints its block. */
static int vdi_move_block(struct block_device *bs, uint32_t from, uint32_t to)
{
	struct vdi_state *s = bs->state;
	uint32_t w = s->owner[from];
	int ret = vdi_copy_data(bs, from, to);

	if (ret < 0)
		return ret;
	vdi_set_entry(s, w, to);
	ret = vdi_write_bmap(bs, w, 1);
	if (ret < 0) {
		vdi_set_entry(s, w, from);
		return ret;
	}
	s->owner[to] = w;
	s->owner[from] = VDI_BLOCK_FREE;
	return 0;
}

/* Frees blk's data block (its entry becomes new_entry: FREE or ZERO) and keeps indices dense by
 * moving the last data block into the hole. io_lock exclusive and meta_lock held. */
int vdi_free_block(struct block_device *bs, uint32_t blk, uint32_t new_entry)
{
	struct vdi_state *s = bs->state;
	uint32_t idx = vdi_entry(s, blk);
	uint32_t last;
	int ret;

	if (!VDI_IS_ALLOCATED(idx) || idx >= s->blocks || s->owner[idx] != blk)
		return error_set(-EIO, "%s: VDI block %u has no valid data block", bs->filename,
				 blk);
	vdi_set_entry(s, blk, new_entry);
	ret = vdi_write_bmap(bs, blk, 1);
	if (ret < 0) {
		vdi_set_entry(s, blk, idx);
		return ret;
	}
	s->owner[idx] = VDI_BLOCK_FREE;
	last = s->allocated - 1;
	if (idx != last) {
		ret = vdi_move_block(bs, last, idx);
		if (ret < 0)
			return ret; /* a hole: vdi_compact() closes it on the next open */
	}
	s->allocated--;
	ret = vdi_set_allocated(bs, s->allocated);
	if (ret < 0)
		return ret;
	return vdi_trim_file(bs);
}

/* Closes holes in the data indices (left by a crash) and rewrites the header count. */
int vdi_compact(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	uint32_t top = s->blocks;
	int ret;

	for (uint32_t idx = 0; idx < s->allocated; idx++) {
		if (s->owner[idx] != VDI_BLOCK_FREE)
			continue;
		while (top > idx + 1 && s->owner[top - 1] == VDI_BLOCK_FREE)
			top--;
		if (top <= idx + 1)
			break; /* cannot happen: allocated counts the owners */
		ret = vdi_move_block(bs, top - 1, idx);
		if (ret < 0)
			return ret;
	}
	ret = vdi_set_allocated(bs, s->allocated);
	if (ret < 0)
		return ret;
	ret = host_file_flush(&bs->file);
	if (ret < 0)
		return error_set(ret, "%s: cannot flush the image", bs->filename);
	return vdi_trim_file(bs);
}
