/* Hostile VDI images: each malformed header or block map is refused with a one-line error that
 * names the file and the problem, without a crash (this runs under ASan/UBSan), a hang, or any
 * change to the file (checksummed before and after a read-write open attempt). A seeded fuzz
 * loop flips header and map bytes and checks the same. `check` reports bad entries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

#define MiB (1024 * 1024)

static char img[512], pristine[512];

/* A qemu-img image with four allocated blocks (entries 0..3 -> data 0..3) and holes. */
static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("test-vdibad") < 0)
		return -1;
	snprintf(img, sizeof(img), "%s/bad.vdi", test_tmpdir);
	snprintf(pristine, sizeof(pristine), "%s/good.vdi", test_tmpdir);
	return test_run(
	    "qemu-img create -q -f vdi %s 8M && qemu-io -f vdi -c 'write -P 0x11 0 4M' %s "
	    ">/dev/null",
	    pristine, pristine);
}

/* img = a fresh copy of the pristine image (kept in memory after the first read). */
static void reset(void)
{
	static uint8_t *copy;
	static size_t len;
	FILE *f;

	if (!copy) {
		f = fopen(pristine, "rb");
		assert_non_null(f);
		copy = malloc(8 * MiB);
		len = fread(copy, 1, 8 * MiB, f);
		fclose(f);
	}
	f = fopen(img, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(copy, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void poke(long off, const void *bytes, size_t n)
{
	FILE *f = fopen(img, "r+b");

	assert_non_null(f);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void poke32(long off, uint32_t v)
{
	uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};

	poke(off, b, 4);
}

static void poke64(long off, uint64_t v)
{
	poke32(off, (uint32_t)v);
	poke32(off + 4, (uint32_t)(v >> 32));
}

/* Opening read-write fails with -err (0: any error) and a message naming the file and `what`. */
static void expect_refused(int err, const char *what)
{
	struct block_device *bs = NULL;
	uint64_t before = test_file_hash(img);
	int ret = block_open(img, "vdi", BLOCK_OPEN_RDWR, &bs);

	if (ret == 0) {
		block_close(bs);
		fail_msg("malformed image (%s) was accepted", what);
	}
	if (err)
		assert_int_equal(ret, -err);
	if (!strstr(error_msg(), img) || !strstr(error_msg(), what))
		fail_msg("error '%s' does not name the file and '%s'", error_msg(), what);
	assert_null(strchr(error_msg(), '\n'));
	assert_true(test_file_hash(img) == before);
}

static void test_pristine_opens(void **state)
{
	struct block_device *bs;

	(void)state;
	reset();
	assert_int_equal(block_open(img, "vdi", BLOCK_OPEN_RDWR, &bs), 0);
	block_close(bs);
}

static void test_truncated_header(void **state)
{
	(void)state;
	reset();
	assert_int_equal(truncate(img, 0x100), 0);
	expect_refused(EINVAL, "truncated");
	assert_int_equal(truncate(img, 0x20), 0);
	expect_refused(EINVAL, "truncated");
}

static void test_bad_signature_version(void **state)
{
	(void)state;
	reset();
	poke32(0x40, 0xdeadbeef);
	expect_refused(EINVAL, "signature");
	reset();
	poke32(0x44, 0x00010000);
	expect_refused(ENOTSUP, "version 1.0");
	reset();
	poke32(0x48, 0xffffffff);
	expect_refused(EINVAL, "header size");
}

static void test_bad_fields(void **state)
{
	(void)state;
	reset();
	poke32(0x4c, 3);
	expect_refused(ENOTSUP, "undo");
	reset();
	poke32(0x4c, 77);
	expect_refused(EINVAL, "image type 77");
	reset();
	poke32(0x168, 4096);
	expect_refused(ENOTSUP, "sector size");
	reset();
	poke32(0x178, 0);
	expect_refused(EINVAL, "block size");
	reset();
	poke32(0x178, 3 * MiB);
	expect_refused(EINVAL, "block size");
	reset();
	poke32(0x184, 9);
	expect_refused(EINVAL, "allocated block count");
	reset();
	poke32(0x158, 0x401);
	expect_refused(EINVAL, "data offset");
	reset();
	poke32(0x4c, 4); /* a differencing image must name its parent's UUID */
	expect_refused(EINVAL, "parent UUID");
}

static void test_absurd_sizes(void **state)
{
	(void)state;
	reset();
	poke64(0x170, 1ull << 62);
	expect_refused(EINVAL, "disk size");
	reset();
	poke32(0x180, 0xffffffff);
	expect_refused(EFBIG, "block count");
	reset();
	/* Blocks and size agree, but the map cannot fit in the file. */
	poke32(0x180, 1u << 24);
	poke64(0x170, (uint64_t)1 << 44);
	poke32(0x158, 0x10000000);
	expect_refused(EINVAL, "beyond the end of the file");
}

static void test_bmap_beyond_eof(void **state)
{
	(void)state;
	reset();
	poke32(0x154, 0x7fff0000);
	poke32(0x158, 0x7fff1000);
	expect_refused(EINVAL, "beyond the end of the file");
}

static void test_bmap_entries(void **state)
{
	struct block_device *bs = NULL;
	struct block_check_result r = {0};

	(void)state;
	reset();
	poke32(0x200, 1000);
	expect_refused(EINVAL, "beyond the image");
	reset();
	poke32(0x204, 0); /* block 1 -> data 0, which block 0 uses */
	expect_refused(EINVAL, "both point to data block 0");

	/* Opened for check, the same image is reported, not refused. */
	assert_int_equal(block_open(img, "vdi", BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &r, 0), 0);
	assert_int_equal(r.corruptions, 1);
	block_close(bs);
	assert_int_not_equal(test_run("qemu-img check -q %s 2>/dev/null", img), 0);
}

/* Random corruption of the header and map: refused cleanly, or opened and readable. */
static void test_fuzz(void **state)
{
	static uint8_t buf[MiB];
	uint64_t s = 0xfeedface;

	(void)state;
	for (int round = 0; round < 300; round++) {
		struct block_device *bs = NULL;
		uint64_t before;
		int flips = 1 + test_xorshift(&s) % 4;

		reset();
		for (int i = 0; i < flips; i++) {
			uint8_t v = (uint8_t)test_xorshift(&s);
			long off = 0x40 + test_xorshift(&s) % (0x220 - 0x40);

			poke(off, &v, 1);
		}
		before = test_file_hash(img);
		if (block_open(img, "vdi", 0, &bs) == 0) {
			uint64_t len = bs->size < sizeof(buf) ? bs->size : sizeof(buf);

			for (uint64_t off = 0; off < 4 * MiB && off + len <= bs->size; off += len)
				block_pread(bs, off, buf, len);
			block_close(bs);
		} else {
			assert_non_null(strstr(error_msg(), img));
		}
		assert_true(test_file_hash(img) == before);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pristine_opens),	  cmocka_unit_test(test_truncated_header),
	    cmocka_unit_test(test_bad_signature_version), cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_absurd_sizes),	  cmocka_unit_test(test_bmap_beyond_eof),
	    cmocka_unit_test(test_bmap_entries),	  cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
