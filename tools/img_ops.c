/* Driver operations the image tool needs and storage/block.h offers no block_*() wrapper for
 * (check, info, snapshots, UUIDs, rebase), plus the chain-resolving block status.
 *
 * They are kept here, in one place, so that the tool never calls a driver anywhere else; when
 * block.c grows block_check() & co., these become one-line forwards.
 */
#include <errno.h>
#include <string.h>

#include "tools/img.h"

static int img_drv_missing(struct block_device *bs, const char *what)
{
	return block_error(-ENOTSUP, "%s: format %s does not support %s", bs->filename,
			   bs->drv->name, what);
}

int img_drv_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	memset(res, 0, sizeof(*res));
	if (!bs->drv->check)
		return img_drv_missing(bs, "checks");
	return bs->drv->check(bs, res, fix);
}

int img_drv_info(struct block_device *bs, struct json_object *out)
{
	return bs->drv->info ? bs->drv->info(bs, out) : 0;
}

int img_drv_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt)
{
	if (!bs->drv->set_backing)
		return img_drv_missing(bs, "changing the backing file");
	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return block_error(-EROFS, "%s: image opened read-only", bs->filename);
	return bs->drv->set_backing(bs, backing, backing_fmt);
}

bool img_drv_has_uuid(struct block_device *bs)
{
	return bs->drv->set_uuid != NULL;
}

int img_drv_set_uuid(struct block_device *bs, const uint8_t uuid[16])
{
	if (!bs->drv->set_uuid)
		return img_drv_missing(bs, "UUIDs");
	return bs->drv->set_uuid(bs, uuid);
}

int img_drv_snapshot_create(struct block_device *bs, const char *name)
{
	if (!bs->drv->snapshot_create)
		return img_drv_missing(bs, "internal snapshots");
	return bs->drv->snapshot_create(bs, name);
}

int img_drv_snapshot_list(struct block_device *bs, struct block_snapshot **list, int *count)
{
	*list = NULL;
	*count = 0;
	if (!bs->drv->snapshot_list)
		return img_drv_missing(bs, "internal snapshots");
	return bs->drv->snapshot_list(bs, list, count);
}

int img_drv_snapshot_apply(struct block_device *bs, const char *name)
{
	if (!bs->drv->snapshot_apply)
		return img_drv_missing(bs, "internal snapshots");
	return bs->drv->snapshot_apply(bs, name);
}

int img_drv_snapshot_delete(struct block_device *bs, const char *name)
{
	if (!bs->drv->snapshot_delete)
		return img_drv_missing(bs, "internal snapshots");
	return bs->drv->snapshot_delete(bs, name);
}

uint32_t img_drv_cluster_size(struct block_device *bs)
{
	return bs->drv->cluster_size ? bs->drv->cluster_size(bs) : 0;
}

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
