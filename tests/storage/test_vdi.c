/* Tests of the VDI driver (storage/vdi*.c) through the block API, with qemu-img as the oracle:
 * qemu-img-made dynamic and static images read identically to their raw source; minivmm-made
 * images after a random workload (fixed seeds) pass `qemu-img check` and `qemu-img compare` against
 * the shadow; a differencing image over a base; concurrent writers; truncate; block status; UUIDs;
 * repair of a crash-left orphan block.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
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
#include "storage/core/block_path.h"
#include "tests/lib/testlib.h"

#define MiB (1024 * 1024)

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-vdi");
}

static void create_vdi(const char *path, uint64_t size, const char *opts, const char *backing)
{
	struct block_opts o = {0};
	struct block_create_args a = {.size = size, .opts = &o, .backing = backing};

	unlink(path);
	if (opts)
		assert_int_equal(block_opts_parse(&o, opts), 0);
	if (block_create("vdi", path, &a) != 0)
		fail_msg("create %s: %s", path, error_msg());
	block_opts_free(&o);
}

static struct block_device *open_vdi(const char *path, int flags)
{
	struct block_device *bs = NULL;

	if (block_open(path, "vdi", flags, &bs) != 0)
		fail_msg("open %s: %s", path, error_msg());
	return bs;
}

static void assert_reads(struct block_device *bs, const uint8_t *expect, size_t size)
{
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	assert_int_equal(block_pread(bs, 0, buf, size), 0);
	for (size_t i = 0; i < size; i++)
		if (buf[i] != expect[i])
			fail_msg("byte %zu: read %#x, expected %#x", i, buf[i], expect[i]);
	free(buf);
}

/* A pattern with data, zero blocks, sparse holes and partial blocks. */
static void fill_pattern(uint8_t *p, size_t size, uint64_t seed)
{
	uint64_t s = seed;

	memset(p, 0, size);
	for (size_t off = 0; off < size; off += 256 * 1024) {
		uint64_t kind = test_xorshift(&s) % 4;
		size_t n = size - off < 256 * 1024 ? size - off : 256 * 1024;

		if (kind == 0) /* hole */
			continue;
		for (size_t i = 0; i < n; i++)
			p[off + i] = kind == 1 ? 0 : (uint8_t)test_xorshift(&s);
	}
}

/* qemu-img converts a raw pattern to dynamic and static VDIs; minivmm must read the same bytes. */
static void test_reads_qemu_images(void **state)
{
	size_t size = 9 * MiB + 3 * 512;
	uint8_t *p = malloc(size);
	const char *kinds[] = {"", "-o static=on"};

	(void)state;
	fill_pattern(p, size, 0x1234);
	test_file_write(test_path("src.raw"), p, size);
	assert_int_equal(test_run("truncate -s %zu %s", size, test_path("src.raw")), 0);
	for (int k = 0; k < 2; k++) {
		struct block_device *bs;
		uint8_t uuid[16];

		unlink(test_path("q.vdi"));
		assert_int_equal(test_run("qemu-img convert -f raw -O vdi %s %s %s", kinds[k],
					  test_path("src.raw"), test_path("q.vdi")),
				 0);
		bs = open_vdi(test_path("q.vdi"), 0);
		assert_int_equal(bs->size, size);
		assert_reads(bs, p, size);
		assert_int_equal(bs->drv->get_uuid(bs, uuid), 0);
		block_close(bs);
	}
	free(p);
}

/* Random writes, zeroes, discards and reads against a shadow; then qemu-img check and compare. */
static void workload(const char *name, const char *opts, int flags, uint64_t seed)
{
	enum { SIZE = 12 * MiB + 4096, ROUNDS = 700, MAXLEN = 3 * MiB };
	uint8_t *shadow = calloc(1, SIZE), *buf = malloc(MAXLEN);
	struct block_device *bs;
	uint64_t s = seed;

	create_vdi(test_path(name), SIZE, opts, NULL);
	bs = open_vdi(test_path(name), BLOCK_OPEN_RDWR | flags);
	assert_int_equal(bs->size, SIZE);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t op = test_xorshift(&s) % 12;
		uint64_t unit = test_xorshift(&s) % 4 ? 512 : 1;
		uint64_t off = (test_xorshift(&s) % (SIZE / unit)) * unit;
		uint64_t len = (1 + test_xorshift(&s) %
					((test_xorshift(&s) % 3 ? 256 * 1024 : MAXLEN) / unit)) *
			       unit;

		if (len > SIZE - off)
			len = SIZE - off;
		if (op < 5) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_xorshift(&s);
			if (block_pwrite(bs, off, buf, len) != 0)
				fail_msg("write: %s", error_msg());
			memcpy(shadow + off, buf, len);
		} else if (op < 8) {
			assert_int_equal(block_pread(bs, off, buf, len), 0);
			assert_memory_equal(buf, shadow + off, len);
		} else if (op < 10) {
			int flags = op == 8 ? BLOCK_ZERO_MAY_UNMAP : 0;

			if (block_write_zeroes(bs, off, len, flags) != 0)
				fail_msg("write_zeroes: %s", error_msg());
			memset(shadow + off, 0, len);
		} else if (op < 11) {
			/* Whole 1 MiB blocks go back to unallocated and read zero. */
			uint64_t b = off / MiB * MiB, e = (off + len) / MiB * MiB;

			if (e > b) {
				assert_int_equal(block_discard(bs, b, e - b), 0);
				memset(shadow + b, 0, e - b);
			}
		} else {
			assert_int_equal(block_flush(bs), 0);
		}
	}
	assert_reads(bs, shadow, SIZE);
	block_close(bs);

	test_file_write(test_path("shadow.raw"), shadow, SIZE);
	assert_int_equal(test_run("qemu-img check -f vdi %s >/dev/null", test_path(name)), 0);
	assert_int_equal(test_run("qemu-img compare -q -f vdi -F raw %s %s", test_path(name),
				  test_path("shadow.raw")),
			 0);
	bs = open_vdi(test_path(name), 0);
	assert_reads(bs, shadow, SIZE);
	block_close(bs);
	free(shadow);
	free(buf);
}

static void test_workload_dynamic(void **state)
{
	(void)state;
	workload("dyn.vdi", NULL, 0, 0x9e3779b97f4a7c15ull);
}

/* O_DIRECT: unaligned metadata and data writes go through host_file's bounce buffers. */
static void test_workload_direct(void **state)
{
	(void)state;
	workload("direct.vdi", NULL, BLOCK_OPEN_CACHE_NONE, 0x8badf00ddeadbeefull);
}

static void test_workload_static(void **state)
{
	(void)state;
	workload("static.vdi", "static=on", 0, 0x2545f4914f6cdd1dull);
}

static void test_workload_falloc(void **state)
{
	(void)state;
	workload("falloc.vdi", "preallocation=falloc", 0, 0x5851f42d4c957f2dull);
}

/* A fixed image: qemu-img sees every block allocated, and the info says "fixed". */
static void test_static_layout(void **state)
{
	struct block_device *bs;
	struct json_object *info = json_object_new_object();
	uint64_t pnum, map;
	int st;

	(void)state;
	create_vdi(test_path("fixed.vdi"), 4 * MiB, "static=on", NULL);
	bs = open_vdi(test_path("fixed.vdi"), 0);
	assert_int_equal(bs->drv->info(bs, info), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(info, "type")), "fixed");
	assert_int_equal(block_status(bs, 0, 4 * MiB, &pnum, &st, &map), 0);
	assert_true(st & BLOCK_STATUS_ALLOCATED);
	assert_true(st & BLOCK_STATUS_DATA);
	assert_int_equal(pnum, 4 * MiB); /* contiguous: one run */
	block_close(bs);
	json_object_put(info);
	assert_int_equal(test_run("qemu-img check %s >/dev/null", test_path("fixed.vdi")), 0);
	assert_int_equal(test_run("qemu-img map --output=json %s | grep -q '\"data\": false'",
				  test_path("fixed.vdi")),
			 1);
}

/* A differencing image over a base: unallocated blocks read the base, writes stay in the diff. */
static void test_diff_image(void **state)
{
	enum { SIZE = 6 * MiB + 512 };
	uint8_t *base = malloc(SIZE), *shadow = malloc(SIZE), *buf = malloc(MiB + 4096);
	struct block_device *bs;
	struct json_object *info = json_object_new_object();
	uint8_t u_base[16];
	uint64_t s = 77;

	(void)state;
	fill_pattern(base, SIZE, 99);
	create_vdi(test_path("base.vdi"), SIZE, NULL, NULL);
	bs = open_vdi(test_path("base.vdi"), BLOCK_OPEN_RDWR);
	assert_int_equal(block_pwrite(bs, 0, base, SIZE), 0);
	assert_int_equal(bs->drv->get_uuid(bs, u_base), 0);
	block_close(bs);

	create_vdi(test_path("diff.vdi"), 0, NULL, "base.vdi");
	memcpy(shadow, base, SIZE);
	bs = open_vdi(test_path("diff.vdi"), BLOCK_OPEN_RDWR);
	assert_int_equal(bs->size, SIZE);
	assert_non_null(bs->backing);
	assert_string_equal(bs->backing_name, "base.vdi");
	assert_int_equal(bs->drv->info(bs, info), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(info, "type")), "diff");
	assert_reads(bs, shadow, SIZE);
	for (int r = 0; r < 300; r++) {
		uint64_t op = test_xorshift(&s) % 6;
		uint64_t off = test_xorshift(&s) % SIZE;
		uint64_t len = 1 + test_xorshift(&s) % (MiB + 4096);

		if (len > SIZE - off)
			len = SIZE - off;
		if (op < 3) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_xorshift(&s);
			assert_int_equal(block_pwrite(bs, off, buf, len), 0);
			memcpy(shadow + off, buf, len);
		} else if (op < 4) {
			int flags = test_xorshift(&s) % 2 ? BLOCK_ZERO_MAY_UNMAP : 0;

			assert_int_equal(block_write_zeroes(bs, off, len, flags), 0);
			memset(shadow + off, 0, len);
		} else if (op < 5) {
			uint64_t b = off / MiB * MiB, e = (off + len) / MiB * MiB;

			if (e > b) { /* discarded blocks read zero, never the base underneath */
				assert_int_equal(block_discard(bs, b, e - b), 0);
				memset(shadow + b, 0, e - b);
			}
		} else {
			assert_int_equal(block_pread(bs, off, buf, len), 0);
			assert_memory_equal(buf, shadow + off, len);
		}
	}
	assert_reads(bs, shadow, SIZE);
	block_close(bs);
	json_object_put(info);

	bs = open_vdi(test_path("diff.vdi"), 0);
	assert_reads(bs, shadow, SIZE);
	block_close(bs);
	bs = open_vdi(test_path("base.vdi"), 0); /* the base is untouched */
	assert_reads(bs, base, SIZE);
	block_close(bs);
	free(base);
	free(shadow);
	free(buf);
}

/* Snapshots of snapshots: base <- s1 <- s2, each layer written; every layer reads its own view. */
static void test_diff_chain(void **state)
{
	enum { SIZE = 4 * MiB };
	uint8_t *v[3], *buf = malloc(SIZE);
	const char *names[3] = {"cb.vdi", "c1.vdi", "c2.vdi"};
	struct block_device *bs;

	(void)state;
	for (int l = 0; l < 3; l++) {
		v[l] = malloc(SIZE);
		if (l == 0)
			memset(v[0], 0, SIZE);
		else
			memcpy(v[l], v[l - 1], SIZE);
		/* Layer l writes 1.5 MiB at a layer-specific offset, partly over older writes. */
		memset(v[l] + (uint64_t)l * 1100 * 1024, 0x40 + l, 1536 * 1024);
		create_vdi(test_path(names[l]), l ? 0 : SIZE, NULL, l ? names[l - 1] : NULL);
		bs = open_vdi(test_path(names[l]), BLOCK_OPEN_RDWR);
		assert_int_equal(block_pwrite(bs, (uint64_t)l * 1100 * 1024,
					      v[l] + (uint64_t)l * 1100 * 1024, 1536 * 1024),
				 0);
		block_close(bs);
	}
	for (int l = 0; l < 3; l++) {
		bs = open_vdi(test_path(names[l]), 0);
		assert_int_equal(block_pread(bs, 0, buf, SIZE), 0);
		assert_memory_equal(buf, v[l], SIZE);
		block_close(bs);
		free(v[l]);
	}
	free(buf);
}

/* A parent whose UUID is not the one the diff links to is refused, naming both. */
static void test_diff_uuid_mismatch(void **state)
{
	struct block_device *bs = NULL;

	(void)state;
	create_vdi(test_path("p.vdi"), 2 * MiB, NULL, NULL);
	create_vdi(test_path("c.vdi"), 0, NULL, "p.vdi");
	create_vdi(test_path("p.vdi"), 2 * MiB, NULL, NULL); /* same name, new UUID */
	assert_int_equal(block_open(test_path("c.vdi"), "vdi", 0, &bs), -EINVAL);
	assert_non_null(strstr(error_msg(), "c.vdi"));
	assert_non_null(strstr(error_msg(), "UUID"));
}

/* VirtualBox's layout: no name in the comment, the diff in Snapshots/, the base one level up. */
static void test_diff_found_by_uuid(void **state)
{
	uint8_t pat[2 * MiB], got[2 * MiB], comment[256] = {0};
	struct block_device *bs;
	FILE *f;

	(void)state;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	create_vdi(test_path("vbox-base.vdi"), sizeof(pat), NULL, NULL);
	bs = open_vdi(test_path("vbox-base.vdi"), BLOCK_OPEN_RDWR);
	assert_int_equal(block_pwrite(bs, 0, pat, sizeof(pat)), 0);
	block_close(bs);
	create_vdi(test_path("other.vdi"), MiB, NULL, NULL); /* a decoy with another UUID */
	assert_int_equal(test_run("mkdir -p %s", test_path("Snapshots")), 0);
	create_vdi(test_path("Snapshots/{snap}.vdi"), 0, NULL, "../vbox-base.vdi");
	f = fopen(test_path("Snapshots/{snap}.vdi"), "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0x54, SEEK_SET), 0);
	assert_int_equal(fwrite(comment, 1, sizeof(comment), f), sizeof(comment));
	assert_int_equal(fclose(f), 0);

	/* Found in the directory above: outside the image's own, so the user must allow it
	 * (storage/core/block_path.h). */
	assert_int_equal(block_open(test_path("Snapshots/{snap}.vdi"), "vdi", 0, &bs), -EPERM);
	assert_non_null(strstr(error_msg(), "refusing backing file ../vbox-base.vdi"));
	assert_int_equal(block_path_allow_dir(test_path("")), 0);
	bs = open_vdi(test_path("Snapshots/{snap}.vdi"), 0);
	assert_string_equal(bs->backing_name, "../vbox-base.vdi");
	assert_int_equal(block_pread(bs, 0, got, sizeof(got)), 0);
	assert_memory_equal(got, pat, sizeof(pat));
	block_close(bs);
	block_path_allow_clear();

	unlink(test_path("vbox-base.vdi"));
	assert_int_equal(block_open(test_path("Snapshots/{snap}.vdi"), "vdi", 0, &bs), -ENOENT);
	assert_non_null(strstr(error_msg(), "not found"));
}

struct writer {
	struct block_device *bs;
	int id, nthreads;
	uint64_t size;
};

/* Each thread owns the sectors s with s % nthreads == id, written in a seeded random order, so
 * threads race to allocate the same blocks. */
static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	uint64_t sectors = w->size / 512, s = 1000 + w->id;
	uint8_t buf[512];
	uint64_t n = 0;

	for (uint64_t k = 0; k < sectors * 2 / w->nthreads; k++) {
		uint64_t sec = test_xorshift(&s) % sectors;

		sec -= sec % w->nthreads;
		sec += w->id;
		if (sec >= sectors)
			continue;
		memset(buf, 0, sizeof(buf));
		memcpy(buf, &sec, sizeof(sec));
		buf[8] = (uint8_t)w->id + 1;
		if (block_pwrite(w->bs, sec * 512, buf, 512) != 0)
			return (void *)1;
		n++;
	}
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	enum { SIZE = 16 * MiB, THREADS = 4 };
	struct writer w[THREADS];
	pthread_t t[THREADS];
	struct block_device *bs;
	uint8_t *img = malloc(SIZE);

	(void)state;
	create_vdi(test_path("conc.vdi"), SIZE, NULL, NULL);
	bs = open_vdi(test_path("conc.vdi"), BLOCK_OPEN_RDWR);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){bs, i, THREADS, SIZE};
		assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
	assert_int_equal(block_pread(bs, 0, img, SIZE), 0);
	block_close(bs);
	/* Every sector is zero or carries its own number and its owner's id. */
	for (uint64_t sec = 0; sec < SIZE / 512; sec++) {
		uint8_t *p = img + sec * 512;
		uint64_t got;

		memcpy(&got, p, 8);
		if (got == 0 && p[8] == 0)
			continue;
		assert_int_equal(got, sec);
		assert_int_equal(p[8], sec % THREADS + 1);
	}
	test_file_write(test_path("conc.raw"), img, SIZE);
	assert_int_equal(test_run("qemu-img check %s >/dev/null", test_path("conc.vdi")), 0);
	assert_int_equal(test_run("qemu-img compare -q -f vdi -F raw %s %s", test_path("conc.vdi"),
				  test_path("conc.raw")),
			 0);
	free(img);
}

struct mixer {
	struct block_device *bs;
	uint8_t *shadow;
	int id;
};

enum { MIX_SIZE = 24 * MiB, MIX_THREADS = 4, MIX_ROUNDS = 250 };

/* Each thread owns the 1 MiB blocks b with b % MIX_THREADS == id and runs writes, unmapping
 * zeroes, discards and reads on them; discards move other threads' blocks (the last data block
 * fills the freed slot) while those threads do I/O, which must not lose or mix up any data. */
static void *mixer_thread(void *arg)
{
	struct mixer *m = arg;
	uint64_t s = 0x1234567 + m->id;
	uint8_t *buf = malloc(MiB);

	for (int r = 0; r < MIX_ROUNDS; r++) {
		uint64_t blk =
		    (test_xorshift(&s) % (MIX_SIZE / MiB / MIX_THREADS)) * MIX_THREADS + m->id;
		uint64_t in = test_xorshift(&s) % MiB, len = 1 + test_xorshift(&s) % (MiB - in);
		uint64_t off = blk * MiB + in, op = test_xorshift(&s) % 8;
		int ret = 0;

		if (op < 4) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)(test_xorshift(&s) | 1);
			ret = block_pwrite(m->bs, off, buf, len);
			memcpy(m->shadow + off, buf, len);
		} else if (op < 5) {
			ret = block_write_zeroes(m->bs, blk * MiB, MiB, BLOCK_ZERO_MAY_UNMAP);
			memset(m->shadow + blk * MiB, 0, MiB);
		} else if (op < 6) {
			ret = block_discard(m->bs, blk * MiB, MiB);
			memset(m->shadow + blk * MiB, 0, MiB);
		} else {
			ret = block_pread(m->bs, off, buf, len);
			if (ret == 0 && memcmp(buf, m->shadow + off, len) != 0)
				ret = -EILSEQ;
		}
		if (ret != 0) {
			free(buf);
			return (void *)(intptr_t)ret;
		}
	}
	free(buf);
	return NULL;
}

static void test_concurrent_mixed(void **state)
{
	struct mixer m[MIX_THREADS];
	pthread_t t[MIX_THREADS];
	uint8_t *shadow = calloc(1, MIX_SIZE);
	struct block_device *bs;

	(void)state;
	create_vdi(test_path("mix.vdi"), MIX_SIZE, NULL, NULL);
	bs = open_vdi(test_path("mix.vdi"), BLOCK_OPEN_RDWR);
	for (int i = 0; i < MIX_THREADS; i++) {
		m[i] = (struct mixer){bs, shadow, i};
		assert_int_equal(pthread_create(&t[i], NULL, mixer_thread, &m[i]), 0);
	}
	for (int i = 0; i < MIX_THREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(t[i], &r), 0);
		if (r)
			fail_msg("thread %d: error %d (%s)", i, (int)(intptr_t)r, error_msg());
	}
	assert_reads(bs, shadow, MIX_SIZE);
	block_close(bs);
	test_file_write(test_path("mix.raw"), shadow, MIX_SIZE);
	assert_int_equal(test_run("qemu-img check %s >/dev/null", test_path("mix.vdi")), 0);
	assert_int_equal(test_run("qemu-img compare -q -f vdi -F raw %s %s", test_path("mix.vdi"),
				  test_path("mix.raw")),
			 0);
	free(shadow);
}

/* Growing: dynamic within the map's room, fixed with new blocks allocated; qemu-img agrees. */
static void test_truncate_grow(void **state)
{
	const char *opts[] = {NULL, "static=on"};

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct block_device *bs;
		uint8_t tail[4096];

		create_vdi(test_path("grow.vdi"), 3 * MiB, opts[k], NULL);
		bs = open_vdi(test_path("grow.vdi"), BLOCK_OPEN_RDWR);
		memset(tail, 0xa5, sizeof(tail));
		assert_int_equal(block_pwrite(bs, 3 * MiB - 4096, tail, sizeof(tail)), 0);
		if (block_truncate(bs, 7 * MiB + 512, BLOCK_PREALLOC_OFF, false) != 0)
			fail_msg("truncate: %s", error_msg());
		assert_int_equal(bs->size, 7 * MiB + 512);
		assert_int_equal(block_pwrite(bs, 7 * MiB + 512 - 4096, tail, sizeof(tail)), 0);
		block_close(bs);
		assert_int_equal(test_run("qemu-img check %s >/dev/null", test_path("grow.vdi")),
				 0);
		assert_int_equal(
		    test_run("qemu-img info %s | grep -q '7340544 bytes'", test_path("grow.vdi")),
		    0);
		bs = open_vdi(test_path("grow.vdi"), 0);
		assert_int_equal(bs->size, 7 * MiB + 512);
		memset(tail, 0, sizeof(tail));
		assert_int_equal(block_pread(bs, 7 * MiB + 512 - 4096, tail, sizeof(tail)), 0);
		assert_int_equal(tail[0], 0xa5);
		assert_int_equal(tail[4095], 0xa5);
		block_close(bs);
	}
}

/* qemu-img leaves no room to grow the map: the data area moves up (the blocks in the way go to the
 * end of the file); the content and qemu-img's view stay right. */
static void test_grow_moves_data(void **state)
{
	enum { OLD = 200 * MiB, NEW = 700 * MiB };
	const char *opts[] = {"", "-o static=on"};

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct block_device *bs;
		uint8_t *pat = malloc(MiB), *got = malloc(MiB);
		uint64_t blocks[] = {0, 1, 2, 77, 199};

		unlink(test_path("mv.vdi"));
		assert_int_equal(test_run("qemu-img create -q -f vdi %s %s %d", opts[k],
					  test_path("mv.vdi"), OLD),
				 0);
		bs = open_vdi(test_path("mv.vdi"), BLOCK_OPEN_RDWR);
		for (size_t b = 0; b < 5; b++) {
			memset(pat, (int)(b + 1), MiB);
			assert_int_equal(block_pwrite(bs, blocks[b] * MiB, pat, MiB), 0);
		}
		if (block_truncate(bs, NEW, BLOCK_PREALLOC_OFF, false) != 0)
			fail_msg("truncate: %s", error_msg());
		memset(pat, 0x77, MiB);
		assert_int_equal(block_pwrite(bs, NEW - MiB, pat, MiB), 0);
		block_close(bs);
		assert_int_equal(test_run("qemu-img check -q %s", test_path("mv.vdi")), 0);
		bs = open_vdi(test_path("mv.vdi"), 0);
		assert_int_equal(bs->size, NEW);
		for (size_t b = 0; b < 5; b++) {
			memset(pat, (int)(b + 1), MiB);
			assert_int_equal(block_pread(bs, blocks[b] * MiB, got, MiB), 0);
			assert_memory_equal(got, pat, MiB);
		}
		assert_int_equal(block_pread(bs, 3 * MiB, got, MiB), 0);
		memset(pat, 0, MiB);
		assert_memory_equal(got, pat, MiB);
		block_close(bs);
		/* QEMU reads the moved and the new block right too. */
		assert_int_equal(
		    test_run("qemu-io -f vdi -c 'read -P 4 %d %d' -c 'read -P 0x77 %d %d' "
			     "%s >%s 2>&1",
			     77 * MiB, MiB, NEW - MiB, MiB, test_path("mv.vdi"),
			     test_path("mv.out")),
		    0);
		assert_int_equal(test_run("grep -q -i 'fail' %s", test_path("mv.out")), 1);
		assert_int_equal(
		    test_run("test $(grep -c 'read 1048576/1048576' %s) = 2", test_path("mv.out")),
		    0);
		free(pat);
		free(got);
	}
}

static void test_block_status(void **state)
{
	struct block_device *bs;
	uint8_t d[512] = {1};
	uint64_t pnum, map;
	int st;

	(void)state;
	create_vdi(test_path("st.vdi"), 8 * MiB, NULL, NULL);
	bs = open_vdi(test_path("st.vdi"), BLOCK_OPEN_RDWR);
	assert_int_equal(block_pwrite(bs, 2 * MiB + 512, d, sizeof(d)), 0);
	assert_int_equal(block_pwrite(bs, 3 * MiB, d, sizeof(d)), 0);
	assert_int_equal(block_status(bs, 0, 8 * MiB, &pnum, &st, &map), 0);
	assert_int_equal(pnum, 2 * MiB);
	assert_false(st & BLOCK_STATUS_ALLOCATED);
	assert_true(st & BLOCK_STATUS_ZERO);
	assert_int_equal(block_status(bs, 2 * MiB, 6 * MiB, &pnum, &st, &map), 0);
	assert_int_equal(pnum, 2 * MiB); /* data blocks 0 and 1 are contiguous */
	assert_true(st & BLOCK_STATUS_DATA);
	assert_true(st & BLOCK_STATUS_OFFSET_VALID);
	assert_int_equal(map % MiB, 0);
	assert_int_equal(block_status(bs, 4 * MiB, 4 * MiB, &pnum, &st, &map), 0);
	assert_int_equal(pnum, 4 * MiB);
	assert_true(st & BLOCK_STATUS_ZERO);
	block_close(bs);
}

static void test_uuid_and_block_size(void **state)
{
	static const uint8_t u[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
				      0x81, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
	struct block_device *bs;
	struct json_object *info = json_object_new_object();
	uint8_t got[16], pat[3 * MiB];
	struct block_create_args a = {.size = MiB};
	struct block_opts o = {0};

	(void)state;
	create_vdi(test_path("uuid.vdi"), 3 * MiB, "block_size=2M", NULL);
	bs = open_vdi(test_path("uuid.vdi"), BLOCK_OPEN_RDWR);
	assert_int_equal(bs->drv->cluster_size(bs), 2 * MiB);
	assert_int_equal(bs->drv->set_uuid(bs, u), 0);
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i >> 9);
	assert_int_equal(block_pwrite(bs, 0, pat, sizeof(pat)), 0);
	block_close(bs);
	bs = open_vdi(test_path("uuid.vdi"), 0);
	assert_int_equal(bs->drv->get_uuid(bs, got), 0);
	assert_memory_equal(got, u, 16);
	assert_int_equal(bs->drv->info(bs, info), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(info, "uuid")),
			    "12345678-9abc-4def-8102-030405060708");
	assert_int_equal(json_object_get_int(json_object_object_get(info, "block-size")), 2 * MiB);
	assert_reads(bs, pat, sizeof(pat));
	block_close(bs);
	json_object_put(info);
	/* The on-disk order is VirtualBox's: first fields little-endian. */
	assert_int_equal(
	    test_run("xxd -s 0x188 -l 4 -p %s | grep -q 78563412", test_path("uuid.vdi")), 0);

	unlink(test_path("bad.vdi"));
	a.opts = &o;
	assert_int_equal(block_opts_parse(&o, "block_size=3M"), 0);
	assert_int_equal(block_create("vdi", test_path("bad.vdi"), &a), -EINVAL);
	assert_non_null(strstr(error_msg(), "block_size"));
	block_opts_free(&o);
}

/* A kill -9 between the header count and the map entry leaves an orphan data block: reads are
 * right, and a read-write open repairs it so qemu-img check is clean. */
static void test_repair_orphan(void **state)
{
	struct block_device *bs;
	uint8_t d[4096], cnt[4];
	FILE *f;

	(void)state;
	memset(d, 0x5a, sizeof(d));
	create_vdi(test_path("orphan.vdi"), 4 * MiB, NULL, NULL);
	bs = open_vdi(test_path("orphan.vdi"), BLOCK_OPEN_RDWR);
	assert_int_equal(block_pwrite(bs, MiB, d, sizeof(d)), 0);
	block_close(bs);
	f = fopen(test_path("orphan.vdi"), "r+b"); /* count 2, one entry: the crash state */
	assert_non_null(f);
	cnt[0] = 2, cnt[1] = cnt[2] = cnt[3] = 0;
	assert_int_equal(fseek(f, 0x184, SEEK_SET), 0);
	assert_int_equal(fwrite(cnt, 1, 4, f), 4);
	assert_int_equal(fclose(f), 0);
	assert_int_not_equal(test_run("qemu-img check %s >/dev/null 2>&1", test_path("orphan.vdi")),
			     0);
	bs = open_vdi(test_path("orphan.vdi"), BLOCK_OPEN_RDWR);
	block_close(bs);
	assert_int_equal(test_run("qemu-img check %s >/dev/null", test_path("orphan.vdi")), 0);
	bs = open_vdi(test_path("orphan.vdi"), 0);
	memset(d, 0, sizeof(d));
	assert_int_equal(block_pread(bs, MiB, d, sizeof(d)), 0);
	assert_int_equal(d[0], 0x5a);
	assert_int_equal(d[4095], 0x5a);
	block_close(bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_qemu_images),  cmocka_unit_test(test_workload_dynamic),
	    cmocka_unit_test(test_workload_direct),    cmocka_unit_test(test_workload_static),
	    cmocka_unit_test(test_workload_falloc),    cmocka_unit_test(test_static_layout),
	    cmocka_unit_test(test_diff_image),	       cmocka_unit_test(test_diff_chain),
	    cmocka_unit_test(test_diff_uuid_mismatch), cmocka_unit_test(test_diff_found_by_uuid),
	    cmocka_unit_test(test_concurrent_writers), cmocka_unit_test(test_concurrent_mixed),
	    cmocka_unit_test(test_truncate_grow),      cmocka_unit_test(test_grow_moves_data),
	    cmocka_unit_test(test_block_status),       cmocka_unit_test(test_uuid_and_block_size),
	    cmocka_unit_test(test_repair_orphan),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
