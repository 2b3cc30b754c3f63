/* `minivmm img rebase [-u] [-f FMT] -b NEW [-F FMT] FILE`
 *
 * Safe mode (the default) keeps what the guest sees: wherever FILE does not decide the content
 * itself and the old backing chain and NEW differ, the old content is copied into FILE before the
 * header is rewritten.  -u only rewrites the header (the caller vouches the content is the same).
 * -b "" removes the backing file (everything FILE leaves to it is copied in).
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/core/block_path.h"
#include "tools/img.h"

#define IMG_REBASE_CHUNK (1u << 20)

/* Read [offset, offset+len) of a backing image, zeroes past its end; nb may be NULL (all zeroes).
 */
static int img_rebase_read(struct block_device *b, uint64_t offset, uint8_t *buf, size_t len)
{
	memset(buf, 0, len);
	if (!b || offset >= b->size)
		return 0;
	size_t n = b->size - offset < len ? (size_t)(b->size - offset) : len;
	return block_pread(b, offset, buf, n);
}

static size_t img_rebase_sector(size_t at, size_t n)
{
	return n - at < 512 ? n - at : 512;
}

/* Write the runs of 512-byte sectors where old and new differ: the rest may stay shared. */
static int img_rebase_write_diff(struct block_device *bs, const char *file, uint64_t offset,
				 const uint8_t *old_buf, const uint8_t *new_buf, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (!memcmp(old_buf + i, new_buf + i, img_rebase_sector(i, n))) {
			i += img_rebase_sector(i, n);
			continue;
		}
		size_t j = i;
		while (j < n && memcmp(old_buf + j, new_buf + j, img_rebase_sector(j, n)))
			j += img_rebase_sector(j, n);
		if (block_pwrite(bs, offset + i, old_buf + i, j - i) < 0)
			return img_block_fail(file);
		i = j;
	}
	return 0;
}

static int img_rebase_copy(struct block_device *bs, const char *file, struct block_device *newb,
			   const char *new_name)
{
	uint8_t *old_buf = malloc(IMG_REBASE_CHUNK), *new_buf = malloc(IMG_REBASE_CHUNK);
	int ret = 0;

	if (!old_buf || !new_buf) {
		ret = img_fail(file, "out of memory");
		goto out;
	}
	for (uint64_t offset = 0; offset < bs->size && ret == 0;) {
		uint64_t len = bs->size - offset, pnum, map;
		int st;
		if (len > IMG_REBASE_CHUNK)
			len = IMG_REBASE_CHUNK;
		if (block_status(bs, offset, len, &pnum, &st, &map) < 0) {
			ret = img_block_fail(file);
			break;
		}
		if (!(st & BLOCK_STATUS_ALLOCATED)) {
			size_t n = (size_t)pnum;
			if (img_rebase_read(bs->backing, offset, old_buf, n) < 0) {
				ret = img_block_fail(file);
				break;
			}
			if (img_rebase_read(newb, offset, new_buf, n) < 0) {
				ret = img_block_fail(new_name);
				break;
			}
			ret = img_rebase_write_diff(bs, file, offset, old_buf, new_buf, n);
		}
		offset += pnum;
	}
out:
	free(old_buf);
	free(new_buf);
	return ret;
}

int img_rebase_main(int argc, char **argv)
{
	const char *fmt = NULL, *backing = NULL, *backing_fmt = NULL;
	bool unsafe = false;
	int c, share = 0;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:b:F:upqU", NULL, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'b':
			backing = optarg;
			break;
		case 'F':
			backing_fmt = optarg;
			break;
		case 'u':
			unsafe = true;
			break;
		case 'U':
			share = IMG_OPEN_SHARE; /* as qemu-img: for NEW, never for FILE */
			break;
		case 'p':
		case 'q':
			break;
		default:
			return img_bad_option("rebase", argc, argv);
		}
	}
	if (!backing)
		return img_usage_fail("rebase",
				      "-b NEW is required (-b \"\" removes the backing file)");
	if (argc - optind != 1)
		return img_usage_fail("rebase", "expects one FILE");
	const char *file = argv[optind];
	if (backing_fmt && !block_driver_find(backing_fmt))
		return img_fail(file, "unknown backing format '%s'", backing_fmt);

	struct block_device *bs, *newb = NULL;
	if (img_open(file, fmt, BLOCK_OPEN_RDWR | (unsafe ? BLOCK_OPEN_NO_BACKING : 0), &bs))
		return 1;
	if (!bs->drv->has_backing) {
		block_close(bs);
		return img_fail(file, "format %s has no backing files", bs->drv->name);
	}
	int ret = 1;
	char *new_path = NULL;
	if (!unsafe && backing[0]) {
		/* NEW is named relative to FILE's directory, as it will be stored. */
		char *dir = strdup(file);
		if (!dir) {
			img_fail(file, "out of memory");
			goto out;
		}
		if (backing[0] == '/' || !strchr(file, '/'))
			new_path = strdup(backing);
		else if (asprintf(&new_path, "%s/%s", dirname(dir), backing) < 0)
			new_path = NULL;
		free(dir);
		if (!new_path) {
			img_fail(file, "out of memory");
			goto out;
		}
		block_path_allow_file(new_path); /* the user's own choice (storage/core/block_path.h) */
		/* Said plainly rather than as a clash of our own write and read locks. */
		struct stat sf, sn;
		if (stat(new_path, &sn) == 0 && fstat(bs->file.fd, &sf) == 0 &&
		    sf.st_dev == sn.st_dev && sf.st_ino == sn.st_ino) {
			img_fail(file, "cannot be its own backing file");
			goto out;
		}
		if (img_open(new_path, backing_fmt, share, &newb))
			goto out;
	}
	if (!unsafe && img_rebase_copy(bs, file, newb, new_path ? new_path : backing))
		goto out;
	if (block_set_backing(bs, backing[0] ? backing : NULL,
			      backing[0] ? (backing_fmt ? backing_fmt
					    : newb	? newb->drv->name
							: NULL)
					 : NULL) < 0 ||
	    block_flush(bs) < 0) {
		img_block_fail(file);
		goto out;
	}
	ret = 0;
out:
	block_close(newb);
	free(new_path);
	block_close(bs);
	return ret;
}
