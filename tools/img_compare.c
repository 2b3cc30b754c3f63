/* `minivmm img compare [-f FMT] [-F FMT] [-s] A B`
 *
 * Exit 0 identical, 1 different ("Content mismatch at offset N!"), 2 on error, as qemu-img.  The
 * walk follows qemu-img's so that both report the same offset: ranges both images call zero are
 * skipped, data against data is compared, data against an unallocated range and the tail of the
 * larger image must read as zeroes; the offset reported is that of the first differing 512-byte
 * sector.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/img.h"

#define IMG_COMPARE_CHUNK (1u << 20)
#define IMG_SECTOR 512

static int64_t img_compare_first_nonzero(const uint8_t *buf, size_t len)
{
	size_t i = 0;
	for (; i + 4096 <= len; i += 4096)
		if (!img_is_zero(buf + i, 4096))
			break;
	for (; i < len; i++)
		if (buf[i])
			return (int64_t)(i & ~(size_t)(IMG_SECTOR -
						       1)); /* qemu-img reports the sector */
	return -1;
}

/* Offset within the chunk of the first differing sector, or -1. */
static int64_t img_compare_sectors(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i += IMG_SECTOR) {
		size_t n = len - i < IMG_SECTOR ? len - i : IMG_SECTOR;
		if (memcmp(a + i, b + i, n))
			return (int64_t)i;
	}
	return -1;
}

/* Check that [offset, offset+len) of bs reads as zeroes; returns 0, 1 (mismatch printed) or 2. */
static int img_compare_zero(struct block_device *bs, const char *name, uint64_t offset,
			    uint64_t len, uint8_t *buf)
{
	while (len) {
		size_t n = len < IMG_COMPARE_CHUNK ? (size_t)len : IMG_COMPARE_CHUNK;
		uint64_t pnum, map;
		int st, depth;
		struct block_device *owner;
		if (img_status(bs, offset, n, &pnum, &st, &map, &depth, &owner) < 0) {
			img_block_fail(name);
			return 2;
		}
		n = (size_t)pnum;
		if (!(st & BLOCK_STATUS_ZERO)) {
			if (block_pread(bs, offset, buf, n) < 0) {
				img_block_fail(name);
				return 2;
			}
			int64_t at = img_compare_first_nonzero(buf, n);
			if (at >= 0) {
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)(offset + (uint64_t)at));
				return 1;
			}
		}
		offset += n;
		len -= n;
	}
	return 0;
}

static int img_compare_run(struct block_device *a, const char *na, struct block_device *b,
			   const char *nb, bool strict, uint8_t *buf1, uint8_t *buf2)
{
	uint64_t common = a->size < b->size ? a->size : b->size;
	uint64_t offset = 0;

	if (strict && a->size != b->size) {
		printf("Strict mode: Image size mismatch!\n");
		return 1;
	}
	while (offset < common) {
		uint64_t len =
		    common - offset < IMG_COMPARE_CHUNK ? common - offset : IMG_COMPARE_CHUNK;
		uint64_t p1, p2, map;
		int s1, s2, depth;
		struct block_device *owner;
		if (img_status(a, offset, len, &p1, &s1, &map, &depth, &owner) < 0) {
			img_block_fail(na);
			return 2;
		}
		if (img_status(b, offset, len, &p2, &s2, &map, &depth, &owner) < 0) {
			img_block_fail(nb);
			return 2;
		}
		size_t n = (size_t)(p1 < p2 ? p1 : p2);
		bool al1 = s1 & BLOCK_STATUS_ALLOCATED, al2 = s2 & BLOCK_STATUS_ALLOCATED;
		const int mask = BLOCK_STATUS_DATA | BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
		if (strict && (s1 & mask) != (s2 & mask)) {
			printf("Strict mode: Offset %llu block status mismatch!\n",
			       (unsigned long long)offset);
			return 1;
		}
		int ret = 0;
		if ((s1 & BLOCK_STATUS_ZERO) && (s2 & BLOCK_STATUS_ZERO)) {
			/* both read as zeroes */
		} else if (al1 && al2) {
			if (block_pread(a, offset, buf1, n) < 0) {
				img_block_fail(na);
				return 2;
			}
			if (block_pread(b, offset, buf2, n) < 0) {
				img_block_fail(nb);
				return 2;
			}
			int64_t at = img_compare_sectors(buf1, buf2, n);
			if (at >= 0) {
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)(offset + (uint64_t)at));
				return 1;
			}
		} else if (al1 != al2) {
			ret = al1 ? img_compare_zero(a, na, offset, n, buf1)
				  : img_compare_zero(b, nb, offset, n, buf1);
		}
		/* neither allocated anywhere in its chain: both read as zeroes */
		if (ret)
			return ret;
		offset += n;
	}
	if (a->size != b->size) {
		struct block_device *big = a->size > b->size ? a : b;
		printf("Warning: Image size mismatch!\n");
		int ret =
		    img_compare_zero(big, big == a ? na : nb, common, big->size - common, buf1);
		if (ret)
			return ret;
	}
	printf("Images are identical.\n");
	return 0;
}

int img_compare_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"force-share", no_argument, NULL, 'U'}, {0}};
	const char *fmt1 = NULL, *fmt2 = NULL;
	bool strict = false;
	int c, share = 0;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:F:spqU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt1 = optarg;
			break;
		case 'F':
			fmt2 = optarg;
			break;
		case 's':
			strict = true;
			break;
		case 'U':
			share = IMG_OPEN_SHARE;
			break;
		case 'p':
		case 'q':
			break;
		default:
			img_bad_option("compare", argc, argv);
			return 2;
		}
	}
	if (argc - optind != 2) {
		img_usage_fail("compare", "expects two images");
		return 2;
	}
	const char *na = argv[optind], *nb = argv[optind + 1];
	struct block_device *a, *b;
	if (img_open(na, fmt1, share, &a))
		return 2;
	if (img_open(nb, fmt2, share, &b)) {
		block_close(a);
		return 2;
	}
	uint8_t *buf1 = malloc(IMG_COMPARE_CHUNK), *buf2 = malloc(IMG_COMPARE_CHUNK);
	int ret = 2;
	if (buf1 && buf2)
		ret = img_compare_run(a, na, b, nb, strict, buf1, buf2);
	else
		img_fail(na, "out of memory");
	free(buf1);
	free(buf2);
	block_close(a);
	block_close(b);
	return ret;
}
