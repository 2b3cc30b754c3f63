/* Re-pointing a differencing VHD (storage/formats/vhd/vhd_rebase.c): what the chain reads
 * afterwards, the header fields checked against the specification by
 * tests/storage/vhd_parent_check.py, blocks allocated after a rebase, and every refusal leaving the
 * file unchanged.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

#define SIZE (8u << 20)

static int setup(void **st)
{
	(void)st;
	return test_tmpdir_setup("test-vhdrebase");
}

static int teardown(void **st)
{
	(void)st;
	return test_tmpdir_teardown(NULL);
}

/* A dynamic VHD at name, every byte `fill`. */
static void make_parent(const char *name, int fill)
{
	struct block_device *bs;
	struct block_create_args a = {.size = SIZE};
	static unsigned char buf[1 << 20];
	assert_int_equal(block_create("vpc", test_path(name), &a), 0);
	assert_int_equal(block_open(test_path(name), "vpc", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, fill, sizeof(buf));
	for (uint64_t off = 0; off + sizeof(buf) <= bs->size; off += sizeof(buf))
		assert_int_equal(block_pwrite(bs, off, buf, sizeof(buf)), 0);
	assert_int_equal(block_flush(bs), 0);
	block_close(bs);
}

static void expect_byte(struct block_device *bs, uint64_t off, int want)
{
	unsigned char b[512];
	assert_int_equal(block_pread(bs, off, b, sizeof(b)), 0);
	for (size_t i = 0; i < sizeof(b); i++)
		if (b[i] != want)
			fail_msg("offset %llu reads %#x, expected %#x",
				 (unsigned long long)(off + i), b[i], want);
}

static int spec_check(const char *child, const char *parent, const char *name)
{
	return test_run("python3 tests/storage/vhd_parent_check.py '%s' '%s' '%s'",
			test_path(child), test_path(parent), name);
}

static void test_rebase(void **st)
{
	(void)st;
	struct block_device *c;
	unsigned char buf[4096];
	make_parent("p1.vhd", 0x11);
	make_parent("p2.vhd", 0x22);
	struct block_create_args a = {.size = 0, .backing = "p1.vhd", .backing_fmt = "vpc"};
	assert_int_equal(block_create("vpc", test_path("c.vhd"), &a), 0);
	assert_int_equal(block_open(test_path("c.vhd"), "vpc", BLOCK_OPEN_RDWR, &c), 0);
	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(block_pwrite(c, 0, buf, sizeof(buf)), 0);
	block_close(c);
	assert_int_equal(spec_check("c.vhd", "p1.vhd", "p1.vhd"), 0);
	assert_int_equal(test_run("python3 tests/storage/vhd_parent_check.py '%s' '%s' p2.vhd "
				  "2>/dev/null",
				  test_path("c.vhd"), test_path("p2.vhd")),
			 1); /* the checker can fail */

	/* Relative: a W2ru locator; the chain now reads p2 wherever c has no block (the first
	 * write made c's block 0 whole, with p1's bytes around it). */
	assert_int_equal(
	    block_open(test_path("c.vhd"), "vpc", BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &c), 0);
	assert_int_equal(block_set_backing(c, "p2.vhd", "vpc"), 0);
	assert_string_equal(c->backing_name, "p2.vhd");
	block_close(c);
	assert_int_equal(spec_check("c.vhd", "p2.vhd", "p2.vhd"), 0);
	assert_int_equal(block_open(test_path("c.vhd"), "vpc", BLOCK_OPEN_RDWR, &c), 0);
	assert_string_equal(c->backing_name, "p2.vhd");
	expect_byte(c, 0, 0xcc);
	expect_byte(c, 4096, 0x11);
	expect_byte(c, 3u << 20, 0x22);
	expect_byte(c, 5u << 20, 0x22);
	/* A block allocated after the rebase lands past the new locator, not over it. */
	memset(buf, 0xdd, sizeof(buf));
	assert_int_equal(block_pwrite(c, 6u << 20, buf, sizeof(buf)), 0);
	block_close(c);
	assert_int_equal(spec_check("c.vhd", "p2.vhd", "p2.vhd"), 0);
	assert_int_equal(block_open(test_path("c.vhd"), "vpc", 0, &c), 0);
	expect_byte(c, 6u << 20, 0xdd);
	expect_byte(c, (6u << 20) + 4096, 0x22);
	expect_byte(c, 0, 0xcc);
	block_close(c);

	/* Absolute: a W2ku locator; and back to p1 through the command line. */
	assert_int_equal(
	    block_open(test_path("c.vhd"), "vpc", BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &c), 0);
	assert_int_equal(block_set_backing(c, test_path("p1.vhd"), NULL), 0);
	block_close(c);
	assert_int_equal(spec_check("c.vhd", "p1.vhd", test_path("p1.vhd")), 0);
	assert_int_equal(
	    test_run("./minivmm img rebase -u -b p1.vhd -F vpc '%s'", test_path("c.vhd")), 0);
	assert_int_equal(spec_check("c.vhd", "p1.vhd", "p1.vhd"), 0);
	assert_int_equal(block_open(test_path("c.vhd"), "vpc", 0, &c), 0);
	expect_byte(c, 3u << 20, 0x11);
	expect_byte(c, 6u << 20, 0xdd);
	expect_byte(c, (6u << 20) + 4096, 0x22);
	block_close(c);
	/* qemu-img still accepts the file's structure (it ignores the parent). */
	assert_int_equal(test_run("qemu-img info -f vpc '%s' >/dev/null", test_path("c.vhd")), 0);
}

static void test_refusals(void **st)
{
	(void)st;
	struct block_device *c, *p;
	uint64_t before = test_file_hash(test_path("c.vhd"));

	assert_int_equal(block_open(test_path("c.vhd"), "vpc", BLOCK_OPEN_NO_BACKING, &c), 0);
	assert_int_equal(block_set_backing(c, "p2.vhd", "vpc"), -EROFS);
	block_close(c);
	assert_int_equal(
	    block_open(test_path("c.vhd"), "vpc", BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &c), 0);
	assert_int_equal(block_set_backing(c, "p2.vhd", "qcow2"), -EINVAL);
	assert_non_null(strstr(error_msg(), "must be a VHD"));
	assert_true(block_set_backing(c, "missing.vhd", "vpc") < 0);
	assert_int_equal(block_set_backing(c, NULL, NULL), -ENOTSUP);
	assert_string_equal(c->backing_name, "p1.vhd");
	block_close(c);
	assert_true(test_file_hash(test_path("c.vhd")) == before);

	/* A dynamic VHD has no parent to change. */
	assert_int_equal(block_open(test_path("p1.vhd"), "vpc", BLOCK_OPEN_RDWR, &p), 0);
	assert_int_equal(block_set_backing(p, "p2.vhd", "vpc"), -ENOTSUP);
	block_close(p);
}

/* A crash that lost the trailing footer (the copy at 0 stands in): the next block goes after the
 * locator data, not over it. */
static void test_lost_footer(void **st)
{
	(void)st;
	struct block_device *c;
	unsigned char buf[4096];
	struct block_create_args a = {.size = 0, .backing = "p2.vhd", .backing_fmt = "vpc"};
	assert_int_equal(block_create("vpc", test_path("d.vhd"), &a), 0);
	assert_int_equal(
	    block_open(test_path("d.vhd"), "vpc", BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &c), 0);
	assert_int_equal(block_set_backing(c, "p1.vhd", "vpc"), 0);
	block_close(c);
	for (int round = 0; round < 2; round++) {
		/* round 0: the locator create wrote after the BAT; round 1: the rebase's one. */
		assert_int_equal(test_run("truncate -s -512 '%s'", test_path("d.vhd")), 0);
		assert_int_equal(block_open(test_path("d.vhd"), "vpc", BLOCK_OPEN_RDWR, &c), 0);
		memset(buf, 0xe0 + round, sizeof(buf));
		assert_int_equal(block_pwrite(c, (uint64_t)(2 + 2 * round) << 20, buf, sizeof(buf)),
				 0);
		block_close(c);
		if (spec_check("d.vhd", "p1.vhd", "p1.vhd"))
			fail_msg("round %d: the locator was overwritten", round);
		assert_int_equal(block_open(test_path("d.vhd"), "vpc", 0, &c), 0);
		expect_byte(c, (uint64_t)(2 + 2 * round) << 20, 0xe0 + round);
		expect_byte(c, 0, 0x11);
		block_close(c);
		if (round == 0) {
			assert_int_equal(block_open(test_path("d.vhd"), "vpc",
						    BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &c),
					 0);
			assert_int_equal(block_set_backing(c, "p1.vhd", "vpc"), 0);
			block_close(c);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rebase),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_lost_footer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
