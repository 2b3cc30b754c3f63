/* The chain-resolving block status the image tool reports (map, convert, compare).
 *
 * Driver operations (check, info, snapshots, UUIDs, rebase) go through the block_*() wrappers of
 * storage/core/block.c: the tool never calls a driver itself.
 */
#include <errno.h>
#include <string.h>

#include "tools/img.h"

int img_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum, int *status,
	       uint64_t *map_offset, int *depth, struct block_device **owner)
{
	*depth = 0;
	for (;;) {
		int ret = block_status(bs, offset, len, pnum, status, map_offset);
		if (ret < 0)
			return ret;
		*owner = bs;
		if ((*status & BLOCK_STATUS_ALLOCATED) || !bs->backing)
			break;
		/* Not decided here: the backing file decides the first *pnum bytes. */
		len = *pnum;
		bs = bs->backing;
		++*depth;
		if (offset >= bs->size) {
			/* Past the backing file's end: zeroes, decided by the layer above (as
			 * qemu). */
			*status = BLOCK_STATUS_ZERO;
			--*depth;
			return 0;
		}
		if (len > bs->size - offset)
			len = bs->size - offset;
	}
	if (!(*status & BLOCK_STATUS_ALLOCATED)) {
		/* The bottom of the chain leaves it unallocated: it reads as zeroes. */
		*status = (*status & ~BLOCK_STATUS_DATA) | BLOCK_STATUS_ZERO;
		*status &= ~BLOCK_STATUS_OFFSET_VALID;
	}
	return 0;
}
