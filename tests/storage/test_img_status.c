/* tools/img_ops.c img_status (block status resolved through a backing chain, as `map`, `convert`
 * and `compare` see it) and tools/img.c img_is_zero, on real images made through the block API:
 * a 1 MiB raw base with data in its second half, under a 4 MiB qcow2 overlay that writes one
 * cluster.  Past the base's end, the overlay itself must answer "zero".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/img.h"

#define MiB (1024 * 1024ULL)

static char dir[64], base[128], top[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/var/tmp/minivmm-test-img-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(base, sizeof(base), "%s/base.raw", dir);
	snprintf(top, sizeof(top), "%s/top.qcow2", dir);

	struct block_opts none = {0};
	struct block_create_args a = {.size = MiB, .opts = &none};
	if (block_create("raw", base, &a) < 0)
		return -1;
	struct block_device *bs;
	if (block_open(base, "raw", BLOCK_OPEN_RDWR, &bs) < 0)
		return -1;
	static uint8_t data[512 * 1024];
	memset(data, 0x5a, sizeof(data));
	int ret = block_pwrite(bs, 512 * 1024, data, sizeof(data));
	block_close(bs);
	if (ret < 0)
		return -1;

	struct block_create_args t = {
	    .size = 4 * MiB, .backing = "base.raw", .backing_fmt = "raw", .opts = &none};
	if (block_create("qcow2", top, &t) < 0) {
		fprintf(stderr, "cannot create the qcow2 overlay: %s\n", error_msg());
		return -1;
	}
	if (block_open(top, "qcow2", BLOCK_OPEN_RDWR, &bs) < 0)
		return -1;
	memset(data, 0x77, 65536);
	ret = block_pwrite(bs, 2 * MiB, data, 65536);
	block_close(bs);
	return ret < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(base);
	unlink(top);
	rmdir(dir);
	return 0;
}

struct expect {
	uint64_t offset;
	int depth;
	bool allocated, data, zero;
};

static void test_chain_status(void **state)
{
	(void)state;
	struct block_device *bs;
	assert_int_equal(block_open(top, "qcow2", 0, &bs), 0);
	/* what each range must say, whatever run lengths the drivers choose */
	static const struct expect want[] = {
	    {0, 1, true, false, true},		/* base's hole: the base decides */
	    {512 * 1024, 1, true, true, false}, /* base's data */
	    {MiB, 0, false, false, true},	/* past the base's end: zero */
	    {2 * MiB, 0, true, true, false},	/* the overlay's own cluster */
	    {2 * MiB + 65536, 0, false, false, true},
	    {4 * MiB - 512, 0, false, false, true},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t pnum, map;
		int st, depth;
		struct block_device *owner;
		const struct expect *w = &want[i];
		assert_int_equal(img_status(bs, w->offset, bs->size - w->offset, &pnum, &st, &map,
					    &depth, &owner),
				 0);
		assert_true(pnum > 0 && pnum <= bs->size - w->offset);
		if (depth != w->depth || !!(st & BLOCK_STATUS_ALLOCATED) != w->allocated ||
		    !!(st & BLOCK_STATUS_DATA) != w->data || !!(st & BLOCK_STATUS_ZERO) != w->zero)
			fail_msg("offset %llu: depth %d status %#x; want depth %d alloc %d data %d "
				 "zero %d",
				 (unsigned long long)w->offset, depth, st, w->depth, w->allocated,
				 w->data, w->zero);
	}
	/* A run never crosses into content decided otherwise: the base's hole stops at its data. */
	uint64_t pnum, map;
	int st, depth;
	struct block_device *owner;
	assert_int_equal(img_status(bs, 0, bs->size, &pnum, &st, &map, &depth, &owner), 0);
	assert_true(pnum <= 512 * 1024);
	/* Beyond the end is refused, not read. */
	assert_true(img_status(bs, bs->size, 1, &pnum, &st, &map, &depth, &owner) < 0);
	block_close(bs);
}

static void test_is_zero(void **state)
{
	(void)state;
	static uint8_t buf[8192];
	memset(buf, 0, sizeof(buf));
	for (size_t len = 0; len < 40; len++)
		assert_true(img_is_zero(buf, len));
	assert_true(img_is_zero(buf, sizeof(buf)));
	/* one set byte anywhere, in short and long buffers, is found */
	for (size_t pos = 0; pos < sizeof(buf); pos += 97) {
		buf[pos] = 1;
		assert_false(img_is_zero(buf, sizeof(buf)));
		assert_true(img_is_zero(buf, pos));
		assert_false(img_is_zero(buf, pos + 1));
		buf[pos] = 0;
	}
	buf[sizeof(buf) - 1] = 0x80;
	assert_false(img_is_zero(buf, sizeof(buf)));
	assert_true(img_is_zero(buf, sizeof(buf) - 1));
}

static void test_vbox_names(void **state)
{
	(void)state;
	assert_string_equal(img_vbox_format("VDI"), "vdi");
	assert_string_equal(img_vbox_format("vhd"), "vpc");
	assert_string_equal(img_vbox_format("Vmdk"), "vmdk");
	assert_string_equal(img_vbox_format("RAW"), "raw");
	assert_string_equal(img_vbox_format("qcow2"), "qcow2");
	assert_null(img_vbox_format("vpc"));
	assert_null(img_vbox_format(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_chain_status, setup, teardown),
	    cmocka_unit_test(test_is_zero),
	    cmocka_unit_test(test_vbox_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
