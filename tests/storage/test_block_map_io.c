/* Tests of the mapped-I/O loop (storage/core/block_map_io.c) through a table-driven map: each byte
 * of a small disk is host data (H), zeroes (Z), backing data (B) or the driver's (D). Reads and
 * writes are checked byte by byte through one-byte iovecs (more than IOV_SCRATCH_MAX of them), and
 * a map that is wrong or fails must stop the request with a message, never loop or overrun.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

#define DISK 100
#define HOST_BASE 1000

/* The layout, one letter a byte; runs are cut at letter changes and at most `cap` bytes. */
static const char layout[DISK + 1] = "HHHHHZZZBBBBDDDHHHHHHHHHHHHHHHHZZZZZZZZZBDHZBDHZBDHHHHHHHHHH"
				     "BBBBBBBBBBBBBBBBBBBBDDDDDDDDDDZZZZZHHHHH";

struct fake {
	uint64_t cap; /* longest run the map gives */
	int bad;      /* 1: the third run is 0 bytes long; 2: it is too long */
	int calls;    /* of map, not counting a failure */
	int ends;     /* of end: one per run map described */
	bool writing;
	int fail_at; /* the map fails with -ENXIO at this offset (-1: never) */
	int io_calls;
	uint8_t driver[DISK]; /* what io saw written, or gives to reads */
};

static int fake_map(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
		    struct block_map *m)
{
	struct fake *f = opaque;
	uint64_t n = 1;

	if ((int)offset == f->fail_at)
		return error_set(-ENXIO, "%s: map failed at %llu", bs->filename,
				 (unsigned long long)offset);
	while (n < len && n < f->cap && layout[offset + n] == layout[offset])
		n++;
	m->len = n;
	if (++f->calls == 3 && f->bad)
		m->len = f->bad == 1 ? 0 : len + 1;
	switch (layout[offset]) {
	case 'H':
		m->kind = BLOCK_MAP_HOST;
		m->host = HOST_BASE + offset;
		break;
	case 'Z':
		m->kind = BLOCK_MAP_ZERO;
		break;
	case 'B':
		m->kind = BLOCK_MAP_BACKING;
		break;
	default:
		m->kind = BLOCK_MAP_DRIVER;
		m->host = 7; /* the driver's own value, handed back to io */
	}
	return 0;
}

static int fake_io(struct block_device *bs, void *opaque, uint64_t offset,
		   const struct block_map *m, const struct iovec *part, int n)
{
	struct fake *f = opaque;

	(void)bs;
	f->io_calls++;
	assert_int_equal(iov_size(part, n), m->len);
	if (m->kind == BLOCK_MAP_DRIVER)
		assert_int_equal(m->host, 7);
	if (f->writing)
		iov_to_buf(part, n, 0, f->driver + offset, m->len);
	else
		iov_from_buf(part, n, 0, f->driver + offset, m->len);
	return 0;
}

static void fake_end(struct block_device *bs, void *opaque, const struct block_map *m)
{
	struct fake *f = opaque;

	(void)bs;
	(void)m;
	f->ends++;
}

static const struct block_map_ops fake_ops = {.map = fake_map, .io = fake_io, .end = fake_end};
static const struct block_map_ops fake_ops_no_io = {.map = fake_map};

static uint8_t host_bytes[HOST_BASE + DISK], backing_bytes[DISK];

/* A device over "host.bin" (HOST_BASE + DISK bytes) with "backing.raw" as its backing file. */
static void fake_open(struct block_device *bs, int flags)
{
	memset(bs, 0, sizeof(*bs));
	bs->filename = "fake.img";
	bs->flags = flags;
	bs->size = DISK;
	assert_int_equal(host_file_open(&bs->file, test_path("host.bin"),
					flags & BLOCK_OPEN_RDWR ? HOST_FILE_RDWR : 0),
			 0);
	assert_int_equal(block_open(test_path("backing.raw"), "raw", 0, &bs->backing), 0);
}

static void fake_close(struct block_device *bs)
{
	block_close(bs->backing);
	host_file_close(&bs->file);
}

/* One iovec a byte of buf. */
static void split(uint8_t *buf, struct iovec *v)
{
	for (int i = 0; i < DISK; i++)
		v[i] = (struct iovec){buf + i, 1};
}

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("blockmap") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(host_bytes); i++)
		host_bytes[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(backing_bytes); i++)
		backing_bytes[i] = (uint8_t)(0x80 | i);
	test_file_write(test_path("backing.raw"), backing_bytes, sizeof(backing_bytes));
	return 0;
}

/* What a read of byte i returns (driver runs read 'd'). */
static int expected(int i)
{
	switch (layout[i]) {
	case 'H':
		return host_bytes[HOST_BASE + i];
	case 'Z':
		return 0;
	case 'B':
		return backing_bytes[i];
	}
	return 'd';
}

static void test_read_every_kind(void **state)
{
	struct block_device bs;
	uint8_t buf[DISK];
	struct iovec v[DISK];

	(void)state;
	test_file_write(test_path("host.bin"), host_bytes, sizeof(host_bytes));
	fake_open(&bs, 0);
	for (uint64_t cap = 1; cap <= DISK; cap += 33) {
		struct fake f = {.cap = cap, .fail_at = -1};
		memset(f.driver, 'd', sizeof(f.driver));
		memset(buf, 0x55, sizeof(buf));
		split(buf, v);
		assert_int_equal(block_map_preadv(&bs, 0, v, DISK, &fake_ops, &f), 0);
		for (int i = 0; i < DISK; i++) {
			int want = expected(i);
			if (buf[i] != want)
				fail_msg("cap %llu: byte %d (%c) is %#x, not %#x",
					 (unsigned long long)cap, i, layout[i], buf[i], want);
		}
		assert_true(f.io_calls > 0);
		assert_int_equal(f.ends, f.calls);
	}
	/* A read that starts mid-disk gets the same bytes at the same offsets. */
	struct fake f = {.cap = DISK, .fail_at = -1};
	memset(f.driver, 'd', sizeof(f.driver));
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(block_map_preadv(&bs, 37, v, 30, &fake_ops, &f), 0);
	for (int i = 0; i < 30; i++)
		assert_int_equal(buf[i], expected(37 + i));
	assert_int_equal(buf[30], 0x55); /* nothing past the request */
	fake_close(&bs);
}

static void test_write_routes_non_host_runs_to_io(void **state)
{
	struct block_device bs;
	struct fake f = {.cap = 4, .fail_at = -1, .writing = true};
	uint8_t buf[DISK], after[HOST_BASE + DISK];
	struct iovec v[DISK];
	FILE *fp;

	(void)state;
	test_file_write(test_path("host.bin"), host_bytes, sizeof(host_bytes));
	fake_open(&bs, BLOCK_OPEN_RDWR);
	for (int i = 0; i < DISK; i++)
		buf[i] = (uint8_t)(0xa0 ^ i);
	split(buf, v);
	assert_int_equal(block_map_pwritev(&bs, 0, v, DISK, &fake_ops, &f), 0);
	fake_close(&bs);
	fp = fopen(test_path("host.bin"), "rb");
	assert_non_null(fp);
	assert_int_equal(fread(after, 1, sizeof(after), fp), sizeof(after));
	fclose(fp);
	/* Host runs land in the file; every other run (zero, backing, driver) goes to io. */
	for (int i = 0; i < DISK; i++) {
		if (layout[i] == 'H') {
			assert_int_equal(after[HOST_BASE + i], buf[i]);
		} else {
			assert_int_equal(after[HOST_BASE + i], host_bytes[HOST_BASE + i]);
			assert_int_equal(f.driver[i], buf[i]);
		}
	}
	assert_memory_equal(after, host_bytes, HOST_BASE);
}

static void test_bad_map_stops(void **state)
{
	struct block_device bs;
	uint8_t buf[DISK];
	struct iovec v = {buf, DISK};

	(void)state;
	test_file_write(test_path("host.bin"), host_bytes, sizeof(host_bytes));
	fake_open(&bs, 0);
	for (int bad = 1; bad <= 2; bad++) {
		struct fake f = {.cap = DISK, .bad = bad, .fail_at = -1};
		assert_int_equal(block_map_preadv(&bs, 0, &v, 1, &fake_ops, &f), -EIO);
		assert_non_null(strstr(error_msg(), "fake.img: bad mapping of offset 8"));
		assert_int_equal(f.calls, 3);
		assert_int_equal(f.ends, 3); /* the bad run too: what map pinned is let go */
	}
	/* A failing map fails the request at once: nothing after it is read. */
	struct fake f = {.cap = DISK, .fail_at = 12};
	assert_int_equal(block_map_preadv(&bs, 0, &v, 1, &fake_ops, &f), -ENXIO);
	assert_int_equal(f.io_calls, 0); /* the driver run starts at 12 */
	assert_int_equal(f.ends, 3);	 /* the three runs before; none for the failed map */
	assert_non_null(strstr(error_msg(), "map failed at 12"));
	/* A driver run with no io handler is an error, not a crash. */
	f = (struct fake){.cap = DISK, .fail_at = -1};
	assert_int_equal(block_map_preadv(&bs, 0, &v, 1, &fake_ops_no_io, &f), -EIO);
	/* An empty request maps nothing. */
	struct iovec none = {buf, 0};
	f.calls = 0;
	assert_int_equal(block_map_preadv(&bs, 0, &none, 1, &fake_ops, &f), 0);
	assert_int_equal(f.calls, 0);
	fake_close(&bs);
}

static void test_host_error_names_file(void **state)
{
	struct block_device bs;
	struct fake f = {.cap = DISK, .fail_at = -1};
	uint8_t buf[5] = {1, 2, 3, 4, 5};
	struct iovec v = {buf, sizeof(buf)};

	(void)state;
	test_file_write(test_path("host.bin"), host_bytes, sizeof(host_bytes));
	fake_open(&bs, 0); /* the host file is read-only: the write must fail */
	bs.flags |= BLOCK_OPEN_RDWR;
	assert_true(block_map_pwritev(&bs, 0, &v, 1, &fake_ops, &f) < 0);
	assert_non_null(strstr(error_msg(), "fake.img: write at offset 1000 failed"));
	fake_close(&bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_every_kind),
	    cmocka_unit_test(test_write_routes_non_host_runs_to_io),
	    cmocka_unit_test(test_bad_map_stops),
	    cmocka_unit_test(test_host_error_names_file),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
