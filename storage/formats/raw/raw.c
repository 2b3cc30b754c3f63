/* The "raw" format: the virtual disk is the file, byte for byte.
 *
 * It has no header to probe (it is the fallback when no format recognises a file) and no metadata,
 * so every operation maps straight onto the host file: holes are the sparse parts of the disk
 * (SEEK_DATA/SEEK_HOLE answer block_status), discard punches holes, and all I/O is lock-free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/core/block.h"

static int raw_open(struct block_device *bs)
{
	int ret = host_file_size(&bs->file, &bs->size);

	if (ret < 0)
		return error_set(ret, "%s: cannot get size: %s", bs->filename, strerror(-ret));
	return 0;
}

static int raw_io_error(struct block_device *bs, const char *what, uint64_t offset, int ret)
{
	return error_set(ret, "%s: %s at offset %llu failed: %s", bs->filename, what,
			 (unsigned long long)offset, strerror(-ret));
}

static int raw_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	int ret = host_file_preadv(&bs->file, offset, iov, iovcnt);
	return ret < 0 ? raw_io_error(bs, "read", offset, ret) : 0;
}

static int raw_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov,
		       int iovcnt)
{
	int ret = host_file_pwritev(&bs->file, offset, iov, iovcnt);
	return ret < 0 ? raw_io_error(bs, "write", offset, ret) : 0;
}

static int raw_discard(struct block_device *bs, uint64_t offset, uint64_t len)
{
	int ret = host_file_punch_hole(&bs->file, offset, len);
	return ret < 0 ? raw_io_error(bs, "discard", offset, ret) : 0;
}

static int raw_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags)
{
	int ret = (flags & BLOCK_ZERO_MAY_UNMAP) ? host_file_punch_hole(&bs->file, offset, len)
						 : host_file_write_zeroes(&bs->file, offset, len);
	return ret < 0 ? raw_io_error(bs, "write zeroes", offset, ret) : 0;
}

static int raw_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
			    int *status, uint64_t *map_offset)
{
	bool data;
	int ret = host_file_extent(&bs->file, offset, len, &data, pnum);

	if (ret < 0)
		return raw_io_error(bs, "block status", offset, ret);
	*status = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET_VALID |
		  (data ? BLOCK_STATUS_DATA : BLOCK_STATUS_ZERO);
	*map_offset = offset;
	return 0;
}

/* Grow or shrink the file to size, preallocating [from, size) as asked. */
static int raw_resize(struct host_file *f, const char *filename, uint64_t from, uint64_t size,
		      enum block_prealloc prealloc)
{
	int ret;

	if (prealloc == BLOCK_PREALLOC_METADATA)
		return error_set(-ENOTSUP, "%s: preallocation=metadata is not supported by raw",
				 filename);
	ret = host_file_truncate(f, size);
	if (ret < 0)
		return error_set(ret, "%s: cannot resize to %llu bytes: %s", filename,
				 (unsigned long long)size, strerror(-ret));
	if (size <= from)
		return 0;
	if (prealloc == BLOCK_PREALLOC_FALLOC) {
		ret = host_file_allocate(f, from, size - from);
		if (ret < 0)
			return error_set(ret, "%s: preallocation=falloc failed: %s", filename,
					 strerror(-ret));
	} else if (prealloc == BLOCK_PREALLOC_FULL) {
		ret = host_file_fill_zeroes(f, from, size - from);
		if (ret < 0)
			return error_set(ret, "%s: preallocation=full failed: %s", filename,
					 strerror(-ret));
	}
	return 0;
}

static int raw_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
			bool shrink_allowed)
{
	int ret;

	(void)shrink_allowed; /* the core already refused an unallowed shrink */
	ret = raw_resize(&bs->file, bs->filename, bs->size, new_size, prealloc);
	if (ret == 0)
		bs->size = new_size;
	return ret;
}

static int raw_create(const char *filename, const struct block_create_args *args)
{
	enum block_prealloc prealloc = BLOCK_PREALLOC_OFF;
	struct host_file f;
	int ret;

	ret = block_opts_get_prealloc(args->opts, filename, &prealloc);
	if (ret < 0)
		return ret;
	if (args->backing)
		return error_set(-ENOTSUP, "%s: raw images have no backing file", filename);
	if (args->size > INT64_MAX)
		return error_set(-EFBIG, "%s: size %llu too large", filename,
				 (unsigned long long)args->size);
	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0)
		return error_set(ret, "%s: cannot create: %s", filename, strerror(-ret));
	ret = raw_resize(&f, filename, 0, args->size, prealloc);
	if (ret == 0) {
		ret = host_file_flush(&f);
		if (ret < 0)
			error_set(ret, "%s: flush failed: %s", filename, strerror(-ret));
	}
	host_file_close(&f);
	if (ret < 0)
		unlink(filename);
	return ret;
}

/* qemu-img shows no format-specific fields for raw; nothing to add. */
static int raw_info(struct block_device *bs, struct json_object *out)
{
	(void)bs;
	(void)out;
	return 0;
}

static uint32_t raw_cluster_size(struct block_device *bs)
{
	(void)bs;
	return 0;
}

static const struct block_driver block_driver_raw = {
    .name = "raw",
    .description = "raw disk image (the file is the disk)",
    .has_backing = false,
    .probe = NULL, /* never probed: the fallback */
    .open = raw_open,
    .create = raw_create,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .info = raw_info,
    .cluster_size = raw_cluster_size,
};
BLOCK_DRIVER(block_driver_raw);
