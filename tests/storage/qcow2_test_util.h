/* Helpers shared by the qcow2 cmocka tests (included by each test program; not a test itself). */
#ifndef MINIVMM_TESTS_QCOW2_TEST_UTIL_H
#define MINIVMM_TESTS_QCOW2_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static inline uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return buf;
}

/* A raw source with data, written zeroes and holes. */
static inline void make_pattern(const char *path, uint64_t size, uint64_t seed)
{
	uint8_t *b = calloc(1, size);
	uint64_t s = seed;
	assert_non_null(b);
	for (uint64_t off = 0; off < size;) {
		uint64_t kind = test_xorshift(&s) % 4, len = 512 * (1 + test_xorshift(&s) % 256);
		if (len > size - off)
			len = size - off;
		if (kind < 2)
			for (uint64_t i = 0; i < len; i++)
				b[off + i] = (uint8_t)test_xorshift(&s);
		off += len;
	}
	test_file_write(path, b, size);
	free(b);
}

/* Read the whole image through the block API and compare with a raw file. */
static inline void assert_image_equals_raw(const char *img, const char *raw)
{
	struct block_device *bs;
	size_t len;
	uint8_t *exp = read_file(raw, &len);
	int ret = block_open(img, NULL, 0, &bs);
	if (ret < 0)
		print_message("open %s: %s\n", img, error_msg());
	assert_int_equal(ret, 0);
	assert_int_equal(bs->size, len);
	uint8_t *got = malloc(len ? len : 1);
	/* Odd-sized chunks cross cluster and L2 boundaries at varying places. */
	for (size_t off = 0; off < len;) {
		size_t n = 300 * 1024 + 512;
		if (n > len - off)
			n = len - off;
		ret = block_pread(bs, off, got + off, n);
		if (ret < 0)
			print_message("read %s: %s\n", img, error_msg());
		assert_int_equal(ret, 0);
		off += n;
	}
	for (size_t i = 0; i < len; i++)
		if (got[i] != exp[i]) {
			print_message("%s differs from %s at byte %zu\n", img, raw, i);
			fail();
		}
	block_close(bs);
	free(got);
	free(exp);
}

/* Read an image with qemu-img (the oracle) into a raw file and compare with minivmm's reading. */
static inline void assert_reads_like_qemu(const char *img)
{
	char raw[600];
	snprintf(raw, sizeof(raw), "%s.oracle.raw", img);
	assert_int_equal(test_run("qemu-img convert -O raw '%s' '%s'", img, raw), 0);
	assert_image_equals_raw(img, raw);
	unlink(raw);
}

static inline int qcow2_create_opts(const char *path, uint64_t size, const char *backing,
				    const char *backing_fmt, const char *opts)
{
	struct block_opts o = {0};
	struct block_create_args a = {
	    .size = size, .backing = backing, .backing_fmt = backing_fmt, .opts = &o};
	unlink(path);
	if (opts)
		assert_int_equal(block_opts_parse(&o, opts), 0);
	int ret = block_create("qcow2", path, &a);
	if (ret < 0)
		print_message("create %s: %s\n", path, error_msg());
	block_opts_free(&o);
	return ret;
}

/* qemu-img check exit status: 0 clean, 3 leaks only, 2 corruptions, 1 could not check. */
static inline int qemu_check(const char *img)
{
	return test_run("qemu-img check -q '%s' >/dev/null 2>&1", img);
}

#endif
