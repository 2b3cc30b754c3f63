/* qcow2 internal snapshots: created, applied and deleted by minivmm and checked by qemu-img
 * (snapshot -l, convert -l, check), and the other way round; refcount overflow refused.
 */
#include "tests/storage/qcow2_test_util.h"

enum { SIZE = 3 * MiB };

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("qcow2-snap");
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)test_xorshift(&s);
}

/* qemu-img's view of snapshot `name` equals the raw file `raw`. */
static void assert_qemu_snapshot(const char *img, const char *name, const char *raw)
{
	assert_int_equal(test_run("qemu-img convert -l snapshot.name=%s -O raw '%s' '%s.snap.raw'",
				  name, img, img),
			 0);
	assert_int_equal(test_run("cmp -s '%s.snap.raw' '%s'", img, raw), 0);
}

static void snapshots_round(const char *opts)
{
	const char *img = test_path("s.qcow2");
	struct block_device *bs;
	uint8_t *a = malloc(SIZE), *b = malloc(SIZE), *got = malloc(SIZE);
	struct block_snapshot *list;
	int n;

	assert_int_equal(qcow2_create_opts(img, SIZE, NULL, NULL, opts), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	fill(a, SIZE, 1);
	memset(a + MiB, 0, 256 * KiB); /* a hole stays a hole */
	assert_int_equal(block_pwrite(bs, 0, a, MiB), 0);
	assert_int_equal(
	    block_pwrite(bs, MiB + 256 * KiB, a + MiB + 256 * KiB, SIZE - MiB - 256 * KiB), 0);
	assert_int_equal(bs->drv->snapshot_create(bs, "one"), 0);
	assert_int_equal(bs->drv->snapshot_create(bs, "one"), -EEXIST);
	memcpy(b, a, SIZE);
	fill(b + 100 * KiB, 700 * KiB + 3, 2);
	assert_int_equal(block_pwrite(bs, 100 * KiB, b + 100 * KiB, 700 * KiB + 3), 0);
	assert_int_equal(block_write_zeroes(bs, 2 * MiB, 64 * KiB, BLOCK_ZERO_MAY_UNMAP), 0);
	memset(b + 2 * MiB, 0, 64 * KiB);
	assert_int_equal(bs->drv->snapshot_create(bs, "two"), 0);
	fill(got, 5000, 3);
	assert_int_equal(block_pwrite(bs, 10, got, 5000), 0); /* the active state moves on */
	block_close(bs);

	test_file_write(test_path("a.raw"), a, SIZE);
	test_file_write(test_path("b.raw"), b, SIZE);
	if (qemu_check(img) != 0) {
		test_run("qemu-img check '%s'", img);
		fail();
	}
	assert_int_equal(test_run("qemu-img snapshot -l '%s' | grep -q ' one '", img), 0);
	assert_int_equal(test_run("qemu-img snapshot -l '%s' | grep -q ' two '", img), 0);
	assert_qemu_snapshot(img, "one", test_path("a.raw"));
	assert_qemu_snapshot(img, "two", test_path("b.raw"));

	/* Apply "one", then delete "two" and "one": content and refcounts stay right. */
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(bs->drv->snapshot_apply(bs, "one"), 0);
	assert_int_equal(block_pread(bs, 0, got, SIZE), 0);
	assert_memory_equal(got, a, SIZE);
	assert_int_equal(bs->drv->snapshot_apply(bs, "nope"), -ENOENT);
	assert_non_null(strstr(error_msg(), "no snapshot 'nope'"));
	assert_int_equal(bs->drv->snapshot_delete(bs, "nope"), -ENOENT);
	assert_int_equal(bs->drv->snapshot_apply(bs, "one"), 0); /* the lock was given back */
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_image_equals_raw(img, test_path("a.raw"));

	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(bs->drv->snapshot_delete(bs, "two"), 0);
	assert_int_equal(bs->drv->snapshot_list(bs, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].name, "one");
	free(list);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_qemu_snapshot(img, "one", test_path("a.raw"));

	/* Writes after apply copy on write: the snapshot keeps its data. */
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	fill(got, 300 * KiB, 4);
	assert_int_equal(block_pwrite(bs, 50 * KiB, got, 300 * KiB), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_qemu_snapshot(img, "one", test_path("a.raw"));

	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(bs->drv->snapshot_delete(bs, "1"), 0); /* by id */
	struct block_check_result res;
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.leaks + res.corruptions, 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img snapshot -l '%s' | grep -q one", img), 1);
	free(a);
	free(b);
	free(got);
}

static void test_snapshots_minivmm(void **state)
{
	(void)state;
	snapshots_round("cluster_size=4k");
	snapshots_round("cluster_size=64k,compat=0.10");
	snapshots_round("cluster_size=512,refcount_bits=64");
}

/* Snapshots made by qemu-img are applied and deleted by minivmm, and vice versa. */
static void test_snapshots_cross(void **state)
{
	(void)state;
	const char *img = test_path("x.qcow2");
	struct block_device *bs;

	make_pattern(test_path("x.raw"), SIZE, 9);
	unlink(img);
	assert_int_equal(test_run("qemu-img convert -O qcow2 -o cluster_size=4k '%s' '%s'",
				  test_path("x.raw"), img),
			 0);
	assert_int_equal(test_run("qemu-img snapshot -c base '%s'", img), 0);
	assert_int_equal(test_run("qemu-io -c 'write -P 0x42 0 1M' '%s' >/dev/null", img), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(bs->drv->snapshot_create(bs, "mine"), 0);
	assert_int_equal(bs->drv->snapshot_apply(bs, "base"), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_image_equals_raw(img, test_path("x.raw"));
	assert_int_equal(test_run("qemu-img snapshot -a mine '%s'", img), 0);
	assert_int_equal(test_run("qemu-img snapshot -d base '%s'", img), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	uint8_t buf[4096];
	assert_int_equal(block_pread(bs, 4096, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x42);
	assert_int_equal(bs->drv->snapshot_delete(bs, "mine"), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
}

/* With 1-bit refcounts no cluster can be shared: a snapshot is refused, the image untouched. */
static void test_snapshot_refcount_overflow(void **state)
{
	(void)state;
	const char *img = test_path("o.qcow2");
	struct block_device *bs;
	uint8_t buf[4096] = {1};

	assert_int_equal(qcow2_create_opts(img, MiB, NULL, NULL, "refcount_bits=1"), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_pwrite(bs, 0, buf, sizeof(buf)), 0);
	assert_int_equal(bs->drv->snapshot_create(bs, "s"), -ERANGE);
	assert_non_null(strstr(error_msg(), "overflow"));
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img snapshot -l '%s' | grep -q ' s '", img), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_snapshots_minivmm),
	    cmocka_unit_test(test_snapshots_cross),
	    cmocka_unit_test(test_snapshot_refcount_overflow),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
