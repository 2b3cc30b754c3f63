/* qcow2 against qemu-img, the independent oracle: images made by qemu-img (cluster sizes 512..2M,
 * compat 0.10 and 1.1, refcount widths, compressed zlib/zstd, backing chains of three, snapshots,
 * zero clusters) read back byte-identical through the block API; images made and written by
 * minivmm pass `qemu-img check` and `qemu-img compare` against a raw shadow.
 */
#include "tests/storage/qcow2_test_util.h"

#define PSIZE (6 * MiB + 3 * 512)

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("qcow2-interop") < 0)
		return -1;
	make_pattern(test_path("src.raw"), PSIZE, 42);
	return 0;
}

static void convert_and_compare(const char *opts, bool compress)
{
	const char *img = test_path("conv.qcow2");
	unlink(img);
	assert_int_equal(test_run("qemu-img convert %s -O qcow2 -o %s '%s' '%s'",
				  compress ? "-c" : "", opts, test_path("src.raw"), img),
			 0);
	assert_image_equals_raw(img, test_path("src.raw"));
}

static void test_read_matrix(void **state)
{
	static const char *const cs[] = {"512", "4k", "64k", "2M"};
	(void)state;
	for (int i = 0; i < 4; i++) {
		char o[128];
		snprintf(o, sizeof(o), "cluster_size=%s,compat=0.10", cs[i]);
		convert_and_compare(o, false);
		static const char *const rb[] = {"1", "16", "64"};
		for (int j = 0; j < 3; j++) {
			snprintf(o, sizeof(o), "cluster_size=%s,compat=1.1,refcount_bits=%s", cs[i],
				 rb[j]);
			convert_and_compare(o, false);
		}
	}
}

static void test_read_compressed(void **state)
{
	(void)state;
	convert_and_compare("cluster_size=64k,compression_type=zlib", true);
	convert_and_compare("cluster_size=64k,compression_type=zstd", true);
	convert_and_compare("cluster_size=4k,compression_type=zstd", true);
	convert_and_compare("cluster_size=512,compat=1.1", true);
	convert_and_compare("cluster_size=2M,compression_type=zlib", true);
	convert_and_compare("cluster_size=64k,compat=0.10", true);
}

/* base <- mid <- top, each layer writing over parts of the one below, some with zero clusters. */
static void test_read_backing_chain(void **state)
{
	(void)state;
	const char *base = test_path("base.qcow2"), *mid = test_path("mid.qcow2"),
		   *top = test_path("top.qcow2");
	assert_int_equal(test_run("qemu-img convert -O qcow2 -o cluster_size=4k '%s' '%s'",
				  test_path("src.raw"), base),
			 0);
	assert_int_equal(test_run("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 -o "
				  "cluster_size=64k '%s'",
				  mid),
			 0);
	assert_int_equal(test_run("qemu-io -c 'write -P 0x11 100k 300k' -c 'write -z 1M 128k' "
				  "-c 'write -P 0x22 3000k 5k' '%s' >/dev/null",
				  mid),
			 0);
	assert_int_equal(test_run("qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 -o "
				  "cluster_size=512,compat=0.10 '%s'",
				  top),
			 0);
	assert_int_equal(test_run("qemu-io -c 'write -P 0x33 200k 1k' -c 'write -P 0x44 5M 77k' "
				  "-c 'write -z 3001k 1k' '%s' >/dev/null",
				  top),
			 0);
	assert_reads_like_qemu(top);
	assert_reads_like_qemu(mid);
}

static void test_read_zero_clusters(void **state)
{
	(void)state;
	const char *img = test_path("zero.qcow2");
	unlink(img);
	assert_int_equal(test_run("qemu-img convert -O qcow2 '%s' '%s'", test_path("src.raw"), img),
			 0);
	assert_int_equal(test_run("qemu-io -c 'write -z 0 128k' -c 'write -z -u 1M 1M' "
				  "-c 'write -z 5M 100k' '%s' >/dev/null",
				  img),
			 0);
	assert_reads_like_qemu(img);
}

static void test_read_snapshots(void **state)
{
	(void)state;
	const char *img = test_path("snap.qcow2");
	struct block_device *bs;
	struct block_snapshot *list;
	int n;

	unlink(img);
	assert_int_equal(test_run("qemu-img convert -O qcow2 -o cluster_size=4k '%s' '%s'",
				  test_path("src.raw"), img),
			 0);
	assert_int_equal(test_run("qemu-img snapshot -c first '%s'", img), 0);
	assert_int_equal(test_run("qemu-io -c 'write -P 0x55 0 1M' '%s' >/dev/null", img), 0);
	assert_int_equal(test_run("qemu-img snapshot -c second '%s'", img), 0);
	assert_int_equal(test_run("qemu-io -c 'write -P 0x66 512k 1M' '%s' >/dev/null", img), 0);
	assert_reads_like_qemu(img);
	assert_int_equal(block_open(img, NULL, 0, &bs), 0);
	assert_int_equal(bs->drv->snapshot_list(bs, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "first");
	assert_string_equal(list[1].name, "second");
	assert_int_equal(list[1].disk_size, PSIZE);
	free(list);
	block_close(bs);

	/* Writing to an image with snapshots copies on write: snapshot data stays intact. */
	assert_int_equal(block_open(img, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	uint8_t buf[8192];
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(block_pwrite(bs, 700 * KiB + 100, buf, sizeof(buf)), 0);
	assert_int_equal(block_pwrite(bs, 4 * MiB, buf, sizeof(buf)), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_reads_like_qemu(img);
	assert_int_equal(test_run("qemu-img snapshot -a first '%s'", img), 0);
	assert_image_equals_raw(img, test_path("src.raw"));
}

/* minivmm creates and writes; qemu-img checks and compares with a raw shadow. */
static void write_and_verify(const char *opts, uint64_t seed)
{
	enum { SIZE = 5 * MiB + 512 * 3 };
	const char *img = test_path("mine.qcow2"), *shadow_path = test_path("shadow.raw");
	struct block_device *bs;
	uint8_t *shadow = calloc(1, SIZE), *buf = malloc(300 * KiB);
	uint64_t s = seed;

	assert_int_equal(qcow2_create_opts(img, SIZE, NULL, NULL, opts), 0);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	for (int r = 0; r < 120; r++) {
		uint64_t unit = test_xorshift(&s) % 3 ? 512 : 1;
		uint64_t off = (test_xorshift(&s) % (SIZE / unit)) * unit;
		uint64_t len = (1 + test_xorshift(&s) % (300 * KiB / unit)) * unit;
		if (len > SIZE - off)
			len = SIZE - off;
		uint64_t op = test_xorshift(&s) % 8;
		if (op < 6) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_xorshift(&s);
			assert_int_equal(block_pwrite(bs, off, buf, len), 0);
			memcpy(shadow + off, buf, len);
		} else if (op == 6) {
			assert_int_equal(block_write_zeroes(bs, off, len, BLOCK_ZERO_MAY_UNMAP), 0);
			memset(shadow + off, 0, len);
		} else {
			assert_int_equal(block_pread(bs, off, buf, len), 0);
			assert_memory_equal(buf, shadow + off, len);
		}
		if (r % 40 == 39)
			assert_int_equal(block_flush(bs), 0);
	}
	block_close(bs);
	test_file_write(shadow_path, shadow, SIZE);
	int rc = test_run("qemu-img check '%s' >/dev/null 2>&1", img);
	if (rc != 0) {
		print_message("qemu-img check failed for options %s\n", opts);
		test_run("qemu-img check '%s'", img);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(
	    test_run("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, shadow_path), 0);
	assert_image_equals_raw(img, shadow_path);
	free(shadow);
	free(buf);
}

static void test_write_matrix(void **state)
{
	(void)state;
	write_and_verify("cluster_size=512,compat=0.10", 1);
	write_and_verify("cluster_size=512,refcount_bits=1", 2);
	write_and_verify("cluster_size=4k,refcount_bits=64", 3);
	write_and_verify("cluster_size=64k", 4);
	write_and_verify("cluster_size=64k,compat=0.10", 5);
	write_and_verify("cluster_size=2M,refcount_bits=8", 6);
	write_and_verify("cluster_size=4k,lazy_refcounts=on,compression_type=zstd", 7);
	write_and_verify("cluster_size=64k,preallocation=metadata", 8);
	write_and_verify("cluster_size=64k,preallocation=falloc", 9);
	write_and_verify("cluster_size=4k,preallocation=full,refcount_bits=2", 10);
}

static void test_create_info_matches_qemu(void **state)
{
	(void)state;
	const char *img = test_path("info.qcow2");
	assert_int_equal(qcow2_create_opts(img, 3 * MiB, NULL, NULL,
					   "cluster_size=4k,refcount_bits=4,lazy_refcounts=on,"
					   "compression_type=zstd"),
			 0);
	assert_int_equal(test_run("qemu-img info --output=json '%s' > '%s.json'", img, img), 0);
	assert_int_equal(test_run("grep -q '\"cluster-size\": 4096' '%s.json'", img), 0);
	assert_int_equal(test_run("grep -q '\"refcount-bits\": 4' '%s.json'", img), 0);
	assert_int_equal(test_run("grep -q '\"lazy-refcounts\": true' '%s.json'", img), 0);
	assert_int_equal(test_run("grep -q '\"compression-type\": \"zstd\"' '%s.json'", img), 0);
	assert_int_equal(test_run("grep -q '\"virtual-size\": 3145728' '%s.json'", img), 0);
	assert_int_equal(qcow2_create_opts(img, MiB, NULL, NULL, "compat=0.10,refcount_bits=8"),
			 -EINVAL);
	assert_int_equal(qcow2_create_opts(img, MiB, NULL, NULL, "cluster_size=3000"), -EINVAL);
}

/* A backing file given at create time is recorded with its format and read through. */
static void test_create_with_backing(void **state)
{
	(void)state;
	const char *base = test_path("b.qcow2"), *top = test_path("t.qcow2");
	struct block_device *bs;
	uint8_t buf[3000];

	unlink(base);
	assert_int_equal(
	    test_run("qemu-img convert -O qcow2 '%s' '%s'", test_path("src.raw"), base), 0);
	assert_int_equal(qcow2_create_opts(top, 0, "b.qcow2", "qcow2", "cluster_size=4k"), 0);
	assert_int_equal(block_open(top, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(bs->size, PSIZE);
	memset(buf, 0xab, sizeof(buf));
	/* Partial-cluster writes: the rest of each cluster is copied from the backing file. */
	assert_int_equal(block_pwrite(bs, 4096 + 100, buf, sizeof(buf)), 0);
	assert_int_equal(block_pwrite(bs, PSIZE - 1000, buf, 1000), 0);
	assert_int_equal(block_write_zeroes(bs, MiB, 64 * KiB, 0), 0);
	assert_int_equal(block_discard(bs, 2 * MiB, 64 * KiB), 0);
	block_close(bs);
	assert_int_equal(qemu_check(top), 0);
	assert_int_equal(test_run("qemu-img info '%s' | grep -q 'backing file format: qcow2'", top),
			 0);
	assert_reads_like_qemu(top);
}

/* Compressed clusters written by minivmm: qemu-img reads them, counts them, and partial rewrites
 * copy the rest of the cluster out of the compressed data. */
static void compressed_round(const char *opts, uint64_t cs)
{
	const char *img = test_path("cw.qcow2");
	uint64_t size = 16 * cs + 1536; /* a partial tail cluster */
	struct block_device *bs;
	uint8_t *shadow = calloc(1, size), *buf = malloc(cs);
	uint64_t s = 77;

	assert_int_equal(qcow2_create_opts(img, size, NULL, NULL, opts), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	for (uint64_t off = 0; off < size; off += cs) {
		uint64_t len = size - off < cs ? size - off : cs;
		for (uint64_t i = 0; i < len;
		     i++) /* compressible text, every third cluster random */
			buf[i] = (off / cs) % 3 ? (uint8_t)("qcow2 compressed "[i % 17] + off / cs)
						: (uint8_t)test_xorshift(&s);
		assert_int_equal(block_pwrite_compressed(bs, off, buf, len), 0);
		memcpy(shadow + off, buf, len);
	}
	/* Rewrite compressed clusters again (old compressed space is freed) and partially. */
	memset(buf, 0xc3, cs);
	assert_int_equal(block_pwrite_compressed(bs, cs, buf, cs), 0);
	memcpy(shadow + cs, buf, cs);
	assert_int_equal(block_pwrite(bs, 4 * cs + 100, "partial", 7), 0);
	memcpy(shadow + 4 * cs + 100, "partial", 7);
	assert_int_equal(block_pwrite_compressed(bs, 100, buf, cs), -EINVAL);
	uint64_t pnum, map;
	int st;
	assert_int_equal(block_status(bs, 2 * cs, cs, &pnum, &st, &map), 0);
	assert_true(st & BLOCK_STATUS_COMPRESSED);
	block_close(bs);
	test_file_write(test_path("cw.raw"), shadow, size);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img check '%s' | grep -q 'compressed clusters' && "
				  "! qemu-img check '%s' | grep -q ' 0.00%% compressed'",
				  img, img),
			 0);
	assert_int_equal(test_run("qemu-img compare -q '%s' '%s'", img, test_path("cw.raw")), 0);
	assert_image_equals_raw(img, test_path("cw.raw"));
	free(shadow);
	free(buf);
}

static void test_write_compressed(void **state)
{
	(void)state;
	compressed_round("cluster_size=64k,compression_type=zlib", 65536);
	compressed_round("cluster_size=64k,compression_type=zstd", 65536);
	compressed_round("cluster_size=4k,compat=0.10", 4096);
	compressed_round("cluster_size=2M,compression_type=zstd,refcount_bits=1", 2 * MiB);
}

/* Extended L2 entries (subclusters) written by qemu are read; writing is refused. */
static void test_read_extended_l2(void **state)
{
	(void)state;
	const char *img = test_path("ext.qcow2");
	struct block_device *bs;

	unlink(img);
	assert_int_equal(test_run("qemu-img create -q -f qcow2 -b src.raw -F raw -o "
				  "extended_l2=on,cluster_size=64k '%s'",
				  img),
			 0);
	/* Subcluster-sized (2 KiB) writes, zeroes and discards over backing data. */
	assert_int_equal(
	    test_run("qemu-io -c 'write -P 0x61 2k 2k' -c 'write -P 0x62 70k 5k' "
		     "-c 'write -z 128k 4k' -c 'write -z 200k 64k' -c 'discard 262144 2048' "
		     "-c 'write -P 0x63 1M 300k' '%s' >/dev/null",
		     img),
	    0);
	assert_reads_like_qemu(img);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), -ENOTSUP);
	assert_non_null(strstr(error_msg(), "read-only"));
	unlink(img);
	assert_int_equal(test_run("qemu-img convert -O qcow2 -o extended_l2=on,cluster_size=32k "
				  "'%s' '%s'",
				  test_path("src.raw"), img),
			 0);
	assert_reads_like_qemu(img);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_CHECK, &bs), 0);
	struct block_check_result res;
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.leaks + res.corruptions, 0);
	block_close(bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_matrix),
	    cmocka_unit_test(test_read_compressed),
	    cmocka_unit_test(test_read_backing_chain),
	    cmocka_unit_test(test_read_zero_clusters),
	    cmocka_unit_test(test_read_snapshots),
	    cmocka_unit_test(test_write_matrix),
	    cmocka_unit_test(test_create_info_matches_qemu),
	    cmocka_unit_test(test_create_with_backing),
	    cmocka_unit_test(test_write_compressed),
	    cmocka_unit_test(test_read_extended_l2),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
