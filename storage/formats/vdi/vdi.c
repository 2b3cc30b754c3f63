/* The "vdi" block driver: VirtualBox disk images (dynamic, fixed and differencing), version 1.1.
 *
 * This file probes and opens an image, validating every header field and every block-map entry
 * before anything is trusted; I/O is in vdi_io.c, metadata updates in vdi_meta.c, creation and
 * resizing in vdi_create.c, check/info/UUIDs in vdi_check.c, parents in vdi_parent.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

static int vdi_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	if (len < VDI_OFF_VERSION + 4 || get_le32(head + VDI_OFF_SIGNATURE) != VDI_SIGNATURE)
		return 0;
	return 100;
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* Checks the header fields in s->head against each other and the file size; fills s. */
static int vdi_parse_header(struct block_device *bs, struct vdi_state *s, uint64_t fsize)
{
	const char *fn = bs->filename;
	const uint8_t *h = s->head;
	uint32_t hdr_size, version, sector_size;
	uint64_t bmap_end;

	if (fsize < VDI_PRE_HEADER_SIZE + 4)
		return error_set(-EINVAL, "%s: truncated VDI header (file is %" PRIu64 " bytes)",
				 fn, fsize);
	if (get_le32(h + VDI_OFF_SIGNATURE) != VDI_SIGNATURE)
		return error_set(-EINVAL, "%s: not a VDI image (signature %#x, expected %#x)", fn,
				 get_le32(h + VDI_OFF_SIGNATURE), VDI_SIGNATURE);
	version = get_le32(h + VDI_OFF_VERSION);
	if (version != VDI_VERSION_1_1)
		return error_set(-ENOTSUP, "%s: unsupported VDI version %u.%u (only 1.1)", fn,
				 version >> 16, version & 0xffff);
	hdr_size = get_le32(h + VDI_OFF_HDR_SIZE);
	if (hdr_size < VDI_HEADER1_SIZE || hdr_size > VDI_HEAD_MAX - VDI_PRE_HEADER_SIZE)
		return error_set(-EINVAL, "%s: invalid VDI header size %u", fn, hdr_size);
	s->header_end = VDI_PRE_HEADER_SIZE + hdr_size;
	if (fsize < s->header_end)
		return error_set(-EINVAL,
				 "%s: truncated VDI header (needs %u bytes, file is %" PRIu64 ")",
				 fn, s->header_end, fsize);

	s->type = get_le32(h + VDI_OFF_TYPE);
	if (s->type == VDI_TYPE_UNDO)
		return error_set(-ENOTSUP, "%s: VDI undo images are not supported", fn);
	if (s->type != VDI_TYPE_NORMAL && s->type != VDI_TYPE_FIXED && s->type != VDI_TYPE_DIFF)
		return error_set(-EINVAL, "%s: unknown VDI image type %u", fn, s->type);
	sector_size = get_le32(h + VDI_OFF_SECTOR_SIZE);
	if (sector_size != VDI_SECTOR)
		return error_set(-ENOTSUP, "%s: unsupported VDI sector size %u", fn, sector_size);

	s->block_size = get_le32(h + VDI_OFF_BLOCK_SIZE);
	if (!is_pow2(s->block_size) || s->block_size < VDI_BLOCK_SIZE_MIN ||
	    s->block_size > VDI_BLOCK_SIZE_MAX)
		return error_set(-EINVAL, "%s: invalid VDI block size %u", fn, s->block_size);
	s->block_extra = get_le32(h + VDI_OFF_BLOCK_EXTRA);
	if (s->block_extra % VDI_SECTOR || s->block_extra > VDI_BLOCK_SIZE_MAX)
		return error_set(-EINVAL, "%s: invalid VDI block extra size %u", fn,
				 s->block_extra);

	s->blocks = get_le32(h + VDI_OFF_BLOCKS);
	if (s->blocks > VDI_BLOCKS_MAX)
		return error_set(-EFBIG, "%s: VDI block count %u exceeds the limit %u", fn,
				 s->blocks, VDI_BLOCKS_MAX);
	s->disk_size = get_le64(h + VDI_OFF_DISK_SIZE);
	if (s->disk_size > (uint64_t)s->blocks * s->block_size)
		return error_set(-EINVAL,
				 "%s: VDI disk size %" PRIu64 " exceeds its %u blocks of %u bytes",
				 fn, s->disk_size, s->blocks, s->block_size);
	if (get_le32(h + VDI_OFF_ALLOCATED) > s->blocks)
		return error_set(-EINVAL, "%s: VDI allocated block count %u exceeds %u blocks", fn,
				 get_le32(h + VDI_OFF_ALLOCATED), s->blocks);

	s->offset_bmap = get_le32(h + VDI_OFF_BMAP);
	s->offset_data = get_le32(h + VDI_OFF_DATA);
	bmap_end = s->offset_bmap + (uint64_t)s->blocks * 4;
	if (s->offset_bmap % VDI_SECTOR || s->offset_bmap < s->header_end)
		return error_set(-EINVAL, "%s: invalid VDI block map offset %#" PRIx64, fn,
				 s->offset_bmap);
	if (s->offset_data % VDI_SECTOR || s->offset_data < bmap_end)
		return error_set(-EINVAL,
				 "%s: VDI data offset %#" PRIx64
				 " overlaps the block map (%u entries at %#" PRIx64 ")",
				 fn, s->offset_data, s->blocks, s->offset_bmap);
	if (bmap_end > fsize)
		return error_set(-EINVAL,
				 "%s: VDI block map (%u entries at %#" PRIx64
				 ") extends beyond the end of the file (%" PRIu64 " bytes)",
				 fn, s->blocks, s->offset_bmap, fsize);
	if (s->type == VDI_TYPE_DIFF && vdi_uuid_is_null(h + VDI_OFF_UUID_LINK))
		return error_set(-EINVAL, "%s: VDI differencing image without a parent UUID", fn);
	return 0;
}

/* Reads the block map and checks every entry: in range and used by one block only. */
static int vdi_load_bmap(struct block_device *bs, struct vdi_state *s)
{
	size_t n = s->blocks ? s->blocks : 1;
	uint8_t *raw;
	int ret;

	s->bmap = malloc(n * sizeof(uint32_t));
	s->owner = malloc(n * sizeof(uint32_t));
	if (!s->bmap || !s->owner)
		return error_set(-ENOMEM, "%s: no memory for a block map of %u entries",
				 bs->filename, s->blocks);
	raw = (uint8_t *)s->bmap; /* converted in place: same size */
	ret = host_file_pread(&bs->file, s->offset_bmap, raw, (size_t)s->blocks * 4);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the VDI block map", bs->filename);
	for (uint32_t i = 0; i < s->blocks; i++)
		s->bmap[i] = get_le32(raw + (size_t)i * 4);
	for (uint32_t i = 0; i < s->blocks; i++)
		s->owner[i] = VDI_BLOCK_FREE;

	s->allocated = 0;
	for (uint32_t i = 0; i < s->blocks; i++) {
		uint32_t e = s->bmap[i];

		if (!VDI_IS_ALLOCATED(e))
			continue;
		if (e >= s->blocks) {
			if (s->tolerant)
				continue;
			return error_set(-EINVAL,
					 "%s: VDI block map entry %u points to data block %u, "
					 "beyond the image's %u blocks",
					 bs->filename, i, e, s->blocks);
		}
		if (s->owner[e] != VDI_BLOCK_FREE) {
			if (s->tolerant)
				continue;
			return error_set(-EINVAL,
					 "%s: VDI block map entries %u and %u both point to data "
					 "block %u",
					 bs->filename, s->owner[e], i, e);
		}
		s->owner[e] = i;
		s->allocated++;
	}
	return 0;
}

/* True when the used data indices are exactly 0..allocated-1 and the header agrees. */
static bool vdi_is_dense(const struct vdi_state *s)
{
	for (uint32_t i = 0; i < s->allocated; i++)
		if (s->owner[i] == VDI_BLOCK_FREE)
			return false;
	return get_le32(s->head + VDI_OFF_ALLOCATED) == s->allocated;
}

static void vdi_state_free(struct vdi_state *s)
{
	if (!s)
		return;
	pthread_rwlock_destroy(&s->io_lock);
	pthread_mutex_destroy(&s->meta_lock);
	free(s->bmap);
	free(s->owner);
	free(s);
}

static int vdi_open(struct block_device *bs)
{
	struct vdi_state *s = calloc(1, sizeof(*s));
	pthread_rwlockattr_t attr;
	uint64_t fsize;
	int ret;

	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);

	/* Writer preference: a discard or resize must not starve behind a stream of guest I/O. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->io_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&s->meta_lock, NULL);
	s->tolerant = bs->flags & BLOCK_OPEN_CHECK;

	ret = host_file_size(&bs->file, &fsize);
	if (ret < 0) {
		error_set(ret, "%s: cannot get the file size", bs->filename);
		goto fail;
	}
	s->head_len = fsize < VDI_HEAD_MAX ? (uint32_t)fsize : VDI_HEAD_MAX;
	ret = host_file_pread(&bs->file, 0, s->head, s->head_len);
	if (ret < 0) {
		error_set(ret, "%s: cannot read the VDI header", bs->filename);
		goto fail;
	}
	ret = vdi_parse_header(bs, s, fsize);
	if (ret < 0)
		goto fail;
	if (s->head_len > s->offset_bmap)
		s->head_len = (uint32_t)s->offset_bmap; /* the map itself lives in s->bmap */
	s->file_size = fsize;
	ret = vdi_load_bmap(bs, s);
	if (ret < 0)
		goto fail;

	bs->state = s;
	bs->size = s->disk_size;
	ret = vdi_parent_open_name(bs);
	if (ret < 0)
		goto fail_state;

	/* A crash between the metadata writes of an allocation or a discard leaves the header's
	 * count one off, or a hole in the data indices: repair before VirtualBox or QEMU trust the
	 * count to place their next block. */
	if ((bs->flags & BLOCK_OPEN_RDWR) && !s->tolerant && !vdi_is_dense(s)) {
		ret = vdi_compact(bs);
		if (ret < 0)
			goto fail_state;
	}
	return 0;

fail_state:
	bs->state = NULL;
	free(bs->backing_name);
	free(bs->backing_fmt);
	bs->backing_name = bs->backing_fmt = NULL;
fail:
	vdi_state_free(s);
	return ret;
}

static void vdi_close(struct block_device *bs)
{
	vdi_state_free(bs->state);
	bs->state = NULL;
}

static uint32_t vdi_cluster_size(struct block_device *bs)
{
	struct vdi_state *s = bs->state;

	return s->block_size;
}

static const struct block_driver block_driver_vdi = {
    .name = "vdi",
    .description = "VirtualBox VDI (dynamic, fixed, differencing)",
    .has_backing = true,
    .probe = vdi_probe,
    .probe_bytes = VDI_OFF_VERSION + 4,
    .open = vdi_open,
    .close = vdi_close,
    .create = vdi_create,
    .preadv = vdi_preadv,
    .pwritev = vdi_pwritev,
    .flush = vdi_flush,
    .discard = vdi_discard,
    .write_zeroes = vdi_write_zeroes,
    .block_status = vdi_block_status,
    .truncate = vdi_truncate,
    .check = vdi_check,
    .info = vdi_info,
    .set_backing = vdi_set_backing,
    .get_uuid = vdi_get_uuid,
    .set_uuid = vdi_set_uuid,
    .cluster_size = vdi_cluster_size,
};
BLOCK_DRIVER(block_driver_vdi);
