/* qcow2 robustness: malformed images (each refused with a one-line error naming the file and the
 * problem, no crash, the file unchanged) and crash safety (a writer process killed with SIGKILL at
 * points chosen by a fixed seed: qemu-img check finds no corruption and every write completed
 * before the last logged flush reads back).
 */
#include <signal.h>

#include "tests/storage/qcow2_test_util.h"

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("qcow2-robust") < 0)
		return -1;
	make_pattern(test_path("src.raw"), 2 * MiB, 3);
	return test_run("qemu-img convert -O qcow2 -o cluster_size=64k '%s' '%s' && "
			"qemu-img convert -O qcow2 -o cluster_size=64k,compat=0.10 '%s' '%s'",
			test_path("src.raw"), test_path("good.qcow2"), test_path("src.raw"),
			test_path("good2.qcow2"));
}

static void patch64(const char *path, uint64_t off, uint64_t v)
{
	uint8_t b[8];
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	test_file_poke(path, off, b, 8);
}

static void patch32(const char *path, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	test_file_poke(path, off, b, 4);
}

/* Open must fail (read-only and read-write) with a message naming the file and containing `what`;
 * the file must not change. */
static void expect_refused(const char *path, const char *what)
{
	size_t l1, l2;
	uint8_t *before = read_file(path, &l1);
	struct block_device *bs = NULL;

	for (int rw = 0; rw < 2; rw++) {
		int ret = block_open(path, "qcow2", rw ? BLOCK_OPEN_RDWR : 0, &bs);
		const char *msg = error_msg();
		if (ret == 0 || !strstr(msg, path) || !strstr(msg, what)) {
			print_message("expected refusal with '%s', got %d: %s\n", what, ret, msg);
			if (ret == 0)
				block_close(bs);
			fail();
		}
	}
	uint8_t *after = read_file(path, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(before, after, l1);
	free(before);
	free(after);
}

static const char *fresh(const char *src)
{
	const char *p = test_path("bad.qcow2");
	assert_int_equal(test_run("cp '%s' '%s'", src, p), 0);
	return p;
}

static void test_malformed_headers(void **state)
{
	(void)state;
	const char *p;

	p = fresh(test_path("good.qcow2"));
	assert_int_equal(truncate(p, 50), 0);
	expect_refused(p, "truncated");

	p = fresh(test_path("good.qcow2"));
	test_file_poke(p, 0, "QFI\xfa", 4);
	expect_refused(p, "magic");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 40, 1ull << 40); /* L1 table offset */
	expect_refused(p, "L1 table");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 48, 1ull << 40); /* refcount table offset */
	expect_refused(p, "refcount table");

	p = fresh(test_path("good.qcow2"));
	patch32(p, 56, 1u << 30); /* refcount table clusters */
	expect_refused(p, "refcount table");

	p = fresh(test_path("good.qcow2"));
	patch32(p, 96, 7); /* refcount order: 128-bit refcounts would overflow every counter */
	expect_refused(p, "refcount width");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 24, 1ull << 63); /* absurd virtual size */
	expect_refused(p, "too large");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 24, 1ull << 50); /* size larger than the L1 table can map */
	expect_refused(p, "L1 table");

	p = fresh(test_path("good.qcow2"));
	patch32(p, 36, 1u << 30); /* L1 entries */
	expect_refused(p, "L1 table");

	p = fresh(test_path("good.qcow2"));
	patch32(p, 20, 31); /* cluster bits */
	expect_refused(p, "cluster size");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 72, 1ull << 5); /* unknown incompatible feature */
	expect_refused(p, "unknown incompatible feature 5");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 72, 1ull << 2); /* named from the image's feature name table */
	expect_refused(p, "external data file");

	p = fresh(test_path("good.qcow2"));
	patch32(p, 32, 1); /* AES encryption */
	expect_refused(p, "encrypted");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 64, 0x10000); /* snapshot table at the refcount table, with entries */
	patch32(p, 60, 1);
	expect_refused(p, "snapshot");

	p = fresh(test_path("good.qcow2"));
	patch64(p, 40, 0x10000); /* L1 table on top of the refcount table */
	expect_refused(p, "overlaps");

	p = fresh(test_path("good2.qcow2"));
	patch64(p, 8, 0x100000); /* backing name outside the header cluster */
	patch32(p, 16, 10);
	expect_refused(p, "backing file name");
}

/* The name of an unknown feature comes from the image's own feature name table. */
static void test_feature_name_from_table(void **state)
{
	(void)state;
	const char *p = fresh(test_path("good.qcow2"));
	size_t len;
	uint8_t *img = read_file(p, &len);
	uint64_t pos = 112, table = 0, n = 0;

	/* Walk the header extensions to the feature name table. */
	while (pos + 8 < 65536) {
		uint32_t type = (uint32_t)img[pos] << 24 | img[pos + 1] << 16 | img[pos + 2] << 8 |
				img[pos + 3];
		uint32_t elen = (uint32_t)img[pos + 4] << 24 | img[pos + 5] << 16 |
				img[pos + 6] << 8 | img[pos + 7];
		if (type == 0)
			break;
		if (type == 0x6803f857) {
			table = pos + 8;
			n = elen / 48;
		}
		pos += 8 + ((elen + 7) & ~7u);
	}
	assert_true(table && n);
	/* Rename a table entry to describe incompatible bit 9, then set that bit. */
	uint8_t entry[48] = {0, 9};
	memcpy(entry + 2, "teleportation", 13);
	test_file_poke(p, table, entry, sizeof(entry));
	free(img);
	patch64(p, 72, 1ull << 9);
	expect_refused(p, "teleportation");
}

static void test_corrupt_bit(void **state)
{
	(void)state;
	const char *p = fresh(test_path("good.qcow2"));
	struct block_device *bs;
	uint8_t buf[512], exp[512];

	patch64(p, 72, 1ull << 1);
	size_t l1, l2;
	uint8_t *before = read_file(p, &l1);
	assert_int_equal(block_open(p, "qcow2", BLOCK_OPEN_RDWR, &bs), -EACCES);
	assert_non_null(strstr(error_msg(), "corrupt"));
	assert_non_null(strstr(error_msg(), "read-only"));
	/* Read-only works and reads the data. */
	assert_int_equal(block_open(p, "qcow2", 0, &bs), 0);
	assert_int_equal(block_pread(bs, 4096, buf, sizeof(buf)), 0);
	block_close(bs);
	uint8_t *src = read_file(test_path("src.raw"), &l2);
	memcpy(exp, src + 4096, sizeof(exp));
	free(src);
	assert_memory_equal(buf, exp, sizeof(buf));
	uint8_t *after = read_file(p, &l2);
	assert_memory_equal(before, after, l1);
	free(before);
	free(after);
}

static void test_backing_loop(void **state)
{
	(void)state;
	const char *a = test_path("loop_a.qcow2"), *b = test_path("loop_b.qcow2");
	struct block_device *bs;

	assert_int_equal(qcow2_create_opts(a, MiB, NULL, NULL, NULL), 0);
	assert_int_equal(qcow2_create_opts(b, MiB, "loop_a.qcow2", "qcow2", NULL), 0);
	/* Point a at b: a -> b -> a. */
	assert_int_equal(block_open(a, "qcow2", BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &bs), 0);
	assert_int_equal(bs->drv->set_backing(bs, "loop_b.qcow2", "qcow2"), 0);
	block_close(bs);
	size_t l1, l2;
	uint8_t *before = read_file(a, &l1);
	assert_int_equal(block_open(a, NULL, 0, &bs), -ELOOP);
	assert_non_null(strstr(error_msg(), "loop"));
	uint8_t *after = read_file(a, &l2);
	assert_memory_equal(before, after, l1);
	free(before);
	free(after);
}

/* Hostile L2 content: an entry pointing at an unaligned host offset fails the read cleanly. */
static void test_bad_l2_entry(void **state)
{
	(void)state;
	const char *p = fresh(test_path("good.qcow2"));
	struct block_device *bs;
	uint8_t buf[512];

	/* Find the first L2 table through the L1 table. */
	size_t len;
	uint8_t *img = read_file(p, &len);
	uint64_t l1 = 0, l2 = 0;
	for (int i = 0; i < 8; i++)
		l1 = l1 << 8 | img[40 + i];
	for (int i = 0; i < 8; i++)
		l2 = l2 << 8 | img[l1 + (uint64_t)i];
	l2 &= 0x00fffffffffffe00ull;
	free(img);
	assert_true(l2 > 0);
	patch64(p, l2, (1ull << 63) | 0x12200); /* not cluster aligned */
	assert_int_equal(block_open(p, "qcow2", 0, &bs), 0);
	assert_int_equal(block_pread(bs, 0, buf, sizeof(buf)), -EIO);
	assert_non_null(strstr(error_msg(), "unaligned"));
	block_close(bs);

	/* An entry pointing at the L1 table: a guest write must not land on it. */
	patch64(p, l2, (1ull << 63) | l1);
	size_t l1n, l2n;
	uint8_t *before = read_file(p, &l1n);
	assert_int_equal(block_open(p, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(block_pwrite(bs, 0, buf, sizeof(buf)), -EIO);
	assert_non_null(strstr(error_msg(), "metadata"));
	block_close(bs);
	uint8_t *after = read_file(p, &l2n);
	assert_int_equal(l1n, l2n);
	assert_memory_equal(before, after, l1n); /* nothing written */
	free(before);
	free(after);
}

static void test_duplicate_refblock(void **state)
{
	(void)state;
	const char *p = fresh(test_path("good.qcow2"));
	size_t len;
	uint8_t *img = read_file(p, &len);
	uint64_t rt = 0;
	for (int i = 0; i < 8; i++)
		rt = rt << 8 | img[48 + i];
	/* Entry 1 names the same block as entry 0. */
	test_file_poke(p, rt + 8, img + rt, 8);
	free(img);
	expect_refused(p, "listed twice");
	p = fresh(test_path("good.qcow2"));
	patch64(p, rt, rt); /* the refcount table used as its own block */
	expect_refused(p, "overlaps");
}

/* ---- crash safety ---- */

enum { CSIZE = 3 * MiB, CMAXLEN = 96 * KiB, COPS = 300 };

struct cop {
	int kind; /* 0 write, 1 zeroes, 2 discard, 3 flush */
	uint64_t off, len, seed;
};

static void gen_op(uint64_t *s, struct cop *o)
{
	uint64_t k = test_xorshift(s) % 16;
	o->kind = k < 10 ? 0 : k < 12 ? 1 : k < 13 ? 2 : 3;
	o->off = (test_xorshift(s) % (CSIZE / 512)) * 512;
	o->len = (1 + test_xorshift(s) % (CMAXLEN / 512)) * 512;
	if (o->len > CSIZE - o->off)
		o->len = CSIZE - o->off;
	o->seed = test_xorshift(s) | 1;
}

static void fill(uint8_t *buf, const struct cop *o)
{
	uint64_t s = o->seed;
	for (uint64_t i = 0; i < o->len; i++)
		buf[i] = (uint8_t)test_xorshift(&s);
}

static void crash_child(const char *img, const char *log, uint64_t seed, int kill_at)
{
	struct block_device *bs;
	uint8_t *buf = malloc(CMAXLEN);
	uint64_t s = seed;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs) < 0)
		_exit(2);
	for (int i = 0; i < COPS; i++) {
		struct cop o;
		gen_op(&s, &o);
		if (i == kill_at)
			kill(getpid(), SIGKILL);
		int ret = 0;
		if (o.kind == 0) {
			fill(buf, &o);
			ret = block_pwrite(bs, o.off, buf, o.len);
		} else if (o.kind == 1) {
			ret = block_write_zeroes(bs, o.off, o.len, BLOCK_ZERO_MAY_UNMAP);
		} else if (o.kind == 2) {
			ret = block_discard(bs, o.off, o.len);
		} else {
			ret = block_flush(bs);
			if (ret == 0) {
				char line[32];
				int n = snprintf(line, sizeof(line), "%d\n", i);
				if (write(fd, line, (size_t)n) != n || fsync(fd) < 0)
					_exit(3);
			}
		}
		if (ret < 0)
			_exit(4);
	}
	_exit(0);
}

static int last_flush(const char *log)
{
	FILE *f = fopen(log, "r");
	int v = -1, x;
	if (!f)
		return -1;
	while (fscanf(f, "%d", &x) == 1)
		v = x;
	fclose(f);
	return v;
}

static void crash_round(const char *opts, uint64_t cs, uint64_t seed, int kill_at)
{
	const char *img = test_path("crash.qcow2"), *log = test_path("crash.log");
	uint8_t *shadow = calloc(1, CSIZE), *unsure = calloc(1, CSIZE), *buf = malloc(CMAXLEN);
	uint8_t *got = malloc(CSIZE);
	struct block_device *bs;

	assert_int_equal(qcow2_create_opts(img, CSIZE, NULL, NULL, opts), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(img, log, seed, kill_at);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	int lf = last_flush(log);

	/* Replay: state at the last logged flush, and the bytes touched afterwards. */
	uint64_t s = seed;
	for (int i = 0; i < kill_at; i++) {
		struct cop o;
		gen_op(&s, &o);
		uint8_t *dst = i <= lf ? shadow : NULL;
		uint64_t a = o.off, b = o.off + o.len;
		if (o.kind == 2) {
			a = (o.off + cs - 1) & ~(cs - 1);
			b = b == CSIZE ? b : b & ~(cs - 1);
			if (b <= a)
				continue;
		}
		if (o.kind == 3)
			continue;
		if (!dst) {
			memset(unsure + a, 1, b - a);
			continue;
		}
		if (o.kind == 0) {
			fill(buf, &o);
			memcpy(shadow + o.off, buf, o.len);
		} else {
			memset(shadow + a, 0, b - a);
		}
	}
	int rc = qemu_check(img);
	print_message("kill at %d, last flush %d: qemu-img check exit %d\n", kill_at, lf, rc);
	if (rc != 0 && rc != 3) { /* leaks are harmless; corruption is not */
		test_run("qemu-img check '%s'", img);
		fail();
	}
	assert_int_equal(block_open(img, "qcow2", 0, &bs), 0);
	assert_int_equal(block_pread(bs, 0, got, CSIZE), 0);
	block_close(bs);
	for (uint64_t i = 0; i < CSIZE; i++) {
		if (!unsure[i] && got[i] != shadow[i]) {
			print_message("seed %llu kill at %d (last flush %d): byte %llu differs\n",
				      (unsigned long long)seed, kill_at, lf, (unsigned long long)i);
			fail();
		}
	}
	/* Leaks, if any, are repaired by our check and the image stays usable. */
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	struct block_check_result res;
	assert_int_equal(bs->drv->check(bs, &res, BLOCK_CHECK_FIX_LEAKS), 0);
	assert_int_equal(res.corruptions, 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	free(shadow);
	free(unsure);
	free(buf);
	free(got);
}

static void test_crash_kill9(void **state)
{
	(void)state;
	uint64_t s = 2024;
	static const struct {
		const char *opts;
		uint64_t cs;
	} cfg[] = {{"cluster_size=4k", 4096},
		   {"cluster_size=64k,compat=0.10", 65536},
		   {"cluster_size=512,refcount_bits=1", 512}};
	for (int i = 0; i < 12; i++) {
		int kill_at = 20 + (int)(test_xorshift(&s) % (COPS - 20));
		crash_round(cfg[i % 3].opts, cfg[i % 3].cs, 100 + (uint64_t)i, kill_at);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malformed_headers),
	    cmocka_unit_test(test_feature_name_from_table),
	    cmocka_unit_test(test_corrupt_bit),
	    cmocka_unit_test(test_backing_loop),
	    cmocka_unit_test(test_bad_l2_entry),
	    cmocka_unit_test(test_duplicate_refblock),
	    cmocka_unit_test(test_crash_kill9),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
