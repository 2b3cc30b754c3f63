/* qcow2 operations beyond read/write: truncate (grow over a larger backing file, shrink refused
 * over data unless allowed), info fields, check of COPIED flags, dirty-bit repair on open (lazy
 * refcounts), block_status against qemu-img map.
 */
#include <json-c/json.h>

#include "tests/storage/qcow2_test_util.h"

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("qcow2-ops");
}

static void test_truncate(void **state)
{
	(void)state;
	const char *img = test_path("t.qcow2");
	struct block_device *bs;
	uint8_t buf[4096], z[4096] = {0};

	make_pattern(test_path("tb.raw"), 4 * MiB, 8);
	assert_int_equal(qcow2_create_opts(img, 2 * MiB, "tb.raw", "raw", "cluster_size=4k"), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 0x21, sizeof(buf));
	assert_int_equal(block_pwrite(bs, MiB, buf, sizeof(buf)), 0);
	/* Growing: the new area reads as zeroes, not as the larger backing file. */
	assert_int_equal(block_truncate(bs, 5 * MiB, BLOCK_PREALLOC_OFF, false), 0);
	assert_int_equal(bs->size, 5 * MiB);
	assert_int_equal(block_pread(bs, 3 * MiB, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, z, sizeof(z));
	assert_int_equal(block_pwrite(bs, 4 * MiB + 512, buf, 512), 0);
	/* Shrinking needs explicit permission (the core enforces it); data past the end is freed.
	 */
	assert_int_equal(block_truncate(bs, 4 * MiB, BLOCK_PREALLOC_OFF, false), -EINVAL);
	assert_int_equal(block_truncate(bs, 4 * MiB, BLOCK_PREALLOC_OFF, true), 0);
	assert_int_equal(block_truncate(bs, 3 * MiB, BLOCK_PREALLOC_OFF, true), 0);
	assert_int_equal(block_truncate(bs, 5 * MiB, BLOCK_PREALLOC_OFF, false), 0);
	assert_int_equal(block_pread(bs, 4 * MiB, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, z, sizeof(z)); /* the freed data does not come back */
	/* Growing with preallocation maps the new clusters. */
	assert_int_equal(block_truncate(bs, 6 * MiB, BLOCK_PREALLOC_METADATA, false), 0);
	uint64_t pnum, map;
	int st;
	assert_int_equal(block_status(bs, 5 * MiB, MiB, &pnum, &st, &map), 0);
	assert_true(st & BLOCK_STATUS_ALLOCATED);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img info '%s' | grep -q 'virtual size: 6 MiB'", img), 0);
	assert_reads_like_qemu(img);
}

static void test_info(void **state)
{
	(void)state;
	const char *img = test_path("i.qcow2");
	struct block_device *bs;
	struct json_object *o = json_object_new_object(), *v;

	assert_int_equal(
	    qcow2_create_opts(img, MiB, NULL, NULL,
			      "refcount_bits=8,lazy_refcounts=on,compression_type=zstd"),
	    0);
	assert_int_equal(block_open(img, "qcow2", 0, &bs), 0);
	assert_int_equal(bs->drv->info(bs, o), 0);
	assert_true(json_object_object_get_ex(o, "compat", &v));
	assert_string_equal(json_object_get_string(v), "1.1");
	assert_true(json_object_object_get_ex(o, "refcount-bits", &v));
	assert_int_equal(json_object_get_int(v), 8);
	assert_true(json_object_object_get_ex(o, "lazy-refcounts", &v));
	assert_true(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "compression-type", &v));
	assert_string_equal(json_object_get_string(v), "zstd");
	assert_true(json_object_object_get_ex(o, "corrupt", &v));
	assert_false(json_object_get_boolean(v));
	assert_int_equal(bs->drv->cluster_size(bs), 65536);
	block_close(bs);
	json_object_put(o);
}

static uint64_t first_l2_entry_offset(const char *img)
{
	size_t len;
	uint8_t *b = read_file(img, &len);
	uint64_t l1 = 0, l2 = 0;
	for (int i = 0; i < 8; i++)
		l1 = l1 << 8 | b[40 + i];
	for (int i = 0; i < 8; i++)
		l2 = l2 << 8 | b[l1 + (uint64_t)i];
	free(b);
	return l2 & 0x00fffffffffffe00ull;
}

/* A COPIED flag on a cluster shared with a snapshot is a corruption; -r all repairs it. */
static void test_check_copied_flag(void **state)
{
	(void)state;
	const char *img = test_path("c.qcow2");
	struct block_device *bs;
	struct block_check_result res;

	make_pattern(test_path("c.raw"), MiB, 5);
	unlink(img);
	assert_int_equal(test_run("qemu-img convert -O qcow2 '%s' '%s'", test_path("c.raw"), img),
			 0);
	assert_int_equal(test_run("qemu-img snapshot -c s '%s'", img), 0);
	uint64_t l2 = first_l2_entry_offset(img);
	int fd = open(img, O_RDWR);
	uint8_t e[8];
	assert_int_equal(pread(fd, e, 8, (off_t)l2), 8);
	assert_true(e[7] || e[6] || e[5]); /* first cluster holds data */
	e[0] |= 0x80;
	assert_int_equal(pwrite(fd, e, 8, (off_t)l2), 8);
	close(fd);
	assert_int_equal(qemu_check(img), 2);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR | BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_true(res.corruptions >= 1);
	assert_int_equal(bs->drv->check(bs, &res, BLOCK_CHECK_FIX_LEAKS | BLOCK_CHECK_FIX_ERRORS),
			 0);
	assert_int_equal(res.corruptions_fixed, res.corruptions);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_image_equals_raw(img, test_path("c.raw"));
}

/* Lazy refcounts left stale by a crash (dirty bit set) are rebuilt when opened read-write. */
static void test_dirty_bit_repair(void **state)
{
	(void)state;
	const char *img = test_path("d.qcow2");
	struct block_device *bs;

	make_pattern(test_path("d.raw"), MiB, 6);
	assert_int_equal(
	    qcow2_create_opts(img, MiB, NULL, NULL, "cluster_size=4k,lazy_refcounts=on"), 0);
	assert_int_equal(
	    test_run("qemu-img convert -n -O qcow2 '%s' '%s'", test_path("d.raw"), img), 0);
	/* Wipe the refcounts of everything after the first 16 clusters, set the dirty bit. */
	int fd = open(img, O_RDWR);
	uint8_t zero[4096 - 32] = {0}, dirty[8] = {0, 0, 0, 0, 0, 0, 0, 1};
	assert_int_equal(pwrite(fd, zero, sizeof(zero), 2 * 4096 + 32), (ssize_t)sizeof(zero));
	assert_int_equal(pwrite(fd, dirty, 8, 72), 8);
	close(fd);
	assert_int_equal(qemu_check(img), 2);
	/* Read-only: no repair, data readable. */
	assert_image_equals_raw(img, test_path("d.raw"));
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img info '%s' | grep -q 'dirty'", img), 1);
	assert_image_equals_raw(img, test_path("d.raw"));
}

/* block_status agrees with qemu-img map about where data and zeroes are. */
static void test_block_status_vs_map(void **state)
{
	(void)state;
	const char *img = test_path("m.qcow2");
	struct block_device *bs;

	make_pattern(test_path("m.raw"), 2 * MiB, 12);
	unlink(img);
	assert_int_equal(test_run("qemu-img convert -O qcow2 -o cluster_size=4k '%s' '%s'",
				  test_path("m.raw"), img),
			 0);
	assert_int_equal(test_run("qemu-io -c 'write -z 64k 64k' '%s' >/dev/null", img), 0);
	/* qemu-img map: "start length depth zero data offset" lines of data extents. */
	assert_int_equal(test_run("qemu-img map --output=json '%s' | tr -d '[]{}\" ' | tr ',' ' ' "
				  "> '%s.map'",
				  img, img),
			 0);
	size_t len;
	char *txt = (char *)read_file(test_path("m.qcow2.map"), &len);
	txt[len] = 0;
	assert_int_equal(block_open(img, "qcow2", 0, &bs), 0);
	int lines = 0;
	for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long start, length;
		char zero[8], data[8];
		if (sscanf(line, "start:%llu length:%llu depth:%*d present:%*s zero:%7s data:%7s",
			   &start, &length, zero, data) != 4 &&
		    sscanf(line, "start:%llu length:%llu depth:%*d zero:%7s data:%7s", &start,
			   &length, zero, data) != 4)
			continue;
		lines++;
		for (uint64_t off = start; off < start + length;) {
			uint64_t pnum, map;
			int st;
			assert_int_equal(
			    block_status(bs, off, start + length - off, &pnum, &st, &map), 0);
			assert_int_equal(!!(st & BLOCK_STATUS_DATA), !strcmp(data, "true"));
			if (!strcmp(data, "false"))
				assert_int_equal(!!(st & BLOCK_STATUS_ZERO), !strcmp(zero, "true"));
			off += pnum;
		}
	}
	assert_true(lines >= 3);
	block_close(bs);
	free(txt);
}

/* Persistent bitmaps: counted by check while valid; a read-write open declares them stale (the
 * autoclear rule), after which qemu-img and our check agree their clusters are leaks. */
static void test_bitmaps(void **state)
{
	(void)state;
	const char *img = test_path("bm.qcow2");
	struct block_device *bs;
	struct block_check_result res;

	unlink(img);
	assert_int_equal(
	    test_run("qemu-img create -q -f qcow2 '%s' 4M && qemu-img bitmap --add '%s' b0 "
		     "&& qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 64k' '%s' >/dev/null",
		     img, img, img),
	    0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.leaks + res.corruptions, 0);
	block_close(bs);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	uint8_t buf[512] = {3};
	assert_int_equal(block_pwrite(bs, 2 * MiB, buf, sizeof(buf)), 0);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_true(res.leaks > 0);
	uint64_t leaks = res.leaks;
	block_close(bs);
	assert_int_equal(qemu_check(img), 3);
	assert_int_equal(
	    test_run("qemu-img check '%s' 2>/dev/null | grep -q '^%llu leaked clusters'", img,
		     (unsigned long long)leaks),
	    0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR | BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &res, BLOCK_CHECK_FIX_LEAKS), 0);
	block_close(bs);
	assert_int_equal(qemu_check(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_truncate),
	    cmocka_unit_test(test_info),
	    cmocka_unit_test(test_check_copied_flag),
	    cmocka_unit_test(test_dirty_bit_repair),
	    cmocka_unit_test(test_block_status_vs_map),
	    cmocka_unit_test(test_bitmaps),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
