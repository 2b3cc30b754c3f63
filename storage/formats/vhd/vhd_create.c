/* Creating VHD images (`img create -f vpc`).
 *
 * Options: subformat=dynamic|fixed (dynamic by default), force_size=on|off, block_size (dynamic).
 * Sizes: Virtual PC and QEMU read a disk's size from the footer's CHS geometry, Hyper-V and
 * VirtualBox from its "current size" field. So that every reader agrees, the size is rounded up to
 * the next size the geometry can express (what qemu-img does), unless it is beyond the largest
 * geometry (then the exact size is stored). With force_size=on the exact size is stored and the
 * creator is "qem2", which tells QEMU (and this driver) to trust the current-size field.
 * A backing file makes a differencing image of the parent's exact size (stored as with force_size);
 * the parent must be a VHD: its UUID and time stamp are recorded with a W2ru (relative) locator.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/endian.h"
#include "storage/formats/vhd/vhd.h"
#include "lib/uuid.h"

/* The smallest CHS-expressible sector count >= sectors (or sectors itself beyond the largest). */
static uint64_t vhd_chs_round(uint64_t sectors)
{
	uint16_t c;
	uint8_t h, s;

	if (sectors > VHD_MAX_GEOMETRY)
		return sectors;
	for (uint64_t i = 0;; i++) {
		vhd_geometry(sectors + i, &c, &h, &s);
		uint64_t chs = (uint64_t)c * h * s;
		if (chs >= sectors)
			return chs == VHD_MAX_GEOMETRY ? sectors : chs;
	}
}

static int vhd_write_dynamic(struct host_file *f, const char *filename, uint8_t *footer,
			     uint64_t size, uint32_t block_size, const char *backing)
{
	uint64_t blocks = (size + block_size - 1) / block_size;
	uint64_t bat_bytes = (blocks * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	uint64_t bat_off = VHD_FOOTER_SIZE + VHD_DYN_HEADER_SIZE;
	uint64_t end = bat_off + bat_bytes;
	uint8_t hdr[VHD_DYN_HEADER_SIZE] = {0}, loc[VHD_SECTOR];
	uint8_t *bat;
	int ret;

	if (backing) { /* the locator's data follows the BAT */
		ret = vhd_parent_fill(filename, hdr, backing, end, loc);
		if (ret < 0)
			return ret;
		end += VHD_SECTOR;
	}

	memcpy(hdr + VHD_D_COOKIE, VHD_DYN_COOKIE, 8);
	put_be64(hdr + VHD_D_DATA_OFFSET, VHD_NO_OFFSET);
	put_be64(hdr + VHD_D_TABLE_OFFSET, bat_off);
	put_be32(hdr + VHD_D_VERSION, 0x00010000);
	put_be32(hdr + VHD_D_MAX_ENTRIES, (uint32_t)blocks);
	put_be32(hdr + VHD_D_BLOCK_SIZE, block_size);
	put_be32(hdr + VHD_D_CHECKSUM, vhd_checksum(hdr, sizeof(hdr), VHD_D_CHECKSUM));

	bat = malloc(bat_bytes);
	if (!bat)
		return error_set(-ENOMEM, "%s: out of memory", filename);
	memset(bat, 0xff, bat_bytes);
	ret = host_file_pwrite(f, 0, footer, VHD_FOOTER_SIZE);
	if (ret == 0)
		ret = host_file_pwrite(f, VHD_FOOTER_SIZE, hdr, sizeof(hdr));
	if (ret == 0)
		ret = host_file_pwrite(f, bat_off, bat, bat_bytes);
	if (ret == 0 && backing)
		ret = host_file_pwrite(f, bat_off + bat_bytes, loc, VHD_SECTOR);
	if (ret == 0)
		ret = host_file_pwrite(f, end, footer, VHD_FOOTER_SIZE);
	free(bat);
	return ret;
}

int vhd_create(const char *filename, const struct block_create_args *args)
{
	const char *sub = block_opts_get(args->opts, "subformat");
	bool force = false, fixed = false;
	uint64_t block_size = VHD_BLOCK_SIZE_DEFAULT;
	uint8_t footer[VHD_FOOTER_SIZE], uuid[16];
	struct host_file f;
	int ret;

	ret = block_opts_get_bool(args->opts, filename, "force_size", &force);
	if (ret == 0)
		ret = block_opts_get_size(args->opts, filename, "block_size", &block_size);
	if (ret < 0)
		return ret;
	if (block_size < VHD_SECTOR || block_size > VHD_BLOCK_SIZE_MAX ||
	    (block_size & (block_size - 1)))
		return error_set(-EINVAL,
				 "%s: block_size %llu must be a power of two from 512 to 256M",
				 filename, (unsigned long long)block_size);
	if (sub && !strcmp(sub, "fixed"))
		fixed = true;
	else if (sub && strcmp(sub, "dynamic"))
		return error_set(-EINVAL, "%s: unknown VHD subformat '%s' (dynamic or fixed)",
				 filename, sub);
	if (args->backing) {
		if (fixed)
			return error_set(-EINVAL, "%s: a fixed VHD cannot have a parent", filename);
		if (args->backing_fmt && strcmp(args->backing_fmt, "vpc"))
			return error_set(-EINVAL, "%s: the parent of a VHD must be a VHD, not %s",
					 filename, args->backing_fmt);
		force = true; /* the parent's size, exactly */
	}
	uint64_t sectors = args->size / VHD_SECTOR;
	if (args->size % VHD_SECTOR)
		sectors++;
	if (!force)
		sectors = vhd_chs_round(sectors);
	if (sectors > VHD_MAX_SECTORS)
		return error_set(-EFBIG, "%s: size %llu bytes exceeds the VHD maximum of 2040 GiB",
				 filename, (unsigned long long)args->size);
	uint64_t size = sectors * VHD_SECTOR;

	ret = uuid_random_v4(uuid);
	if (ret < 0)
		return error_set(ret, "%s: no random bytes for the UUID", filename);
	vhd_footer_fill(footer,
			fixed		? VHD_TYPE_FIXED
			: args->backing ? VHD_TYPE_DIFF
					: VHD_TYPE_DYNAMIC,
			size, fixed ? VHD_NO_OFFSET : VHD_FOOTER_SIZE, uuid,
			force ? "qem2" : "mvmm");

	if (args->backing) { /* refuse a bad parent before the file exists */
		uint8_t h[VHD_DYN_HEADER_SIZE] = {0}, l[VHD_SECTOR];
		ret = vhd_parent_fill(filename, h, args->backing, 0, l);
		if (ret < 0)
			return ret;
	}
	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0)
		return error_set(ret, "%s: cannot create: %s", filename, strerror(-ret));
	if (fixed) {
		ret = host_file_truncate(&f, size);
		if (ret == 0)
			ret = host_file_pwrite(&f, size, footer, VHD_FOOTER_SIZE);
	} else {
		ret = vhd_write_dynamic(&f, filename, footer, size, (uint32_t)block_size,
					args->backing);
	}
	if (ret == 0)
		ret = host_file_flush(&f);
	host_file_close(&f);
	if (ret < 0) {
		unlink(filename);
		if (ret != -ENOMEM)
			error_set(ret, "%s: cannot write the VHD metadata: %s", filename,
				  strerror(-ret));
	}
	return ret;
}
