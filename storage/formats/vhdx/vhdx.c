/* The "vhdx" driver: Microsoft VHDX images, fixed and dynamic (differencing images are refused).
 *
 * Opening checks everything before the first I/O: the file identifier, both headers (the valid one
 * with the higher sequence number wins), the region table (BAT and metadata inside the file, 1 MiB
 * aligned, clear of the log and of each other), the metadata items, and every BAT entry (a known
 * state; a present block inside the file, clear of the metadata and of every other block). A dirty
 * log is replayed first, by read-write opens only (storage/formats/vhdx/vhdx_log.c).
 *
 * Like QEMU 7.2, the driver reports no block status: every range reads as data to `map`.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhdx/vhdx.h"

static int vhdx_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && !memcmp(head, "vhdxfile", 8) ? 100 : 0;
}

static int vhdx_cmp64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool vhdx_span_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Every payload entry in a known state; present blocks inside the file and apart. */
static int vhdx_check_bat(struct block_device *bs, struct vhdx_state *s, uint64_t fsize)
{
	uint64_t *starts = malloc(sizeof(*starts) * (s->payload_blocks ? s->payload_blocks : 1));
	uint64_t end = fsize, n = 0;
	int ret = 0;

	if (!starts)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	for (uint64_t b = 0; b < s->payload_blocks; b++) {
		uint64_t e = s->bat[vhdx_bat_index(s, b)], off = VHDX_BAT_OFFSET(e);
		unsigned st = VHDX_BAT_STATE(e);
		if (st <= VHDX_BAT_UNMAPPED)
			continue;
		if (st == VHDX_BAT_PARTIALLY_PRESENT) {
			ret = error_set(-EINVAL,
					"%s: BAT entry for block %llu is partially present, which "
					"needs a parent",
					bs->filename, (unsigned long long)b);
			goto out;
		}
		if (st != VHDX_BAT_FULLY_PRESENT) {
			ret = error_set(-EINVAL, "%s: BAT entry for block %llu has bad state %u",
					bs->filename, (unsigned long long)b, st);
			goto out;
		}
		if (off > fsize || fsize - off < s->block_size) {
			ret = error_set(-EINVAL,
					"%s: BAT entry for block %llu: offset %llu beyond the end "
					"of the file (%llu bytes)",
					bs->filename, (unsigned long long)b,
					(unsigned long long)off, (unsigned long long)fsize);
			goto out;
		}
		if (off < VHDX_MIB ||
		    vhdx_span_overlap(off, s->block_size, s->log_offset, s->log_length) ||
		    vhdx_span_overlap(off, s->block_size, s->bat_offset, s->bat_length) ||
		    vhdx_span_overlap(off, s->block_size, s->meta_offset, s->meta_length)) {
			ret =
			    error_set(-EINVAL,
				      "%s: BAT entry for block %llu: offset %llu overlaps the "
				      "VHDX metadata",
				      bs->filename, (unsigned long long)b, (unsigned long long)off);
			goto out;
		}
		starts[n++] = off;
	}
	qsort(starts, n, sizeof(*starts), vhdx_cmp64);
	for (uint64_t i = 1; i < n; i++) {
		if (starts[i - 1] + s->block_size > starts[i]) {
			ret = error_set(-EINVAL, "%s: BAT: blocks at offsets %llu and %llu overlap",
					bs->filename, (unsigned long long)starts[i - 1],
					(unsigned long long)starts[i]);
			goto out;
		}
	}
	uint64_t ends[] = {s->log_offset + s->log_length, s->bat_offset + s->bat_length,
			   s->meta_offset + s->meta_length, n ? starts[n - 1] + s->block_size : 0};
	for (size_t i = 0; i < 4; i++)
		if (ends[i] > end)
			end = ends[i];
	s->file_end = (end + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
out:
	free(starts);
	return ret;
}

static void vhdx_close(struct block_device *bs)
{
	struct vhdx_state *s = bs->state;

	if (!s)
		return;
	if (s->session_open) {
		/* Everything went through the log and was applied: it is clean. */
		memset(s->header + VHDX_H_LOG_GUID, 0, 16);
		vhdx_header_update(bs, s);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->bat);
	free(s);
	bs->state = NULL;
}

static int vhdx_open(struct block_device *bs)
{
	struct vhdx_state *s = calloc(1, sizeof(*s));
	uint64_t fsize;
	uint8_t id[8];
	int ret;

	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	pthread_mutex_init(&s->lock, NULL);
	bs->state = s;
	ret = host_file_size(&bs->file, &fsize);
	if (ret == 0)
		ret = host_file_pread(&bs->file, 0, id, sizeof(id));
	if (ret < 0) {
		error_set(ret, "%s: cannot read: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	if (fsize < VHDX_MIB || memcmp(id, "vhdxfile", 8)) {
		ret = error_set(-EINVAL, "%s: not a VHDX image (no 'vhdxfile' identifier)",
				bs->filename);
		goto fail;
	}
	ret = vhdx_headers_read(bs, s, fsize);
	if (ret == 0)
		ret = vhdx_log_replay(bs, s, fsize);
	if (ret == 0)
		ret = host_file_size(&bs->file, &fsize);
	if (ret == 0)
		ret = vhdx_regions_read(bs, s, fsize);
	if (ret == 0)
		ret = vhdx_metadata_read(bs, s);
	if (ret < 0)
		goto fail;
	s->bat = malloc(s->bat_entries * 8 + 8);
	if (!s->bat) {
		ret = error_set(-ENOMEM, "%s: out of memory for the BAT", bs->filename);
		goto fail;
	}
	ret = host_file_pread(&bs->file, s->bat_offset, s->bat, s->bat_entries * 8);
	if (ret < 0) {
		error_set(ret, "%s: cannot read the BAT: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	for (uint64_t i = 0; i < s->bat_entries; i++)
		s->bat[i] = get_le64((uint8_t *)&s->bat[i]);
	ret = vhdx_check_bat(bs, s, fsize);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	vhdx_close(bs);
	return ret;
}

/* Open already refused every inconsistency that can be detected; this reports the counts. */
int vhdx_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	struct vhdx_state *s = bs->state;

	(void)fix;
	memset(res, 0, sizeof(*res));
	for (uint64_t b = 0; b < s->payload_blocks; b++)
		res->allocated_clusters +=
		    VHDX_BAT_STATE(s->bat[vhdx_bat_index(s, b)]) == VHDX_BAT_FULLY_PRESENT;
	res->total_clusters = s->payload_blocks;
	res->image_end_offset = s->file_end;
	return 0;
}

static int vhdx_info(struct block_device *bs, struct json_object *out)
{
	(void)bs;
	(void)out;
	return 0; /* qemu-img shows no format-specific fields for vhdx */
}

static int vhdx_get_uuid(struct block_device *bs, uint8_t uuid[16])
{
	memcpy(uuid, ((struct vhdx_state *)bs->state)->page83, 16);
	return 0;
}

static uint32_t vhdx_cluster_size(struct block_device *bs)
{
	return ((struct vhdx_state *)bs->state)->block_size;
}

static const struct block_driver block_driver_vhdx = {
    .name = "vhdx",
    .description = "Microsoft VHDX, fixed and dynamic",
    .probe = vhdx_probe,
    .probe_bytes = 8, /* "vhdxfile" */
    .open = vhdx_open,
    .close = vhdx_close,
    .create = vhdx_create,
    .preadv = vhdx_preadv,
    .pwritev = vhdx_pwritev,
    .check = vhdx_check,
    .truncate = vhdx_truncate,
    .info = vhdx_info,
    .get_uuid = vhdx_get_uuid,
    .cluster_size = vhdx_cluster_size,
};
BLOCK_DRIVER(block_driver_vhdx);
