/* `minivmm img commit [-f FMT] [-d] FILE`: write FILE's own data into its backing file.
 *
 * Every range FILE allocates (data or zeroes) is copied into the backing image, which is opened a
 * second time, read-write, by the path the chain resolved; a backing file smaller than FILE is
 * grown first.  FILE itself is left as it was (qemu-img's -d): qemu-img empties it, but the block
 * layer has no "make empty" operation, and discard may make an overlay read zeroes instead of its
 * backing file.  The guest's view is the same either way.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/core/disk_lock.h"
#include "tools/img.h"

#define IMG_COMMIT_CHUNK (1u << 20)

static int img_commit_copy(struct block_device *top, const char *file, struct block_device *base)
{
	uint8_t *buf = malloc(IMG_COMMIT_CHUNK);

	if (!buf)
		return img_fail(file, "out of memory");
	for (uint64_t offset = 0; offset < top->size;) {
		uint64_t len = top->size - offset, pnum, map;
		int st;
		if (len > IMG_COMMIT_CHUNK)
			len = IMG_COMMIT_CHUNK;
		if (block_status(top, offset, len, &pnum, &st, &map) < 0)
			goto fail_top;
		if (!(st & BLOCK_STATUS_ALLOCATED)) {
			/* the backing file holds it already */
		} else if (st & BLOCK_STATUS_ZERO) {
			/* Unmapping in a base with its own backing file would expose that file. */
			int flags = base->backing ? 0 : BLOCK_ZERO_MAY_UNMAP;
			if (block_write_zeroes(base, offset, pnum, flags) < 0)
				goto fail_base;
		} else {
			if (block_pread(top, offset, buf, pnum) < 0)
				goto fail_top;
			if (block_pwrite(base, offset, buf, pnum) < 0)
				goto fail_base;
		}
		offset += pnum;
	}
	free(buf);
	return 0;
fail_top:
	free(buf);
	return img_block_fail(file);
fail_base:
	free(buf);
	return img_block_fail(base->filename);
}

int img_commit_main(int argc, char **argv)
{
	const char *fmt = NULL;
	int c;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:dpq", NULL, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'd': /* FILE is always kept (see above) */
		case 'p':
		case 'q':
			break;
		default:
			return img_bad_option("commit", argc, argv);
		}
	}
	if (argc - optind != 1)
		return img_usage_fail("commit", "expects one FILE");
	const char *file = argv[optind];
	struct block_device *top, *base = NULL;
	if (img_open(file, fmt, 0, &top))
		return 1;
	int ret = 1;
	if (!top->backing) {
		img_fail(file, "has no backing file to commit into");
		goto out;
	}
	/* The chain's read lock on the backing file would refuse our own write lock: drop it (a VM
	 * taking the file in between makes the write lock below fail, not corrupt anything). */
	disk_lock_release_chain(top->backing);
	if (img_open(top->backing->filename, top->backing->drv->name, BLOCK_OPEN_RDWR, &base))
		goto out;
	if (base->size < top->size &&
	    block_truncate(base, top->size, BLOCK_PREALLOC_OFF, false) < 0) {
		img_block_fail(base->filename);
		goto out;
	}
	if (img_commit_copy(top, file, base))
		goto out;
	if (block_flush(base) < 0) {
		img_block_fail(base->filename);
		goto out;
	}
	printf("Image committed.\n");
	ret = 0;
out:
	block_close(base);
	block_close(top);
	return ret;
}
