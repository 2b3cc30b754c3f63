/* Tests of the raw driver (storage/formats/raw/raw.c) through the block API: a random
 * read/write/discard/ write_zeroes workload against an in-memory shadow (fixed seed, buffered and
 * O_DIRECT), create with each preallocation mode checked with st_blocks, truncate, block_status
 * against qemu-img map, and qemu-img (the independent oracle) reading minivmm-written images
 * identically.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

#define MiB (1024 * 1024)

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-raw");
}

static bool have_qemu_img(void)
{
	if (test_run("qemu-img --version >/dev/null 2>&1") != 0) {
		print_message("qemu-img not installed: skipping the oracle comparison\n");
		return false;
	}
	return true;
}

static void create_raw(const char *name, uint64_t size, const char *opts)
{
	struct block_opts o = {0};
	struct block_create_args a = {.size = size, .opts = &o};

	unlink(test_path(name));
	assert_int_equal(block_opts_parse(&o, opts), 0);
	assert_int_equal(block_create("raw", test_path(name), &a), 0);
	block_opts_free(&o);
}

static void workload(int flags, uint64_t seed)
{
	enum { SIZE = 8 * MiB, ROUNDS = 600 };
	uint8_t *shadow = calloc(1, SIZE), *buf = malloc(256 * 1024), *chk = malloc(SIZE);
	struct block_device *bs;
	uint64_t s = seed;
	char cmd[1024];

	create_raw("work.raw", SIZE, NULL);
	assert_int_equal(block_open(test_path("work.raw"), "raw", BLOCK_OPEN_RDWR | flags, &bs), 0);
	assert_int_equal(bs->size, SIZE);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t op = test_xorshift(&s) % 10;
		/* Mostly sector-aligned requests, some not at all. */
		uint64_t unit = test_xorshift(&s) % 4 ? 512 : 1;
		uint64_t off = (test_xorshift(&s) % (SIZE / unit)) * unit;
		uint64_t len = (1 + test_xorshift(&s) % (256 * 1024 / unit)) * unit;
		if (len > SIZE - off)
			len = SIZE - off;
		if (op < 4) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_xorshift(&s);
			assert_int_equal(block_pwrite(bs, off, buf, len), 0);
			memcpy(shadow + off, buf, len);
		} else if (op < 7) {
			assert_int_equal(block_pread(bs, off, buf, len), 0);
			assert_memory_equal(buf, shadow + off, len);
		} else if (op < 8) {
			assert_int_equal(block_discard(bs, off, len), 0);
			memset(shadow + off, 0, len);
		} else if (op < 9) {
			int zf = test_xorshift(&s) % 2 ? BLOCK_ZERO_MAY_UNMAP : 0;
			assert_int_equal(block_write_zeroes(bs, off, len, zf), 0);
			memset(shadow + off, 0, len);
		} else {
			assert_int_equal(block_flush(bs), 0);
		}
	}
	assert_int_equal(block_pread(bs, 0, chk, SIZE), 0);
	assert_memory_equal(chk, shadow, SIZE);
	/* block_status never calls a range zero that holds data. */
	for (uint64_t off = 0; off < SIZE;) {
		uint64_t n, map;
		int st;
		assert_int_equal(block_status(bs, off, SIZE - off, &n, &st, &map), 0);
		assert_true(st & BLOCK_STATUS_ALLOCATED);
		assert_int_equal(map, off);
		if (st & BLOCK_STATUS_ZERO)
			for (uint64_t i = 0; i < n; i++)
				assert_int_equal(shadow[off + i], 0);
		off += n;
	}
	block_close(bs);

	/* The oracle reads what we wrote. */
	if (have_qemu_img()) {
		test_file_write(test_path("work.shadow"), shadow, SIZE);
		snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f raw -F raw '%s' '%s'",
			 test_path("work.raw"), test_path("work.shadow"));
		assert_int_equal(test_run("%s", cmd), 0);
		shadow[SIZE / 2] ^= 1; /* and would notice a difference */
		test_file_write(test_path("work.shadow"), shadow, SIZE);
		assert_int_equal(test_run("%s", cmd), 1);
	}
	free(shadow);
	free(buf);
	free(chk);
}

static void test_workload_buffered(void **state)
{
	(void)state;
	workload(0, 0xC0FFEE);
}

static void test_workload_direct(void **state)
{
	int fd;
	(void)state;
	create_raw("probe-direct.raw", 4096, NULL);
	fd = open(test_path("probe-direct.raw"), O_RDONLY | O_DIRECT);
	if (fd < 0) {
		print_message("O_DIRECT not supported in %s: skipping\n", test_tmpdir);
		skip();
	}
	close(fd);
	workload(BLOCK_OPEN_CACHE_NONE, 0xBEEF);
}

static uint64_t allocated(const char *name)
{
	struct stat st;
	assert_int_equal(stat(test_path(name), &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_preallocation(void **state)
{
	struct block_device *bs;
	uint8_t *buf = malloc(4 * MiB);

	(void)state;
	create_raw("off.raw", 4 * MiB, "preallocation=off");
	assert_true(allocated("off.raw") < 64 * 1024);
	create_raw("falloc.raw", 4 * MiB, "preallocation=falloc");
	assert_true(allocated("falloc.raw") >= 4 * MiB);
	create_raw("full.raw", 4 * MiB, "preallocation=full");
	assert_true(allocated("full.raw") >= 4 * MiB);
	assert_int_equal(block_open(test_path("full.raw"), NULL, 0, &bs), 0);
	assert_string_equal(bs->drv->name, "raw");
	assert_int_equal(bs->size, 4 * MiB);
	memset(buf, 1, 4 * MiB);
	assert_int_equal(block_pread(bs, 0, buf, 4 * MiB), 0);
	for (size_t i = 0; i < 4 * MiB; i++)
		assert_int_equal(buf[i], 0);
	/* full writes data: no hole reported */
	uint64_t n, map;
	int st;
	assert_int_equal(block_status(bs, 0, 4 * MiB, &n, &st, &map), 0);
	assert_true(st & BLOCK_STATUS_DATA);
	assert_int_equal(n, 4 * MiB);
	block_close(bs);

	/* Bad modes: a clear error naming the file, no file left behind. */
	struct block_opts o = {0};
	struct block_create_args a = {.size = MiB, .opts = &o};
	struct stat sb;
	assert_int_equal(block_opts_parse(&o, "preallocation=bogus"), 0);
	assert_int_equal(block_create("raw", test_path("bad.raw"), &a), -EINVAL);
	assert_non_null(strstr(error_msg(), "bad.raw"));
	assert_non_null(strstr(error_msg(), "bogus"));
	assert_int_equal(stat(test_path("bad.raw"), &sb), -1);
	block_opts_free(&o);
	assert_int_equal(block_opts_parse(&o, "preallocation=metadata"), 0);
	assert_int_equal(block_create("raw", test_path("bad.raw"), &a), -ENOTSUP);
	assert_int_equal(stat(test_path("bad.raw"), &sb), -1);
	block_opts_free(&o);
	assert_int_equal(block_opts_parse(&o, "cluster_size=65536"), 0);
	assert_int_equal(block_create("raw", test_path("bad.raw"), &a), -EINVAL);
	assert_non_null(strstr(error_msg(), "cluster_size"));
	assert_int_equal(stat(test_path("bad.raw"), &sb), -1);
	block_opts_free(&o);
	free(buf);
}

static void test_truncate(void **state)
{
	struct block_device *bs;
	uint8_t buf[4096];

	(void)state;
	create_raw("trunc.raw", MiB, NULL);
	assert_int_equal(block_open(test_path("trunc.raw"), "raw", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 0x33, sizeof(buf));
	assert_int_equal(block_pwrite(bs, MiB - 4096, buf, 4096), 0);
	assert_int_equal(block_truncate(bs, 3 * MiB, BLOCK_PREALLOC_FULL, false), 0);
	assert_int_equal(bs->size, 3 * MiB);
	assert_true(allocated("trunc.raw") >= 2 * MiB);
	assert_int_equal(block_pread(bs, MiB - 4096, buf, 4096), 0);
	assert_int_equal(buf[0], 0x33);
	assert_int_equal(block_pread(bs, 3 * MiB - 4096, buf, 4096), 0);
	assert_int_equal(buf[4095], 0);
	assert_int_equal(block_truncate(bs, MiB / 2, BLOCK_PREALLOC_OFF, false), -EINVAL);
	assert_non_null(strstr(error_msg(), "shrink"));
	assert_int_equal(block_truncate(bs, MiB / 2, BLOCK_PREALLOC_OFF, true), 0);
	assert_int_equal(bs->size, MiB / 2);
	assert_int_equal(block_pread(bs, MiB / 2, buf, 1), -EINVAL);
	assert_int_equal(block_truncate(bs, MiB, BLOCK_PREALLOC_METADATA, false), -ENOTSUP);
	block_close(bs);
	struct stat st;
	assert_int_equal(stat(test_path("trunc.raw"), &st), 0);
	assert_int_equal(st.st_size, MiB / 2);
}

/* Our block_status and qemu-img map agree on which ranges of a sparse raw image hold data. */
static void test_status_matches_qemu_map(void **state)
{
	struct block_device *bs;
	uint8_t buf[65536];
	char cmd[1024];

	(void)state;
	if (!have_qemu_img())
		skip();
	create_raw("map.raw", 16 * MiB, NULL);
	assert_int_equal(block_open(test_path("map.raw"), "raw", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 0x5A, sizeof(buf));
	uint64_t offs[] = {0, 3 * MiB, 3 * MiB + 65536, 9 * MiB, 16 * MiB - 65536};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		assert_int_equal(block_pwrite(bs, offs[i], buf, sizeof(buf)), 0);
	assert_int_equal(block_flush(bs), 0);

	snprintf(cmd, sizeof(cmd), "qemu-img map -f raw --output=json '%s' > '%s'",
		 test_path("map.raw"), test_path("map.json"));
	assert_int_equal(test_run("%s", cmd), 0);
	json_object *map = json_object_from_file(test_path("map.json"));
	assert_non_null(map);
	/* Walk both lists, comparing data-ness byte ranges. */
	uint64_t off = 0;
	size_t n = json_object_array_length(map);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(map, i), *v;
		assert_true(json_object_object_get_ex(e, "start", &v));
		uint64_t start = (uint64_t)json_object_get_int64(v);
		assert_true(json_object_object_get_ex(e, "length", &v));
		uint64_t len = (uint64_t)json_object_get_int64(v);
		assert_true(json_object_object_get_ex(e, "data", &v));
		bool qdata = json_object_get_boolean(v);
		assert_int_equal(start, off);
		for (uint64_t p = start; p < start + len;) {
			uint64_t pnum, m;
			int st;
			assert_int_equal(block_status(bs, p, start + len - p, &pnum, &st, &m), 0);
			assert_int_equal(!!(st & BLOCK_STATUS_DATA), qdata);
			p += pnum;
		}
		off = start + len;
	}
	assert_int_equal(off, 16 * MiB);
	json_object_put(map);
	block_close(bs);
}

/* An image qemu-img wrote reads back through minivmm as qemu-img says it should. */
static void test_reads_qemu_written_image(void **state)
{
	struct block_device *bs;
	uint8_t buf[4096];
	char cmd[1024];

	(void)state;
	if (!have_qemu_img())
		skip();
	unlink(test_path("q.raw"));
	snprintf(cmd, sizeof(cmd),
		 "qemu-img create -q -f raw '%s' 3M && qemu-io -f raw -c 'write -P 0x61 1M 4k' "
		 "'%s' >/dev/null",
		 test_path("q.raw"), test_path("q.raw"));
	if (test_run("%s", cmd) != 0) {
		print_message("qemu-io unavailable: skipping\n");
		skip();
	}
	assert_int_equal(block_open(test_path("q.raw"), NULL, 0, &bs), 0);
	assert_int_equal(bs->size, 3 * MiB);
	assert_int_equal(block_pread(bs, MiB, buf, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0x61);
	assert_int_equal(block_pread(bs, MiB - 4096, buf, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0);
	block_close(bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_workload_buffered),
	    cmocka_unit_test(test_workload_direct),
	    cmocka_unit_test(test_preallocation),
	    cmocka_unit_test(test_truncate),
	    cmocka_unit_test(test_status_matches_qemu_map),
	    cmocka_unit_test(test_reads_qemu_written_image),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
