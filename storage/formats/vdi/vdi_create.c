/* Creating VDI images (dynamic, fixed, differencing) and growing them.
 *
 * Options (`img create -o`): static=on|off (a fixed image: every block allocated, like qemu-img),
 * block_size=SIZE (a power of two from 1 MiB to 256 MiB; VirtualBox itself always uses 1 MiB),
 * preallocation=off|metadata|falloc|full (anything but off makes a fixed image; falloc reserves the
 * space, full writes zeroes; a plain static=on image is sparse, as qemu-img makes it).
 * Layout, as VirtualBox writes it: header (0x190 bytes, with the LCHS geometry) in the first
 * sector, the block map at 0x200, data from the next 1 MiB boundary, which leaves the map room to
 * grow.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

#define VDI_DATA_ALIGN (1u << 20)
#define VDI_BMAP_OFFSET 0x200u

struct vdi_create_opts {
	bool fixed;
	uint32_t block_size;
	enum block_prealloc prealloc;
};

static int vdi_parse_opts(const char *file, struct block_opts *opts, struct vdi_create_opts *o)
{
	uint64_t bsz = VDI_BLOCK_SIZE_DEFAULT;
	int ret;

	o->fixed = false;
	o->prealloc = BLOCK_PREALLOC_OFF;
	ret = block_opts_get_bool(opts, file, "static", &o->fixed);
	/* cluster_size is qemu-img's name for it; block_size wins when both are given */
	if (ret == 0 && !block_opts_get(opts, "block_size"))
		ret = block_opts_get_size(opts, file, "cluster_size", &bsz);
	if (ret == 0)
		ret = block_opts_get_size(opts, file, "block_size", &bsz);
	if (ret == 0)
		ret = block_opts_get_prealloc(opts, file, &o->prealloc);
	if (ret < 0)
		return ret;
	if (bsz < (1u << 20) || bsz > VDI_BLOCK_SIZE_MAX || (bsz & (bsz - 1)))
		return error_set(-EINVAL,
				 "%s: block_size=%llu: must be a power of two from 1M to 256M",
				 file, (unsigned long long)bsz);
	o->block_size = (uint32_t)bsz;
	if (o->prealloc != BLOCK_PREALLOC_OFF)
		o->fixed = true;
	return 0;
}

/* The UUIDs a differencing image links to, the parent's size and its format name. */
static int vdi_parent_info(const char *filename, const struct block_create_args *args,
			   uint8_t link[16], uint8_t parent_modify[16], uint64_t *size, char **fmt)
{
	char *path = vdi_path_beside(filename, args->backing);
	struct block_device *pb;
	uint8_t u[16];
	int ret;

	if (!path)
		return error_set(-ENOMEM, "%s: out of memory", filename);
	ret = block_open(path, args->backing_fmt, BLOCK_OPEN_NO_BACKING, &pb);
	if (ret < 0) {
		free(path);
		return ret;
	}
	*size = pb->size;
	*fmt = strdup(pb->drv->name);
	memset(parent_modify, 0, 16);
	if (!strcmp(pb->drv->name, "vdi")) {
		ret = vdi_parent_read_uuids(path, link, parent_modify);
	} else if (pb->drv->get_uuid && pb->drv->get_uuid(pb, u) == 0) {
		vdi_uuid_to_disk(link, u);
	} else {
		ret = error_set(-ENOTSUP, "%s: parent %s (%s) carries no UUID for a VDI to link to",
				filename, path, pb->drv->name);
	}
	block_close(pb);
	free(path);
	if (ret == 0 && !*fmt)
		ret = error_set(-ENOMEM, "%s: out of memory", filename);
	if (ret < 0) {
		free(*fmt);
		*fmt = NULL;
		if (ret == -EINVAL)
			return error_set(ret, "%s: cannot read the VDI header of parent %s",
					 filename, args->backing);
		return ret;
	}
	return 0;
}

static void vdi_build_header(uint8_t *h, uint32_t type, uint64_t size, uint32_t block_size,
			     uint32_t blocks, uint64_t offset_data)
{
	memset(h, 0, VDI_SECTOR);
	memcpy(h, VDI_TEXT, strlen(VDI_TEXT));
	put_le32(h + VDI_OFF_SIGNATURE, VDI_SIGNATURE);
	put_le32(h + VDI_OFF_VERSION, VDI_VERSION_1_1);
	put_le32(h + VDI_OFF_HDR_SIZE, VDI_HEADER1PLUS_SIZE);
	put_le32(h + VDI_OFF_TYPE, type);
	put_le32(h + VDI_OFF_BMAP, VDI_BMAP_OFFSET);
	put_le32(h + VDI_OFF_DATA, (uint32_t)offset_data);
	put_le32(h + VDI_OFF_SECTOR_SIZE, VDI_SECTOR);
	put_le64(h + VDI_OFF_DISK_SIZE, size);
	put_le32(h + VDI_OFF_BLOCK_SIZE, block_size);
	put_le32(h + VDI_OFF_BLOCKS, blocks);
	put_le32(h + VDI_OFF_ALLOCATED, type == VDI_TYPE_FIXED ? blocks : 0);
	put_le32(h + VDI_OFF_LCHS + 12, VDI_SECTOR); /* cbSector; zero CHS: not set */
}

/* Writes the block map of a new image: identity for a fixed image, all free otherwise. */
static int vdi_create_bmap(struct host_file *f, uint32_t blocks, bool fixed)
{
	uint8_t buf[4096];

	for (uint32_t i = 0; i < blocks;) {
		uint32_t n = blocks - i < sizeof(buf) / 4 ? blocks - i : sizeof(buf) / 4;
		int ret;

		for (uint32_t j = 0; j < n; j++)
			put_le32(buf + j * 4, fixed ? i + j : VDI_BLOCK_FREE);
		ret = host_file_pwrite(f, VDI_BMAP_OFFSET + (uint64_t)i * 4, buf, (size_t)n * 4);
		if (ret < 0)
			return ret;
		i += n;
	}
	return 0;
}

/* Makes the data area [start, end) of a fixed image read as zeroes, as preallocation asks. */
int vdi_prealloc(struct host_file *f, uint64_t start, uint64_t end, enum block_prealloc p)
{
	int ret;

	if (p == BLOCK_PREALLOC_FALLOC) {
		ret = host_file_allocate(f, start, end - start);
		if (ret < 0 && ret != -EOPNOTSUPP)
			return ret;
	} else if (p == BLOCK_PREALLOC_FULL && end > start) {
		ret = host_file_fill_zeroes(f, start, end - start);
		if (ret < 0)
			return ret;
	}
	return host_file_truncate(f, end);
}

int vdi_create(const char *filename, const struct block_create_args *args)
{
	struct vdi_create_opts o;
	uint8_t h[VDI_SECTOR], link[16], pmod[16];
	uint64_t size = args->size, blocks64, offset_data, end;
	uint32_t type, blocks;
	char *fmt = NULL;
	struct host_file f;
	int ret = vdi_parse_opts(filename, args->opts, &o);

	if (ret < 0)
		return ret;
	if (args->backing) {
		uint64_t psize = 0;

		if (o.fixed)
			return error_set(-EINVAL, "%s: a differencing VDI cannot be static",
					 filename);
		ret = vdi_parent_info(filename, args, link, pmod, &psize, &fmt);
		if (ret < 0)
			return ret;
		if (!size)
			size = psize;
		if (strlen(VDI_BACKING_PREFIX) + strlen(fmt) + 1 + strlen(args->backing) >=
		    VDI_COMMENT_SIZE) {
			free(fmt);
			return error_set(-ENAMETOOLONG,
					 "%s: backing file name too long to record in a VDI",
					 filename);
		}
	}
	size = (size + VDI_SECTOR - 1) / VDI_SECTOR * VDI_SECTOR;
	blocks64 = (size + o.block_size - 1) / o.block_size;
	if (blocks64 > VDI_BLOCKS_MAX) {
		free(fmt);
		return error_set(-EFBIG, "%s: %" PRIu64 " bytes is too large for a VDI", filename,
				 size);
	}
	blocks = (uint32_t)blocks64;
	offset_data = VDI_BMAP_OFFSET + (uint64_t)blocks * 4;
	offset_data = (offset_data + VDI_DATA_ALIGN - 1) / VDI_DATA_ALIGN * VDI_DATA_ALIGN;
	type = args->backing ? VDI_TYPE_DIFF : o.fixed ? VDI_TYPE_FIXED : VDI_TYPE_NORMAL;

	vdi_build_header(h, type, size, o.block_size, blocks, offset_data);
	ret = vdi_uuid_generate(h + VDI_OFF_UUID_CREATE);
	if (ret == 0)
		ret = vdi_uuid_generate(h + VDI_OFF_UUID_MODIFY);
	if (ret < 0) {
		free(fmt);
		return error_set(ret, "%s: cannot generate a UUID", filename);
	}
	if (args->backing) {
		snprintf((char *)h + VDI_OFF_COMMENT, VDI_COMMENT_SIZE, "%s%s:%s",
			 VDI_BACKING_PREFIX, fmt, args->backing);
		memcpy(h + VDI_OFF_UUID_LINK, link, 16);
		memcpy(h + VDI_OFF_UUID_PARENT_MODIFY, pmod, 16);
	}
	free(fmt);

	ret = host_file_open(&f, filename, HOST_FILE_RDWR | HOST_FILE_CREATE);
	if (ret == -EEXIST) {
		ret = host_file_open(&f, filename, HOST_FILE_RDWR);
		if (ret == 0 && (ret = host_file_truncate(&f, 0)) < 0)
			host_file_close(&f);
	}
	if (ret < 0)
		return error_set(ret, "%s: cannot create the image", filename);
	ret = host_file_pwrite(&f, 0, h, sizeof(h));
	if (ret == 0)
		ret = vdi_create_bmap(&f, blocks, o.fixed);
	end = offset_data + (o.fixed ? (uint64_t)blocks * o.block_size : 0);
	if (ret == 0)
		ret = vdi_prealloc(&f, offset_data, end, o.fixed ? o.prealloc : BLOCK_PREALLOC_OFF);
	if (ret == 0)
		ret = host_file_flush(&f);
	host_file_close(&f);
	if (ret < 0)
		return error_set(ret, "%s: cannot write the new image", filename);
	return 0;
}
