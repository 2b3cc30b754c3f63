/* VDI check (block-map consistency), info, and the image UUID. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

/* Rebuilds owner[] and the allocated count from the map (after entries were cleared). */
static void vdi_rebuild_owner(struct vdi_state *s)
{
	s->allocated = 0;
	for (uint32_t i = 0; i < s->blocks; i++)
		s->owner[i] = VDI_BLOCK_FREE;
	for (uint32_t i = 0; i < s->blocks; i++) {
		uint32_t e = s->bmap[i];

		if (VDI_IS_ALLOCATED(e) && e < s->blocks && s->owner[e] == VDI_BLOCK_FREE) {
			s->owner[e] = i;
			s->allocated++;
		}
	}
}

static int vdi_check_clear(struct block_device *bs, uint32_t blk, struct block_check_result *res)
{
	struct vdi_state *s = bs->state;
	int ret;

	vdi_set_entry(s, blk, VDI_BLOCK_FREE);
	ret = vdi_write_bmap(bs, blk, 1);
	if (ret < 0)
		return ret;
	res->corruptions_fixed++;
	return 0;
}

int vdi_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	struct vdi_state *s = bs->state;
	uint8_t *seen = calloc((size_t)s->blocks / 8 + 1, 1);
	uint32_t used = 0, top = 0, hcount = get_le32(s->head + VDI_OFF_ALLOCATED);
	bool repair = false;
	int ret = 0;

	if (!seen)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	if (fix && !(bs->flags & BLOCK_OPEN_RDWR)) {
		free(seen);
		return error_set(-EROFS, "%s: repairs need the image opened read-write",
				 bs->filename);
	}
	pthread_rwlock_wrlock(&s->io_lock);
	pthread_mutex_lock(&s->meta_lock);
	for (uint32_t i = 0; i < s->blocks && ret == 0; i++) {
		uint32_t e = vdi_entry(s, i);

		if (!VDI_IS_ALLOCATED(e))
			continue;
		if (e >= s->blocks) {
			fprintf(stderr,
				"ERROR: block %u maps to data block %u, beyond the %u blocks\n", i,
				e, s->blocks);
			res->corruptions++;
		} else if (seen[e / 8] & (1u << (e % 8))) {
			fprintf(stderr, "ERROR: block %u maps to data block %u, already in use\n",
				i, e);
			res->corruptions++;
		} else {
			seen[e / 8] |= 1u << (e % 8);
			used++;
			if (e + 1 > top)
				top = e + 1;
			continue;
		}
		if (fix & BLOCK_CHECK_FIX_ERRORS) {
			ret = vdi_check_clear(bs, i, res);
			repair = true;
		}
	}
	if (ret == 0 && (hcount != used || top != used)) {
		if (hcount < top) {
			fprintf(stderr,
				"ERROR: allocated blocks mismatch: header says %u, %u in use\n",
				hcount, used);
			res->corruptions++;
			if (fix & BLOCK_CHECK_FIX_ERRORS) {
				res->corruptions_fixed++;
				repair = true;
			}
		} else {
			uint32_t leaked = hcount - used;

			fprintf(stderr, "Leaked data blocks: %u (header count %u, %u in use)\n",
				leaked, hcount, used);
			res->leaks += leaked;
			if (fix & BLOCK_CHECK_FIX_LEAKS) {
				res->leaks_fixed += leaked;
				repair = true;
			}
		}
	}
	if (ret == 0 && repair) {
		vdi_rebuild_owner(s);
		ret = vdi_compact(bs);
		used = s->allocated;
	}
	pthread_mutex_unlock(&s->meta_lock);
	pthread_rwlock_unlock(&s->io_lock);
	free(seen);
	res->allocated_clusters += used;
	res->total_clusters += s->blocks;
	res->image_end_offset = s->offset_data + (uint64_t)used * vdi_block_bytes(s);
	if (ret < 0)
		res->check_errors++;
	return ret;
}

static void vdi_json_uuid(struct json_object *out, const char *key, const uint8_t *disk)
{
	char u[37];

	vdi_uuid_format(u, disk);
	json_object_object_add(out, key, json_object_new_string(u));
}

int vdi_info(struct block_device *bs, struct json_object *out)
{
	struct vdi_state *s = bs->state;
	const char *type = s->type == VDI_TYPE_FIXED  ? "fixed"
			   : s->type == VDI_TYPE_DIFF ? "diff"
						      : "dynamic";

	json_object_object_add(out, "type", json_object_new_string(type));
	json_object_object_add(out, "block-size", json_object_new_int64(s->block_size));
	json_object_object_add(out, "blocks", json_object_new_int64(s->blocks));
	json_object_object_add(out, "allocated-blocks", json_object_new_int64(s->allocated));
	vdi_json_uuid(out, "uuid", s->head + VDI_OFF_UUID_CREATE);
	vdi_json_uuid(out, "modify-uuid", s->head + VDI_OFF_UUID_MODIFY);
	if (!vdi_uuid_is_null(s->head + VDI_OFF_UUID_LINK)) {
		vdi_json_uuid(out, "parent-uuid", s->head + VDI_OFF_UUID_LINK);
		vdi_json_uuid(out, "parent-modify-uuid", s->head + VDI_OFF_UUID_PARENT_MODIFY);
	}
	return 0;
}

int vdi_get_uuid(struct block_device *bs, uint8_t uuid[16])
{
	struct vdi_state *s = bs->state;

	vdi_uuid_from_disk(uuid, s->head + VDI_OFF_UUID_CREATE);
	return 0;
}

/* Rewrites the header with head[off, off+len) replaced; restores memory on failure. */
static int vdi_update_header(struct block_device *bs, const uint8_t *new_head)
{
	struct vdi_state *s = bs->state;
	uint8_t *old = malloc(s->header_end);
	int ret;

	if (!old)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	pthread_mutex_lock(&s->meta_lock);
	memcpy(old, s->head, s->header_end);
	memcpy(s->head, new_head, s->header_end);
	ret = vdi_write_header(bs);
	if (ret < 0)
		memcpy(s->head, old, s->header_end);
	else
		s->type = get_le32(s->head + VDI_OFF_TYPE);
	pthread_mutex_unlock(&s->meta_lock);
	free(old);
	return ret;
}

int vdi_set_uuid(struct block_device *bs, const uint8_t uuid[16])
{
	struct vdi_state *s = bs->state;
	uint8_t h[VDI_HEAD_MAX];

	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	memcpy(h, s->head, s->header_end);
	vdi_uuid_to_disk(h + VDI_OFF_UUID_CREATE, uuid);
	return vdi_update_header(bs, h);
}

/* Rebase: records the new parent (name in the comment, UUIDs from it when it is a VDI); without
 * a parent the image becomes a plain dynamic one. */
int vdi_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt)
{
	struct vdi_state *s = bs->state;
	uint8_t h[VDI_HEAD_MAX], create[16], modify[16];
	char *path;

	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	if (s->type == VDI_TYPE_FIXED)
		return error_set(-ENOTSUP, "%s: a fixed VDI cannot have a parent", bs->filename);
	memcpy(h, s->head, s->header_end);
	memset(h + VDI_OFF_COMMENT, 0, VDI_COMMENT_SIZE);
	if (!backing) {
		put_le32(h + VDI_OFF_TYPE, VDI_TYPE_NORMAL);
		memset(h + VDI_OFF_UUID_LINK, 0, 32);
		return vdi_update_header(bs, h);
	}
	if (!backing_fmt)
		backing_fmt = "";
	if (strlen(VDI_BACKING_PREFIX) + strlen(backing_fmt) + 1 + strlen(backing) >=
	    VDI_COMMENT_SIZE)
		return error_set(-ENAMETOOLONG, "%s: backing file name too long for a VDI",
				 bs->filename);
	snprintf((char *)h + VDI_OFF_COMMENT, VDI_COMMENT_SIZE, "%s%s:%s", VDI_BACKING_PREFIX,
		 backing_fmt, backing);
	put_le32(h + VDI_OFF_TYPE, VDI_TYPE_DIFF);
	path = vdi_path_beside(bs->filename, backing);
	if (!path)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	if (vdi_parent_read_uuids(path, create, modify) == 0) {
		memcpy(h + VDI_OFF_UUID_LINK, create, 16);
		memcpy(h + VDI_OFF_UUID_PARENT_MODIFY, modify, 16);
	} else if (vdi_uuid_is_null(h + VDI_OFF_UUID_LINK)) {
		free(path);
		return error_set(-EINVAL, "%s: cannot read the VDI UUID of the new parent %s",
				 bs->filename, backing);
	}
	free(path);
	return vdi_update_header(bs, h);
}
