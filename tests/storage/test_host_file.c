/* Tests of storage/core/host_file.c: unaligned I/O through O_DIRECT bounce buffers (in /var/tmp, since
 * /tmp may be tmpfs without O_DIRECT), zeroes past EOF, file size kept exact by bounce writes,
 * SEEK_DATA/SEEK_HOLE extents, punch hole and write_zeroes, read-only refusal.
 * Random workloads use fixed seeds and compare against an in-memory shadow.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/host_file.h"
#include "tests/lib/testlib.h"

static char path[256];

static int setup(void **state)
{
	int fd;
	(void)state;
	snprintf(path, sizeof(path), "/var/tmp/minivmm-test-hf-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static bool direct_supported(void)
{
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		print_message("O_DIRECT not supported on %s (%s): skipping this case\n", path,
			      strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

static uint64_t file_size(void)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Random unaligned preadv/pwritev with multi-segment, misaligned buffers against a shadow. */
static void random_workload(int flags, uint64_t seed)
{
	enum { SIZE = 256 * 1024, ROUNDS = 400 };
	uint8_t *shadow = calloc(1, SIZE), *buf = malloc(SIZE + 64), *chk = malloc(SIZE);
	struct host_file f;
	uint64_t s = seed, end = 0;

	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(host_file_open(&f, path, flags | HOST_FILE_RDWR), 0);
	if (flags & HOST_FILE_DIRECT)
		assert_true(f.align == 512 || f.align == 4096);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t off = test_xorshift(&s) % (SIZE - 1);
		size_t len = 1 + test_xorshift(&s) % (SIZE - off < 20000 ? SIZE - off : 20000);
		size_t mis = test_xorshift(&s) % 64; /* misaligned buffer start */
		size_t cut = len > 1 ? test_xorshift(&s) % len : 0;
		struct iovec v[2] = {{buf + mis, cut}, {buf + mis + cut, len - cut}};
		if (test_xorshift(&s) % 2) {
			for (size_t i = 0; i < len; i++)
				buf[mis + i] = (uint8_t)test_xorshift(&s);
			assert_int_equal(host_file_pwritev(&f, off, v, 2), 0);
			memcpy(shadow + off, buf + mis, len);
			if (off + len > end)
				end = off + len;
			/* The file grows exactly as far as written, even with whole-block I/O. */
			assert_int_equal(file_size(), end);
		} else {
			memset(buf, 0xEE, SIZE + 64);
			assert_int_equal(host_file_preadv(&f, off, v, 2), 0);
			assert_memory_equal(buf + mis, shadow + off, len);
		}
	}
	/* Everything past EOF reads as zeroes. */
	assert_int_equal(host_file_pread(&f, 0, chk, SIZE), 0);
	assert_memory_equal(chk, shadow, SIZE);
	host_file_close(&f);
	free(shadow);
	free(buf);
	free(chk);
}

static void test_buffered_random(void **state)
{
	(void)state;
	random_workload(0, 0x1234);
}

static void test_direct_random(void **state)
{
	(void)state;
	if (!direct_supported())
		skip();
	random_workload(HOST_FILE_DIRECT, 0x5678);
}

static void test_direct_aligned_fast_path(void **state)
{
	struct host_file f;
	void *buf = NULL;

	(void)state;
	if (!direct_supported())
		skip();
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(host_file_open(&f, path, HOST_FILE_RDWR | HOST_FILE_DIRECT), 0);
	assert_int_equal(posix_memalign(&buf, 4096, 8192), 0);
	memset(buf, 0x42, 8192);
	assert_int_equal(host_file_pwrite(&f, 4096, buf, 8192), 0);
	assert_int_equal(file_size(), 12288);
	memset(buf, 0, 8192);
	assert_int_equal(host_file_pread(&f, 8192, buf, 8192), 0); /* half past EOF */
	for (int i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)buf)[i], 0x42);
	for (int i = 4096; i < 8192; i++)
		assert_int_equal(((uint8_t *)buf)[i], 0);
	host_file_close(&f);
	free(buf);
}

/* Concurrent unaligned writes to disjoint bytes of the same blocks must not lose each other. */
struct writer {
	struct host_file *f;
	int id;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < 200; i++) {
		uint8_t b = (uint8_t)(w->id + 1);
		uint64_t off = (uint64_t)i * 16 + (uint64_t)w->id; /* interleaved bytes */
		if (host_file_pwrite(w->f, off, &b, 1) < 0)
			return (void *)1;
	}
	return NULL;
}

static void test_direct_concurrent_rmw(void **state)
{
	struct host_file f;
	pthread_t t[4];
	struct writer w[4];
	uint8_t buf[3200];

	(void)state;
	if (!direct_supported())
		skip();
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(host_file_open(&f, path, HOST_FILE_RDWR | HOST_FILE_DIRECT), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer){&f, i};
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(host_file_pread(&f, 0, buf, sizeof(buf)), 0);
	for (int i = 0; i < 200; i++)
		for (int id = 0; id < 16; id++)
			assert_int_equal(buf[i * 16 + id], id < 4 ? id + 1 : 0);
	host_file_close(&f);
}

static void test_extents_and_holes(void **state)
{
	struct host_file f;
	uint8_t buf[65536];
	bool data;
	uint64_t n, alloc;

	(void)state;
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(host_file_open(&f, path, HOST_FILE_RDWR), 0);
	assert_int_equal(host_file_truncate(&f, 4 << 20), 0);
	memset(buf, 7, sizeof(buf));
	assert_int_equal(host_file_pwrite(&f, 1 << 20, buf, sizeof(buf)), 0);
	assert_int_equal(host_file_flush(&f), 0);
	assert_int_equal(host_file_extent(&f, 0, 4 << 20, &data, &n), 0);
	assert_false(data);
	assert_int_equal(n, 1 << 20);
	assert_int_equal(host_file_extent(&f, 1 << 20, 4 << 20, &data, &n), 0);
	assert_true(data);
	assert_true(n >= sizeof(buf) && n < (1 << 20));
	assert_int_equal(host_file_extent(&f, 1 << 20, 100, &data, &n), 0);
	assert_true(data);
	assert_int_equal(n, 100);					    /* bounded by len */
	assert_int_equal(host_file_extent(&f, 8 << 20, 100, &data, &n), 0); /* past EOF */
	assert_false(data);
	assert_int_equal(n, 100);

	/* Punch: reads zero, blocks freed, size kept. */
	assert_int_equal(host_file_allocated(&f, &alloc), 0);
	assert_true(alloc >= sizeof(buf));
	assert_int_equal(host_file_punch_hole(&f, 1 << 20, sizeof(buf)), 0);
	assert_int_equal(host_file_allocated(&f, &alloc), 0);
	assert_true(alloc < sizeof(buf));
	assert_int_equal(host_file_pread(&f, 1 << 20, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(file_size(), 4 << 20);

	/* write_zeroes behaves like a write: it extends the file. */
	memset(buf, 9, 4096);
	assert_int_equal(host_file_pwrite(&f, 100, buf, 4096), 0);
	assert_int_equal(host_file_write_zeroes(&f, 1000, 1000), 0);
	assert_int_equal(host_file_pread(&f, 100, buf, 4096), 0);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(buf[i], (i >= 900 && i < 1900) ? 0 : 9);
	assert_int_equal(host_file_write_zeroes(&f, (4 << 20) + 10, 5000), 0);
	assert_int_equal(file_size(), (4 << 20) + 5010);

	/* allocate keeps the size */
	assert_int_equal(host_file_allocate(&f, 0, 8 << 20), 0);
	assert_int_equal(file_size(), (4 << 20) + 5010);
	host_file_close(&f);

	/* fill_zeroes writes real zeroes (in more than one 1 MiB step) over data and holes alike:
	 * every block is allocated afterwards, and the file grows to cover it. */
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(host_file_open(&f, path, HOST_FILE_RDWR), 0);
	memset(buf, 5, sizeof(buf));
	assert_int_equal(host_file_pwrite(&f, (1 << 20) + 4096, buf, sizeof(buf)), 0);
	assert_int_equal(host_file_pwrite(&f, 0, buf, 10), 0);
	assert_int_equal(host_file_fill_zeroes(&f, 1, (3 << 20) - 1), 0);
	assert_int_equal(file_size(), 3 << 20);
	assert_int_equal(host_file_allocated(&f, &alloc), 0);
	assert_true(alloc >= (3u << 20) - 4096);
	assert_int_equal(host_file_pread(&f, 0, buf, 1), 0);
	assert_int_equal(buf[0], 5);
	for (uint64_t off = 1; off < (3 << 20); off += sizeof(buf)) {
		size_t len =
		    (3 << 20) - off < sizeof(buf) ? (size_t)((3 << 20) - off) : sizeof(buf);
		assert_int_equal(host_file_pread(&f, off, buf, len), 0);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(buf[i], 0);
	}
	assert_int_equal(host_file_fill_zeroes(&f, 0, 0), 0);
	host_file_close(&f);
}

static void test_read_only_and_errors(void **state)
{
	struct host_file f;
	uint8_t b = 1;

	(void)state;
	assert_int_equal(host_file_open(&f, path, 0), 0);
	assert_true(f.read_only);
	assert_int_equal(host_file_pwrite(&f, 0, &b, 1), -EBADF);
	assert_int_equal(host_file_truncate(&f, 0), -EBADF);
	assert_int_equal(host_file_punch_hole(&f, 0, 1), -EBADF);
	assert_int_equal(host_file_pread(&f, UINT64_MAX - 1, &b, 1), -EINVAL);
	host_file_close(&f);
	assert_int_equal(host_file_open(&f, path, HOST_FILE_CREATE), -EEXIST);
	assert_int_equal(host_file_open(&f, "/var/tmp/minivmm-no-such/x", 0), -ENOENT);
	assert_int_equal(host_file_open(&f, "/var/tmp", 0), -EISDIR);
	/* cache_unsafe: flush is a no-op that succeeds */
	assert_int_equal(host_file_open(&f, path, HOST_FILE_RDWR | HOST_FILE_UNSAFE), 0);
	assert_true(f.cache_unsafe);
	assert_int_equal(host_file_flush(&f), 0);
	host_file_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buffered_random),
	    cmocka_unit_test(test_direct_random),
	    cmocka_unit_test(test_direct_aligned_fast_path),
	    cmocka_unit_test(test_direct_concurrent_rmw),
	    cmocka_unit_test(test_extents_and_holes),
	    cmocka_unit_test(test_read_only_and_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
