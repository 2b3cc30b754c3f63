/* The "vpc" driver: Microsoft VHD images, fixed and dynamic.
 *
 * Opening checks everything before the first I/O: footer and dynamic-header cookies and checksums,
 * the disk type, the size against the file, the BAT inside the file and every allocated block
 * inside the file and clear of the metadata and of every other block.
 *
 * The virtual size follows QEMU's rule, so that both tools see the same disk: the CHS geometry in
 * the footer gives the size, except for creators that are known to store the exact size in the
 * "current size" field ("win " Hyper-V, "qem2", "d2v ", "CTXS", "tap\0") and for the largest
 * geometry, where the current size is used.
 *
 * Dynamic reads ignore the sector bitmaps, as QEMU does: a new block is written whole (bitmap all
 * ones, zeroes around the data). Differencing images (storage/formats/vhd/vhd_parent.c) honour the
 * bitmaps when reading; a block allocated or first written here is made whole (parent data copied
 * in, bitmap all ones), so writes never have to track sectors. The parent's UUID is not checked.
 * Rebasing a differencing image: storage/formats/vhd/vhd_rebase.c.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhd/vhd.h"

static int vhd_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	return len >= VHD_FOOTER_SIZE && memcmp(head, VHD_COOKIE, 8) == 0 ? 100 : 0;
}

static bool vhd_footer_ok(const uint8_t *f)
{
	return memcmp(f + VHD_F_COOKIE, VHD_COOKIE, 8) == 0 &&
	       get_be32(f + VHD_F_CHECKSUM) == vhd_checksum(f, VHD_FOOTER_SIZE, VHD_F_CHECKSUM);
}

/* The trailing footer is authoritative (the copy at 0 of a fixed disk is guest data); the copy at
 * 0 of a dynamic image stands in when a crash left the trailing one incomplete. */
static int vhd_read_footer(struct block_device *bs, struct vhd_state *s, uint64_t fsize,
			   bool *trailing_ok)
{
	uint8_t copy[VHD_FOOTER_SIZE];
	int ret;

	if (fsize < VHD_FOOTER_SIZE)
		return error_set(-EINVAL, "%s: file too small (%llu bytes) for a VHD footer",
				 bs->filename, (unsigned long long)fsize);
	ret = host_file_pread(&bs->file, fsize - VHD_FOOTER_SIZE, s->footer, VHD_FOOTER_SIZE);
	if (ret == 0)
		ret = host_file_pread(&bs->file, 0, copy, VHD_FOOTER_SIZE);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the VHD footer: %s", bs->filename,
				 strerror(-ret));
	*trailing_ok = vhd_footer_ok(s->footer);
	if (*trailing_ok)
		return 0;
	if (memcmp(copy, VHD_COOKIE, 8) == 0 && vhd_footer_ok(copy) &&
	    get_be32(copy + VHD_F_TYPE) != VHD_TYPE_FIXED) {
		memcpy(s->footer, copy, VHD_FOOTER_SIZE);
		return 0;
	}
	const uint8_t *f = memcmp(s->footer, VHD_COOKIE, 8) == 0 ? s->footer : copy;
	if (memcmp(f, VHD_COOKIE, 8) != 0)
		return error_set(-EINVAL, "%s: no VHD footer (cookie 'conectix' not found)",
				 bs->filename);
	return error_set(-EINVAL, "%s: VHD footer checksum mismatch (stored %#x, computed %#x)",
			 bs->filename, get_be32(f + VHD_F_CHECKSUM),
			 vhd_checksum(f, VHD_FOOTER_SIZE, VHD_F_CHECKSUM));
}

static uint64_t vhd_footer_size(const uint8_t *f)
{
	const uint8_t *app = f + VHD_F_CREATOR_APP;
	uint64_t chs =
	    (uint64_t)((f[VHD_F_CYLS] << 8) | f[VHD_F_CYLS + 1]) * f[VHD_F_HEADS] * f[VHD_F_SECS];
	bool exact = !memcmp(app, "win ", 4) || !memcmp(app, "qem2", 4) ||
		     !memcmp(app, "d2v ", 4) || !memcmp(app, "CTXS", 4) || !memcmp(app, "tap", 4);

	if (exact || chs == VHD_MAX_GEOMETRY)
		return get_be64(f + VHD_F_CUR_SIZE) / VHD_SECTOR * VHD_SECTOR;
	return chs * VHD_SECTOR;
}

static int vhd_cmp64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Every allocated block inside the file, clear of the metadata and of the other blocks. */
static int vhd_check_bat(struct block_device *bs, struct vhd_state *s, uint64_t fsize,
			 uint64_t *end)
{
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	uint64_t bat_end = s->bat_offset + (uint64_t)s->max_entries * 4;
	uint64_t *starts = malloc(sizeof(*starts) * (s->max_entries ? s->max_entries : 1));
	size_t n = 0;
	int ret = 0;

	if (!starts)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	*end = bat_end > s->header_offset + VHD_DYN_HEADER_SIZE
		   ? bat_end
		   : s->header_offset + VHD_DYN_HEADER_SIZE;
	for (uint32_t i = 0; i < s->max_entries; i++) {
		if (s->bat[i] == VHD_BAT_FREE)
			continue;
		uint64_t off = (uint64_t)s->bat[i] * VHD_SECTOR;
		if (off + span > fsize) {
			ret = error_set(-EINVAL,
					"%s: BAT entry %u: block at offset %llu beyond the end "
					"of the file (%llu bytes)",
					bs->filename, i, (unsigned long long)off,
					(unsigned long long)fsize);
			goto out;
		}
		if (off < VHD_FOOTER_SIZE ||
		    (off < s->header_offset + VHD_DYN_HEADER_SIZE &&
		     off + span > s->header_offset) ||
		    (off < bat_end && off + span > s->bat_offset)) {
			ret = error_set(-EINVAL,
					"%s: BAT entry %u: block at offset %llu overlaps the "
					"VHD metadata",
					bs->filename, i, (unsigned long long)off);
			goto out;
		}
		starts[n++] = off;
		if (off + span > *end)
			*end = off + span;
	}
	qsort(starts, n, sizeof(*starts), vhd_cmp64);
	for (size_t i = 1; i < n; i++) {
		if (starts[i - 1] + span > starts[i]) {
			ret = error_set(-EINVAL, "%s: BAT: blocks at offsets %llu and %llu overlap",
					bs->filename, (unsigned long long)starts[i - 1],
					(unsigned long long)starts[i]);
			goto out;
		}
	}
out:
	free(starts);
	return ret;
}

static int vhd_open_dynamic(struct block_device *bs, struct vhd_state *s, uint64_t fsize,
			    bool trailing_ok, uint8_t *h)
{
	int ret;

	s->header_offset = get_be64(s->footer + VHD_F_DATA_OFFSET);
	if (s->header_offset < VHD_FOOTER_SIZE || s->header_offset > fsize ||
	    fsize - s->header_offset < VHD_DYN_HEADER_SIZE)
		return error_set(-EINVAL, "%s: dynamic header offset %llu outside the file",
				 bs->filename, (unsigned long long)s->header_offset);
	ret = host_file_pread(&bs->file, s->header_offset, h, VHD_DYN_HEADER_SIZE);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the dynamic header: %s", bs->filename,
				 strerror(-ret));
	if (memcmp(h, VHD_DYN_COOKIE, 8) != 0)
		return error_set(-EINVAL, "%s: no dynamic header (cookie 'cxsparse' not found)",
				 bs->filename);
	if (get_be32(h + VHD_D_CHECKSUM) != vhd_checksum(h, VHD_DYN_HEADER_SIZE, VHD_D_CHECKSUM))
		return error_set(-EINVAL,
				 "%s: dynamic header checksum mismatch (stored %#x, computed %#x)",
				 bs->filename, get_be32(h + VHD_D_CHECKSUM),
				 vhd_checksum(h, VHD_DYN_HEADER_SIZE, VHD_D_CHECKSUM));
	s->bat_offset = get_be64(h + VHD_D_TABLE_OFFSET);
	s->max_entries = get_be32(h + VHD_D_MAX_ENTRIES);
	s->block_size = get_be32(h + VHD_D_BLOCK_SIZE);
	if (s->block_size < VHD_SECTOR || s->block_size > VHD_BLOCK_SIZE_MAX ||
	    (s->block_size & (s->block_size - 1)))
		return error_set(-EINVAL, "%s: invalid block size %u", bs->filename, s->block_size);
	s->bitmap_size =
	    (s->block_size / VHD_SECTOR / 8 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	if ((uint64_t)s->max_entries * s->block_size < bs->size)
		return error_set(
		    -EINVAL, "%s: disk size %llu larger than the BAT covers (%u blocks of %u)",
		    bs->filename, (unsigned long long)bs->size, s->max_entries, s->block_size);
	if (s->max_entries > VHD_MAX_ENTRIES)
		return error_set(-EINVAL, "%s: BAT of %u entries is absurd (at most %u)",
				 bs->filename, s->max_entries, VHD_MAX_ENTRIES);
	if (s->bat_offset < VHD_FOOTER_SIZE || s->bat_offset > fsize ||
	    (fsize - s->bat_offset) / 4 < s->max_entries)
		return error_set(-EINVAL, "%s: BAT (%u entries at offset %llu) beyond end of file",
				 bs->filename, s->max_entries, (unsigned long long)s->bat_offset);
	s->bat = malloc((size_t)s->max_entries * 4 + 4);
	if (!s->bat)
		return error_set(-ENOMEM, "%s: out of memory for the BAT", bs->filename);
	ret = host_file_pread(&bs->file, s->bat_offset, s->bat, (size_t)s->max_entries * 4);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the BAT: %s", bs->filename, strerror(-ret));
	for (uint32_t i = 0; i < s->max_entries; i++)
		s->bat[i] = be32toh(s->bat[i]);
	uint64_t end = 0;
	ret = vhd_check_bat(bs, s, fsize, &end);
	if (ret < 0)
		return ret;
	/* The next block replaces the trailing footer; after a crash that lost it, it goes after
	 * the last block and after every parent locator's data (never over it) instead. */
	for (int i = 0; s->type == VHD_TYPE_DIFF && i < 8; i++) {
		const uint8_t *loc = h + VHD_D_LOCATORS + 24 * i;
		uint64_t len = get_be32(loc + 8), off = get_be64(loc + 16);
		if (get_be32(loc) && len && off <= fsize && len <= fsize - off && off + len > end)
			end = off + len;
	}
	s->footer_pos = end;
	if (trailing_ok && fsize - VHD_FOOTER_SIZE > end)
		s->footer_pos = fsize - VHD_FOOTER_SIZE;
	s->footer_pos = (s->footer_pos + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	return 0;
}

static void vhd_close(struct block_device *bs)
{
	struct vhd_state *s = bs->state;

	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->bat);
	free(s->full);
	free(s);
	bs->state = NULL;
}

static int vhd_open(struct block_device *bs)
{
	struct vhd_state *s = calloc(1, sizeof(*s));
	uint8_t hdr[VHD_DYN_HEADER_SIZE];
	uint64_t fsize;
	bool trailing_ok;
	int ret;

	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	pthread_mutex_init(&s->lock, NULL);
	bs->state = s;
	ret = host_file_size(&bs->file, &fsize);
	if (ret < 0) {
		error_set(ret, "%s: cannot get size: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	ret = vhd_read_footer(bs, s, fsize, &trailing_ok);
	if (ret < 0)
		goto fail;
	s->type = get_be32(s->footer + VHD_F_TYPE);
	bs->size = vhd_footer_size(s->footer);
	if (bs->size > VHD_MAX_SECTORS * VHD_SECTOR) {
		ret = error_set(-EINVAL, "%s: disk size %llu beyond the VHD maximum of 2040 GiB",
				bs->filename, (unsigned long long)bs->size);
		goto fail;
	}
	switch (s->type) {
	case VHD_TYPE_FIXED:
		if (!trailing_ok || bs->size > fsize - VHD_FOOTER_SIZE) {
			ret = error_set(-EINVAL, "%s: fixed disk of %llu bytes in a %llu-byte file",
					bs->filename, (unsigned long long)bs->size,
					(unsigned long long)fsize);
			goto fail;
		}
		s->footer_pos = fsize - VHD_FOOTER_SIZE;
		break;
	case VHD_TYPE_DYNAMIC:
	case VHD_TYPE_DIFF:
		ret = vhd_open_dynamic(bs, s, fsize, trailing_ok, hdr);
		if (ret < 0)
			goto fail;
		if (s->type == VHD_TYPE_DIFF) {
			s->diff = true;
			s->full = calloc(s->max_entries ? s->max_entries : 1, 1);
			if (!s->full) {
				ret = error_set(-ENOMEM, "%s: out of memory", bs->filename);
				goto fail;
			}
			ret = vhd_parent_open(bs, hdr, fsize);
			if (ret < 0)
				goto fail;
		}
		break;
	default:
		ret = error_set(-EINVAL, "%s: unknown VHD disk type %u", bs->filename, s->type);
		goto fail;
	}
	return 0;
fail:
	free(bs->backing_name);
	free(bs->backing_fmt);
	bs->backing_name = bs->backing_fmt = NULL;
	vhd_close(bs);
	return ret;
}

static int vhd_get_uuid(struct block_device *bs, uint8_t uuid[16])
{
	struct vhd_state *s = bs->state;

	memcpy(uuid, s->footer + VHD_F_UUID, 16);
	return 0;
}

/* Both footers carry the UUID: the trailing one first, the copy at 0 after it. */
static int vhd_set_uuid(struct block_device *bs, const uint8_t uuid[16])
{
	struct vhd_state *s = bs->state;
	int ret;

	pthread_mutex_lock(&s->lock);
	memcpy(s->footer + VHD_F_UUID, uuid, 16);
	vhd_footer_set_checksum(s->footer);
	ret = host_file_pwrite(&bs->file, s->footer_pos, s->footer, VHD_FOOTER_SIZE);
	if (ret == 0 && s->type != VHD_TYPE_FIXED)
		ret = host_file_pwrite(&bs->file, 0, s->footer, VHD_FOOTER_SIZE);
	pthread_mutex_unlock(&s->lock);
	return ret < 0
		   ? error_set(ret, "%s: cannot write the footer: %s", bs->filename, strerror(-ret))
		   : 0;
}

static int vhd_info(struct block_device *bs, struct json_object *out)
{
	(void)bs;
	(void)out;
	return 0; /* qemu-img shows no format-specific fields for vpc */
}

static uint32_t vhd_cluster_size(struct block_device *bs)
{
	struct vhd_state *s = bs->state;
	return s->type == VHD_TYPE_FIXED ? 0 : s->block_size;
}

static const struct block_driver block_driver_vpc = {
    .name = "vpc",
    .description = "Microsoft Virtual Hard Disk (VHD): fixed, dynamic, differencing",
    .has_backing = true,
    .probe = vhd_probe,
    .probe_bytes = VHD_FOOTER_SIZE,
    .open = vhd_open,
    .close = vhd_close,
    .create = vhd_create,
    .preadv = vhd_preadv,
    .pwritev = vhd_pwritev,
    .block_status = vhd_block_status,
    .info = vhd_info,
    .get_uuid = vhd_get_uuid,
    .set_uuid = vhd_set_uuid,
    .set_backing = vhd_set_backing,
    .cluster_size = vhd_cluster_size,
};
BLOCK_DRIVER(block_driver_vpc);
