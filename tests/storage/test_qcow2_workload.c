/* qcow2 random workloads (fixed seeds) against an in-memory shadow: write, read, discard,
 * write_zeroes and flush on several cluster sizes, both versions, with and without a backing file;
 * four concurrent writers on disjoint ranges and on interleaved sectors of shared clusters; the
 * driver's own check against qemu-img's (leaks made on purpose are found and repaired).
 */
#include <pthread.h>

#include "tests/storage/qcow2_test_util.h"

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("qcow2-work");
}

struct wl {
	const char *opts;
	bool backing;
	bool v2;
	uint64_t cs;
	uint64_t seed;
	int flags; /* extra open flags (cache mode) */
};

static void span(uint64_t cs, uint64_t size, uint64_t off, uint64_t len, uint64_t *a, uint64_t *b)
{
	*a = (off + cs - 1) & ~(cs - 1);
	*b = off + len == size ? ((off + len + cs - 1) & ~(cs - 1)) : ((off + len) & ~(cs - 1));
	if (*b > size)
		*b = size;
	if (*b < *a)
		*b = *a;
}

static void workload(const struct wl *w)
{
	enum { SIZE = 4 * MiB + 1536, MAXLEN = 200 * KiB };
	const char *img = test_path("w.qcow2");
	struct block_device *bs;
	uint8_t *shadow = calloc(1, SIZE), *base = calloc(1, SIZE), *buf = malloc(MAXLEN);
	uint64_t s = w->seed;

	if (w->backing) {
		make_pattern(test_path("wbase.raw"), SIZE, w->seed * 7);
		size_t l;
		uint8_t *b = read_file(test_path("wbase.raw"), &l);
		memcpy(base, b, SIZE);
		memcpy(shadow, b, SIZE);
		free(b);
	}
	assert_int_equal(qcow2_create_opts(img, SIZE, w->backing ? "wbase.raw" : NULL,
					   w->backing ? "raw" : NULL, w->opts),
			 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR | w->flags, &bs), 0);
	for (int r = 0; r < 400; r++) {
		uint64_t unit = test_xorshift(&s) % 4 ? 512 : 1;
		uint64_t off = (test_xorshift(&s) % (SIZE / unit)) * unit;
		uint64_t len = (1 + test_xorshift(&s) % (MAXLEN / unit)) * unit;
		uint64_t op = test_xorshift(&s) % 12, a, b;
		if (len > SIZE - off)
			len = SIZE - off;
		if (op < 5) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_xorshift(&s);
			assert_int_equal(block_pwrite(bs, off, buf, len), 0);
			memcpy(shadow + off, buf, len);
		} else if (op < 8) {
			assert_int_equal(block_pread(bs, off, buf, len), 0);
			assert_memory_equal(buf, shadow + off, len);
		} else if (op < 9) {
			assert_int_equal(block_discard(bs, off, len), 0);
			span(w->cs, SIZE, off, len, &a, &b);
			if (a < b) {
				if (w->v2 && w->backing)
					memcpy(shadow + a, base + a, b - a);
				else
					memset(shadow + a, 0, b - a);
			}
		} else if (op < 11) {
			int flags = test_xorshift(&s) % 2 ? BLOCK_ZERO_MAY_UNMAP : 0;
			assert_int_equal(block_write_zeroes(bs, off, len, flags), 0);
			memset(shadow + off, 0, len);
		} else {
			assert_int_equal(block_flush(bs), 0);
		}
	}
	/* block_status agrees with the content: zero runs read as zeroes. */
	for (uint64_t off = 0; off < SIZE;) {
		uint64_t pnum, map;
		int st;
		assert_int_equal(block_status(bs, off, SIZE - off, &pnum, &st, &map), 0);
		assert_true(pnum > 0 && pnum <= SIZE - off);
		if ((st & BLOCK_STATUS_ZERO) && (st & BLOCK_STATUS_ALLOCATED))
			for (uint64_t i = 0; i < pnum; i++)
				assert_int_equal(shadow[off + i], 0);
		off += pnum;
	}
	struct block_check_result res;
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
	block_close(bs);
	test_file_write(test_path("wshadow.raw"), shadow, SIZE);
	if (qemu_check(img) != 0) {
		print_message("qemu-img check failed for %s\n", w->opts);
		test_run("qemu-img check '%s'", img);
		fail();
	}
	assert_image_equals_raw(img, test_path("wshadow.raw"));
	assert_int_equal(test_run("qemu-img compare -q '%s' '%s'", img, test_path("wshadow.raw")),
			 0);
	free(shadow);
	free(base);
	free(buf);
}

static void test_workloads(void **state)
{
	(void)state;
	static const struct wl w[] = {
	    {"cluster_size=512", false, false, 512, 11, 0},
	    {"cluster_size=4k,compat=0.10", false, true, 4096, 12, 0},
	    {"cluster_size=64k,refcount_bits=1", false, false, 65536, 13, 0},
	    {"cluster_size=2M", false, false, 2 * MiB, 14, 0},
	    {"cluster_size=4k", true, false, 4096, 15, 0},
	    {"cluster_size=64k,compat=0.10", true, true, 65536, 16, 0},
	    {"cluster_size=512,refcount_bits=64", true, false, 512, 17, 0},
	    /* O_DIRECT: unaligned metadata updates go through host_file's bounce buffers. */
	    {"cluster_size=4k", false, false, 4096, 18, BLOCK_OPEN_CACHE_NONE},
	    {"cluster_size=64k,compat=0.10", true, true, 65536, 19, BLOCK_OPEN_CACHE_NONE},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		workload(&w[i]);
}

struct thr {
	struct block_device *bs;
	int id;
	bool interleaved;
	uint64_t size;
	int errors;
};

/* Deterministic content of sector `sec` as last written by its owner. */
static uint8_t sector_byte(uint64_t sec, int round)
{
	return (uint8_t)(sec * 31 + (uint64_t)round * 7 + 1);
}

static void *writer(void *arg)
{
	struct thr *t = arg;
	uint8_t buf[512 * 8];
	uint64_t s = 1000 + (uint64_t)t->id, secs = t->size / 512;

	for (int r = 0; r < 300; r++) {
		uint64_t sec;
		if (t->interleaved) {
			/* Thread t owns sectors with sec % 4 == t: every cluster is shared by all.
			 */
			sec = (test_xorshift(&s) % (secs / 4)) * 4 + (uint64_t)t->id;
			memset(buf, sector_byte(sec, 0), 512);
			if (block_pwrite(t->bs, sec * 512, buf, 512) < 0)
				t->errors++;
		} else {
			/* Thread t owns the t-th quarter of the disk. */
			uint64_t q = secs / 4;
			sec = (uint64_t)t->id * q + test_xorshift(&s) % (q - 8);
			for (int i = 0; i < 8; i++)
				memset(buf + i * 512, sector_byte(sec + (uint64_t)i, 0), 512);
			if (block_pwrite(t->bs, sec * 512, buf, sizeof(buf)) < 0)
				t->errors++;
		}
		if (r % 50 == 0 && block_flush(t->bs) < 0)
			t->errors++;
	}
	return NULL;
}

static void concurrent(const char *opts, bool interleaved, bool backing)
{
	enum { SIZE = 2 * MiB };
	const char *img = test_path("c.qcow2");
	struct block_device *bs;
	struct thr t[4];
	pthread_t th[4];
	uint8_t *got = malloc(SIZE);

	if (backing) {
		make_pattern(test_path("cbase.raw"), SIZE, 99);
	}
	assert_int_equal(qcow2_create_opts(img, SIZE, backing ? "cbase.raw" : NULL,
					   backing ? "raw" : NULL, opts),
			 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){.bs = bs, .id = i, .interleaved = interleaved, .size = SIZE};
		assert_int_equal(pthread_create(&th[i], NULL, writer, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].errors, 0);
	}
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	/* Every sector is either never written (zero / backing) or its owner's pattern. */
	size_t blen = 0;
	uint8_t *base = backing ? read_file(test_path("cbase.raw"), &blen) : calloc(1, SIZE);
	assert_int_equal(block_open(img, "qcow2", 0, &bs), 0);
	assert_int_equal(block_pread(bs, 0, got, SIZE), 0);
	block_close(bs);
	int written = 0;
	for (uint64_t sec = 0; sec < SIZE / 512; sec++) {
		uint8_t *p = got + sec * 512;
		if (!memcmp(p, base + sec * 512, 512))
			continue;
		written++;
		for (int i = 0; i < 512; i++)
			if (p[i] != sector_byte(sec, 0)) {
				print_message("sector %llu byte %d: %#x\n", (unsigned long long)sec,
					      i, p[i]);
				fail();
			}
	}
	assert_true(written > 500);
	assert_reads_like_qemu(img);
	free(base);
	free(got);
}

static void test_concurrent_disjoint(void **state)
{
	(void)state;
	concurrent("cluster_size=4k", false, false);
	concurrent("cluster_size=512", false, true);
}

static void test_concurrent_shared_clusters(void **state)
{
	(void)state;
	concurrent("cluster_size=4k", true, false);
	concurrent("cluster_size=64k", true, true);
	concurrent("cluster_size=512,compat=0.10", true, false);
}

/* Four threads racing writes, discards, zeroes and flushes over the same clusters: the content of
 * a raced range is unspecified, but the metadata must stay consistent (no leak, no corruption) and
 * each thread's final private-sector write must read back. */
struct racer {
	struct block_device *bs;
	int id;
	int errors;
};

static void *racer(void *arg)
{
	struct racer *r = arg;
	uint64_t s = 77 + (uint64_t)r->id;
	uint8_t buf[16384];

	for (int i = 0; i < 400; i++) {
		uint64_t off = (test_xorshift(&s) % (1024 - 32)) * 512,
			 len = 512 * (1 + test_xorshift(&s) % 32);
		int ret;
		switch (test_xorshift(&s) % 6) {
		case 0:
		case 1:
		case 2:
			memset(buf, (int)(test_xorshift(&s) & 0xff), len);
			ret = block_pwrite(r->bs, off, buf, len);
			break;
		case 3:
			ret = block_discard(r->bs, off, len);
			break;
		case 4:
			ret = block_write_zeroes(r->bs, off, len, (int)(test_xorshift(&s) % 2));
			break;
		default:
			ret = block_flush(r->bs);
		}
		if (ret < 0)
			r->errors++;
	}
	/* A private tail sector, past the raced area. */
	memset(buf, 0xa0 + r->id, 512);
	if (block_pwrite(r->bs, (1024 + (uint64_t)r->id * 64) * 512, buf, 512) < 0)
		r->errors++;
	return NULL;
}

static void race(const char *opts, bool backing)
{
	const char *img = test_path("race.qcow2");
	struct block_device *bs;
	struct racer r[4];
	pthread_t th[4];
	struct block_check_result res;

	if (backing)
		make_pattern(test_path("rbase.raw"), MiB, 5);
	assert_int_equal(
	    qcow2_create_opts(img, MiB, backing ? "rbase.raw" : NULL, backing ? "raw" : NULL, opts),
	    0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.bs = bs, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].errors, 0);
	}
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.leaks + res.corruptions, 0);
	for (int i = 0; i < 4; i++) {
		uint8_t got[512], exp[512];
		memset(exp, 0xa0 + i, 512);
		assert_int_equal(block_pread(bs, (1024 + (uint64_t)i * 64) * 512, got, 512), 0);
		assert_memory_equal(got, exp, 512);
	}
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_reads_like_qemu(img);
}

static void test_concurrent_races(void **state)
{
	(void)state;
	race("cluster_size=4k", false);
	race("cluster_size=512", true);
	race("cluster_size=64k,compat=0.10", true);
	race("cluster_size=4k,refcount_bits=2", false);
}

/* Our check finds what qemu-img finds: a leak made by hand, then repaired. */
static void test_check_leak_repair(void **state)
{
	(void)state;
	const char *img = test_path("leak.qcow2");
	struct block_device *bs;
	struct block_check_result res;
	uint8_t buf[4096];

	assert_int_equal(qcow2_create_opts(img, 4 * MiB, NULL, NULL, "cluster_size=4k"), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < 16; i++)
		assert_int_equal(block_pwrite(bs, (uint64_t)i * 8192, buf, sizeof(buf)), 0);
	block_close(bs);
	/* A leak: one more cluster at the end of the file, counted but used by nothing (16-bit
	 * refcounts; our create puts the first refcount block at cluster 2). */
	struct stat st;
	assert_int_equal(stat(img, &st), 0);
	uint64_t leak_cluster = ((uint64_t)st.st_size + 4095) / 4096;
	assert_int_equal(truncate(img, (off_t)(leak_cluster + 1) * 4096), 0);
	int fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	uint8_t one[2] = {0, 1};
	assert_int_equal(pwrite(fd, one, 2, 2 * 4096 + leak_cluster * 2), 2);
	close(fd);
	assert_int_equal(qemu_check(img), 3); /* qemu-img sees a leak */
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR | BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_true(res.leaks >= 1);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.allocated_clusters, 16);
	assert_int_equal(bs->drv->check(bs, &res, BLOCK_CHECK_FIX_LEAKS), 0);
	assert_int_equal(res.leaks_fixed, res.leaks);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.leaks, 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);

	/* A corruption (refcount 0 for a used data cluster) is found and fixed with FIX_ERRORS. */
	assert_int_equal(
	    test_run("qemu-img map --output=json '%s' | grep -o '\"offset\": [0-9]*' | "
		     "head -1 | grep -o '[0-9]*$' > '%s.off'",
		     img, img),
	    0);
	size_t l;
	char *offtxt = (char *)read_file(test_path("leak.qcow2.off"), &l);
	offtxt[l] = 0;
	uint64_t data_off = strtoull(offtxt, NULL, 10);
	free(offtxt);
	assert_true(data_off > 0);
	fd = open(img, O_RDWR);
	uint8_t zero[2] = {0, 0};
	assert_int_equal(pwrite(fd, zero, 2, 2 * 4096 + (data_off / 4096) * 2), 2);
	close(fd);
	assert_int_equal(qemu_check(img), 2);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR | BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.corruptions, 1);
	assert_int_equal(bs->drv->check(bs, &res, BLOCK_CHECK_FIX_LEAKS | BLOCK_CHECK_FIX_ERRORS),
			 0);
	assert_int_equal(res.corruptions_fixed, 1);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
}

/* Growth of the refcount table: 512-byte clusters with 64-bit refcounts cover little per block. */
static void test_refcount_table_growth(void **state)
{
	(void)state;
	const char *img = test_path("grow.qcow2");
	struct block_device *bs;
	uint8_t *buf = malloc(MiB);
	uint64_t s = 5;

	assert_int_equal(
	    qcow2_create_opts(img, 8 * MiB, NULL, NULL, "cluster_size=512,refcount_bits=64"), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	for (int i = 0; i < 8; i++) {
		for (size_t j = 0; j < MiB; j++)
			buf[j] = (uint8_t)test_xorshift(&s);
		assert_int_equal(block_pwrite(bs, (uint64_t)i * MiB, buf, MiB), 0);
	}
	assert_int_equal(block_truncate(bs, 12 * MiB, BLOCK_PREALLOC_OFF, false), 0);
	assert_int_equal(block_pwrite(bs, 11 * MiB, buf, MiB), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_reads_like_qemu(img);
	assert_int_equal(test_run("qemu-img info '%s' | grep -q 'virtual size: 12 MiB'", img), 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_workloads),
	    cmocka_unit_test(test_concurrent_disjoint),
	    cmocka_unit_test(test_concurrent_shared_clusters),
	    cmocka_unit_test(test_concurrent_races),
	    cmocka_unit_test(test_check_leak_repair),
	    cmocka_unit_test(test_refcount_table_growth),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
