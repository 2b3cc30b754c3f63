/* Re-pointing a differencing VHD at another parent (`img rebase`, deleting a VM snapshot).
 *
 * The new parent is recorded as create records one (vhd_parent_fill): its UUID and time stamp in
 * the dynamic header, its file name, and one locator (W2ru relative, W2ku absolute). The locator's
 * data goes into a new sector where the trailing footer was (the footer moves one sector on), never
 * over the old locator data, and the dynamic header is rewritten last: until then the image still
 * names its old parent, and a crash leaves at worst an unused sector. Each rebase leaves the old
 * locator's sector unused (512 bytes), as a deleted block would be.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhd/vhd.h"

int vhd_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt)
{
	struct vhd_state *s = bs->state;
	uint8_t hdr[VHD_DYN_HEADER_SIZE], loc[VHD_SECTOR];
	char *name, *fmt;
	int ret;

	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	if (s->type != VHD_TYPE_DIFF)
		return error_set(-ENOTSUP,
				 "%s: only a differencing VHD records a parent (convert the image "
				 "to give it one)",
				 bs->filename);
	if (!backing)
		return error_set(-ENOTSUP,
				 "%s: a differencing VHD cannot drop its parent (convert it "
				 "instead)",
				 bs->filename);
	if (backing_fmt && strcmp(backing_fmt, "vpc"))
		return error_set(-EINVAL, "%s: the parent of a VHD must be a VHD, not %s",
				 bs->filename, backing_fmt);
	name = strdup(backing);
	fmt = strdup("vpc");
	if (!name || !fmt) {
		free(name);
		free(fmt);
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	}

	pthread_mutex_lock(&s->lock);
	uint64_t loc_off = s->footer_pos;
	ret = host_file_pread(&bs->file, s->header_offset, hdr, sizeof(hdr));
	if (ret < 0) {
		error_set(ret, "%s: cannot read the dynamic header: %s", bs->filename,
			  strerror(-ret));
		goto out;
	}
	/* Parent UUID, time stamp, reserved, name and the eight locators: all replaced. */
	memset(hdr + VHD_D_PARENT_UUID, 0, VHD_D_LOCATORS + 8 * 24 - VHD_D_PARENT_UUID);
	ret = vhd_parent_fill(bs->filename, hdr, backing, loc_off, loc);
	if (ret < 0)
		goto out;
	put_be32(hdr + VHD_D_CHECKSUM, vhd_checksum(hdr, sizeof(hdr), VHD_D_CHECKSUM));
	/* The footer first (the file then ends in a valid one), then the locator over the old
	 * footer's place, then the header that points at it. */
	ret = host_file_pwrite(&bs->file, loc_off + VHD_SECTOR, s->footer, VHD_FOOTER_SIZE);
	if (ret == 0)
		ret = host_file_pwrite(&bs->file, loc_off, loc, VHD_SECTOR);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret == 0)
		s->footer_pos = loc_off + VHD_SECTOR;
	if (ret == 0)
		ret = host_file_pwrite(&bs->file, s->header_offset, hdr, sizeof(hdr));
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret < 0) {
		error_set(ret, "%s: cannot record the new parent: %s", bs->filename,
			  strerror(-ret));
		goto out;
	}
	free(bs->backing_name);
	free(bs->backing_fmt);
	bs->backing_name = name;
	bs->backing_fmt = fmt;
	name = fmt = NULL;
out:
	pthread_mutex_unlock(&s->lock);
	free(name);
	free(fmt);
	return ret;
}
