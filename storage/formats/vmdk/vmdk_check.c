/* `check` for VMDK: every grain-table entry of every sparse extent must name a grain inside its
 * file (qemu-img's vmdk check finds the same corruptions). Nothing is repaired: a grain pointing
 * outside the file has no right content to restore.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/formats/vmdk/vmdk.h"

static int vmdk_check_extent(struct block_device *bs, struct vmdk_extent *e,
			     struct block_check_result *res)
{
	uint64_t gbytes = (uint64_t)e->grain * VMDK_SECTOR;
	int ret = 0;

	res->total_clusters += (e->sectors + e->grain - 1) / e->grain;
	pthread_mutex_lock(&e->lock);
	for (uint64_t g = 0; g * e->grain < e->sectors && ret == 0; g++) {
		uint32_t gte;
		ret = vmdk_gte_get(bs, e, g * e->grain, &gte);
		if (ret < 0) {
			res->check_errors++;
			break;
		}
		if (gte == 0 || (gte == VMDK_GTE_ZERO && e->zero_grain))
			continue;
		uint64_t off = (uint64_t)gte * VMDK_SECTOR;
		if (off >= e->file_end || (!e->compressed && off + gbytes > e->file_end)) {
			fprintf(stderr,
				"ERROR: %s: grain %llu at offset %llu points after the end "
				"of the file\n",
				e->name, (unsigned long long)g, (unsigned long long)off);
			res->corruptions++;
			continue;
		}
		res->allocated_clusters++;
		if (e->compressed)
			res->compressed_clusters++;
	}
	pthread_mutex_unlock(&e->lock);
	return ret;
}

int vmdk_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	struct vmdk_state *s = bs->state;
	uint64_t size = 0;
	int ret = 0;

	(void)fix;
	for (unsigned i = 0; i < s->n && ret == 0; i++)
		if (s->ext[i].type == VMDK_EXT_SPARSE)
			ret = vmdk_check_extent(bs, &s->ext[i], res);
	if (host_file_size(&bs->file, &size) == 0)
		res->image_end_offset = size;
	return ret;
}
