/* Tests of the block-layer core (storage/core/block.c, block_opts.c, iov.c): probing, backing
 * chains (three layers through a tiny in-test format that reads unallocated sectors with
 * block_read_backing), loop detection, the depth limit, range checks, options and iov helpers.
 *
 * The in-test format "fakecow": header at 0 = magic "FAKECOW1", u64 virtual size, u32 name length,
 * backing name; at 1024 one allocation byte per 512-byte sector; data from 8192.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "storage/core/block_path.h"
#include "tests/lib/testlib.h"

#define FC_MAGIC "FAKECOW1"
#define FC_MAP 1024
#define FC_DATA 8192
#define FC_MAX_SECTORS (FC_DATA - FC_MAP)

static int fc_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && memcmp(head, FC_MAGIC, 8) == 0 ? 100 : 0;
}

static int fc_open(struct block_device *bs)
{
	uint8_t h[20 + 256];
	uint32_t n;
	int ret = host_file_pread(&bs->file, 0, h, sizeof(h));

	if (ret < 0)
		return ret;
	if (memcmp(h, FC_MAGIC, 8) != 0)
		return error_set(-EINVAL, "%s: not a fakecow image", bs->filename);
	memcpy(&bs->size, h + 8, 8);
	memcpy(&n, h + 16, 4);
	if (bs->size > (uint64_t)FC_MAX_SECTORS * 512 || n > 255)
		return error_set(-EINVAL, "%s: bad fakecow header", bs->filename);
	if (n) {
		bs->backing_name = strndup((char *)h + 20, n);
		if (!bs->backing_name)
			return -ENOMEM;
	}
	return 0;
}

static int fc_rw(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
		 bool write)
{
	size_t len = iov_size(iov, iovcnt), done = 0;
	uint8_t buf[512];

	/* Sector by sector: slow and obviously right. */
	while (done < len) {
		uint64_t pos = offset + done, sec = pos / 512, in = pos % 512;
		size_t n = 512 - in < len - done ? 512 - in : len - done;
		uint8_t alloc;
		int ret = host_file_pread(&bs->file, FC_MAP + sec, &alloc, 1);
		if (ret < 0)
			return ret;
		if (!write) {
			struct iovec part[8];
			int cnt = iov_slice(iov, iovcnt, done, n, part, 8);
			if (cnt < 0)
				return cnt;
			ret = alloc ? host_file_preadv(&bs->file, FC_DATA + pos, part, cnt)
				    : block_read_backing(bs, pos, part, cnt);
		} else {
			if (!alloc) { /* copy-on-write of the whole sector */
				struct iovec v = {buf, 512};
				ret = block_read_backing(bs, sec * 512, &v, 1);
				if (ret == 0)
					ret = host_file_pwrite(&bs->file, FC_DATA + sec * 512, buf,
							       512);
				alloc = 1;
				if (ret == 0)
					ret = host_file_pwrite(&bs->file, FC_MAP + sec, &alloc, 1);
			}
			iov_to_buf(iov, iovcnt, done, buf, n);
			if (ret == 0)
				ret = host_file_pwrite(&bs->file, FC_DATA + pos, buf, n);
		}
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

static int fc_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return fc_rw(bs, offset, iov, iovcnt, false);
}

static int fc_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return fc_rw(bs, offset, iov, iovcnt, true);
}

static int fc_create(const char *filename, const struct block_create_args *args)
{
	uint8_t h[20 + 256] = FC_MAGIC;
	uint32_t n = args->backing ? (uint32_t)strlen(args->backing) : 0;
	struct host_file f;
	int ret;

	if (n > 255 || args->size > (uint64_t)FC_MAX_SECTORS * 512)
		return -EINVAL;
	block_opts_get(args->opts, "fake_option");
	memcpy(h + 8, &args->size, 8);
	memcpy(h + 16, &n, 4);
	if (n)
		memcpy(h + 20, args->backing, n);
	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0)
		return ret;
	ret = host_file_pwrite(&f, 0, h, sizeof(h));
	if (ret == 0)
		ret = host_file_truncate(&f, FC_DATA + args->size);
	host_file_close(&f);
	return ret;
}

static const struct block_driver fc_driver = {
    .name = "fakecow",
    .has_backing = true,
    .probe = fc_probe,
    .probe_bytes = 8,
    .open = fc_open,
    .create = fc_create,
    .preadv = fc_preadv,
    .pwritev = fc_pwritev,
};
BLOCK_DRIVER(fc_driver);

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-core");
}

static void create_fc(const char *name, uint64_t size, const char *backing)
{
	struct block_create_args a = {.size = size, .backing = backing};
	assert_int_equal(block_create("fakecow", test_path(name), &a), 0);
}

static void fill_raw(const char *name, size_t size, uint8_t seed)
{
	struct block_create_args a = {.size = size};
	struct block_device *bs;
	uint8_t *buf = malloc(size);

	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	assert_int_equal(block_create("raw", test_path(name), &a), 0);
	assert_int_equal(block_open(test_path(name), "raw", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_pwrite(bs, 0, buf, size), 0);
	block_close(bs);
	free(buf);
}

static void test_three_layer_chain(void **state)
{
	struct block_device *bs;
	uint8_t buf[8192], want[8192];

	(void)state;
	fill_raw("base.raw", 4096, 1); /* shorter than the overlays: zeroes past its end */
	create_fc("mid.fc", 8192, "base.raw");
	create_fc("top.fc", 8192, "mid.fc");

	/* Write into mid at sector 2..3, then top at sector 3. */
	assert_int_equal(block_open(test_path("mid.fc"), NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_string_equal(bs->drv->name, "fakecow");
	memset(buf, 0xAA, 1024);
	assert_int_equal(block_pwrite(bs, 1024, buf, 1024), 0);
	block_close(bs);
	assert_int_equal(block_open(test_path("top.fc"), NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_non_null(bs->backing);
	assert_non_null(bs->backing->backing);
	assert_string_equal(bs->backing->backing->drv->name, "raw");
	assert_null(bs->backing->backing->backing);
	/* backing files are read-only */
	assert_false(bs->backing->flags & BLOCK_OPEN_RDWR);
	memset(buf, 0xBB, 100);
	assert_int_equal(block_pwrite(bs, 1536 + 10, buf, 100), 0);

	for (size_t i = 0; i < 4096; i++)
		want[i] = (uint8_t)(1 + i * 7);
	memset(want + 4096, 0, 4096);
	memset(want + 1024, 0xAA, 1024);
	memset(want + 1546, 0xBB, 100);
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(block_pread(bs, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, want, sizeof(buf));
	/* An odd, split iovec read through the chain. */
	uint8_t a[333], b[1000];
	struct iovec v[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	assert_int_equal(block_preadv(bs, 3900, v, 2), 0);
	assert_memory_equal(a, want + 3900, sizeof(a));
	assert_memory_equal(b, want + 3900 + sizeof(a), sizeof(b));
	block_close(bs);
}

static void test_backing_relative_to_image_dir(void **state)
{
	struct block_device *bs;
	char cwd[512];

	(void)state;
	assert_int_equal(mkdir(test_path("sub"), 0755), 0);
	fill_raw("sub/base.raw", 4096, 9);
	create_fc("sub/top.fc", 4096, "base.raw");
	/* Open from another working directory: the name must resolve against sub/. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(block_open(test_path("sub/top.fc"), NULL, 0, &bs), 0);
	assert_non_null(bs->backing);
	block_close(bs);
	assert_int_equal(chdir(cwd), 0);
}

static void test_loop_detected(void **state)
{
	struct block_device *bs;

	(void)state;
	create_fc("loop-a.fc", 4096, "loop-b.fc");
	create_fc("loop-b.fc", 4096, "loop-a.fc");
	assert_int_equal(block_open(test_path("loop-a.fc"), NULL, 0, &bs), -ELOOP);
	assert_null(bs);
	assert_non_null(strstr(error_msg(), "loop"));
	/* self-reference */
	create_fc("self.fc", 4096, "self.fc");
	assert_int_equal(block_open(test_path("self.fc"), NULL, 0, &bs), -ELOOP);
	/* NO_BACKING opens it anyway (for info / rebase -u) */
	assert_int_equal(block_open(test_path("self.fc"), NULL, BLOCK_OPEN_NO_BACKING, &bs), 0);
	assert_string_equal(bs->backing_name, "self.fc");
	assert_null(bs->backing);
	block_close(bs);
}

static void test_depth_limit(void **state)
{
	struct block_device *bs;
	char name[64], prev[64];

	(void)state;
	fill_raw("d0", 512, 3);
	for (int i = 1; i <= BLOCK_MAX_CHAIN; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		snprintf(prev, sizeof(prev), "d%d", i - 1);
		create_fc(name, 512, prev);
	}
	/* d(MAX-1) has a chain of exactly BLOCK_MAX_CHAIN images: allowed. */
	snprintf(name, sizeof(name), "d%d", BLOCK_MAX_CHAIN - 1);
	assert_int_equal(block_open(test_path(name), NULL, 0, &bs), 0);
	block_close(bs);
	snprintf(name, sizeof(name), "d%d", BLOCK_MAX_CHAIN);
	assert_int_equal(block_open(test_path(name), NULL, 0, &bs), -ELOOP);
	assert_non_null(strstr(error_msg(), "deeper"));
}

static void test_missing_backing(void **state)
{
	struct block_device *bs;

	(void)state;
	create_fc("orphan.fc", 4096, "does-not-exist.raw");
	assert_int_equal(block_open(test_path("orphan.fc"), NULL, 0, &bs), -ENOENT);
	assert_non_null(strstr(error_msg(), "orphan.fc"));
	assert_non_null(strstr(error_msg(), "does-not-exist.raw"));
	assert_int_equal(block_open(test_path("nothing-here"), NULL, 0, &bs), -ENOENT);
	assert_non_null(strstr(error_msg(), "nothing-here"));
	assert_int_equal(block_open(test_path("orphan.fc"), "no-such-format", 0, &bs), -ENOTSUP);
}

/* A backing file that is a FIFO, a directory, a socket or a character device is refused at once
 * with a message naming it.  alarm() turns a regression (open() of a FIFO blocking forever) into a
 * failed test instead of a hung one. */
static void expect_hostile_backing(const char *top, const char *backing, const char *fmt, int err)
{
	struct block_device *bs;

	if (fmt) {
		struct block_create_args a = {
		    .size = 1 << 20, .backing = backing, .backing_fmt = "raw"};
		assert_int_equal(block_create(fmt, test_path(top), &a), 0);
	} else {
		create_fc(top, 4096, backing);
	}
	alarm(10);
	assert_int_equal(block_open(test_path(top), fmt, 0, &bs), err);
	alarm(0);
	assert_non_null(strstr(error_msg(), top));
	assert_non_null(strstr(error_msg(), backing));
	if (err == -ENODEV)
		assert_non_null(strstr(error_msg(), "not a regular file or block device"));
	/* Without the chain the image itself still opens. */
	assert_int_equal(block_open(test_path(top), fmt, BLOCK_OPEN_NO_BACKING, &bs), 0);
	block_close(bs);
}

static void test_hostile_backing(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct block_device *bs;
	int sock;

	(void)state;
	assert_int_equal(mkfifo(test_path("fifo"), 0600), 0);
	assert_int_equal(mkdir(test_path("dir"), 0700), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", test_path("sock"));
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(sock >= 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);

	expect_hostile_backing("on-fifo.qcow2", "fifo", "qcow2", -ENODEV);
	expect_hostile_backing("on-fifo.fc", "fifo", NULL, -ENODEV);
	expect_hostile_backing("on-dir.fc", "dir", NULL, -EISDIR);
	expect_hostile_backing("on-sock.fc", "sock", NULL, -ENODEV);
	/* A device node is refused by the path rule (storage/core/block_path.h); allowed, it is
	 * still no disk image. */
	expect_hostile_backing("on-null.fc", "/dev/null", NULL, -EPERM);
	assert_int_equal(block_open(test_path("on-null.fc"), NULL, 0, &bs), -EPERM);
	assert_non_null(strstr(error_msg(), "refusing backing file /dev/null"));
	assert_non_null(strstr(error_msg(), "a device node"));
	assert_int_equal(block_path_allow_dir("/dev"), 0);
	expect_hostile_backing("on-null2.fc", "/dev/null", NULL, -ENODEV);
	block_path_allow_clear();

	/* The same files given directly, probed or not. */
	alarm(10);
	assert_int_equal(block_open(test_path("fifo"), NULL, 0, &bs), -ENODEV);
	assert_int_equal(block_open(test_path("fifo"), "raw", BLOCK_OPEN_RDWR, &bs), -ENODEV);
	assert_int_equal(block_open("/dev/null", "raw", 0, &bs), -ENODEV);
	alarm(0);
	assert_non_null(strstr(error_msg(), "/dev/null"));
	close(sock);
}

/* The operations beyond I/O: a format without one says so by name (-ENOTSUP), and those that
 * write refuse an image opened read-only (-EROFS) before the driver runs. */
static void test_image_ops(void **state)
{
	struct block_create_args a = {.size = 1 << 20};
	struct block_check_result res;
	struct block_snapshot *list;
	struct block_device *bs;
	uint8_t uuid[16] = {1, 2, 3};
	uint32_t cs;
	int count;

	(void)state;
	create_fc("noops.fc", 4096, NULL);
	assert_int_equal(block_open(test_path("noops.fc"), "fakecow", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_check(bs, &res, 0), -ENOTSUP);
	assert_non_null(strstr(error_msg(), "noops.fc: format fakecow does not support"));
	assert_int_equal(block_info(bs, NULL), -ENOTSUP);
	assert_int_equal(block_set_backing(bs, "x", NULL), -ENOTSUP);
	assert_int_equal(block_get_uuid(bs, uuid), -ENOTSUP);
	assert_int_equal(block_set_uuid(bs, uuid), -ENOTSUP);
	assert_int_equal(block_snapshot_create(bs, "s"), -ENOTSUP);
	assert_int_equal(block_snapshot_list(bs, &list, &count), -ENOTSUP);
	assert_null(list);
	assert_int_equal(count, 0);
	assert_int_equal(block_snapshot_apply(bs, "s"), -ENOTSUP);
	assert_int_equal(block_snapshot_delete(bs, "s"), -ENOTSUP);
	assert_int_equal(block_cluster_size(bs, &cs), -ENOTSUP);
	assert_non_null(strstr(error_msg(), "fakecow"));
	block_close(bs);

	/* qcow2 has them all: read-only refuses the writes, the reads work. */
	assert_int_equal(block_create("qcow2", test_path("ops.qcow2"), &a), 0);
	assert_int_equal(block_open(test_path("ops.qcow2"), "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_snapshot_create(bs, "s1"), 0);
	block_close(bs);
	assert_int_equal(block_open(test_path("ops.qcow2"), "qcow2", 0, &bs), 0);
	assert_int_equal(block_snapshot_create(bs, "s2"), -EROFS);
	assert_non_null(strstr(error_msg(), "ops.qcow2: image opened read-only"));
	assert_int_equal(block_snapshot_apply(bs, "s1"), -EROFS);
	assert_int_equal(block_snapshot_delete(bs, "s1"), -EROFS);
	assert_int_equal(block_set_backing(bs, "x", "raw"), -EROFS);
	assert_int_equal(block_check(bs, &res, BLOCK_CHECK_FIX_LEAKS), -EROFS);
	assert_int_equal(block_check(bs, &res, 0), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(block_snapshot_list(bs, &list, &count), 0);
	assert_int_equal(count, 1);
	assert_string_equal(list[0].name, "s1");
	free(list);
	assert_int_equal(block_cluster_size(bs, &cs), 0);
	assert_int_equal(cs, 65536);
	assert_null(bs->backing_name); /* the refused set_backing changed nothing */
	block_close(bs);

	/* A format with a UUID: it reads, and a read-only image keeps it. */
	uint8_t before[16], after[16];
	assert_int_equal(block_create("vdi", test_path("ops.vdi"), &a), 0);
	assert_int_equal(block_open(test_path("ops.vdi"), "vdi", 0, &bs), 0);
	assert_int_equal(block_get_uuid(bs, before), 0);
	assert_int_equal(block_set_uuid(bs, uuid), -EROFS);
	block_close(bs);
	assert_int_equal(block_open(test_path("ops.vdi"), "vdi", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_get_uuid(bs, after), 0);
	assert_memory_equal(before, after, 16);
	assert_int_equal(block_set_uuid(bs, uuid), 0);
	assert_int_equal(block_get_uuid(bs, after), 0);
	assert_memory_equal(uuid, after, 16);
	block_close(bs);
}

/* Every format driver that stores a sector-granular disk rounds a size that is not a multiple of
 * 512 up itself (callers other than `img create` need not know).  raw keeps the exact size. */
static void test_create_rounds_to_sectors(void **state)
{
	static const char *const fmts[] = {"qcow2", "vdi", "vmdk", "vpc"};
	struct block_create_args a = {.size = 1000001};
	struct block_device *bs;
	char name[32];

	(void)state;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		snprintf(name, sizeof(name), "odd.%s", fmts[i]);
		assert_int_equal(block_create(fmts[i], test_path(name), &a), 0);
		assert_int_equal(block_open(test_path(name), fmts[i], 0, &bs), 0);
		print_message("%s: %llu\n", fmts[i], (unsigned long long)bs->size);
		assert_int_equal(bs->size % 512, 0);
		assert_true(bs->size >= a.size);
		if (strcmp(fmts[i], "vpc")) /* vpc rounds further, to a CHS geometry */
			assert_int_equal(bs->size, 1000448);
		block_close(bs);
	}
}

static void test_range_and_readonly(void **state)
{
	struct block_device *bs;
	uint8_t buf[512] = {0};

	(void)state;
	fill_raw("range.raw", 4096, 5);
	assert_int_equal(block_open(test_path("range.raw"), "raw", 0, &bs), 0);
	assert_int_equal(bs->size, 4096);
	assert_int_equal(block_pread(bs, 4096 - 512, buf, 512), 0);
	assert_int_equal(block_pread(bs, 4096 - 511, buf, 512), -EINVAL);
	assert_non_null(strstr(error_msg(), "beyond"));
	assert_int_equal(block_pread(bs, UINT64_MAX - 10, buf, 512), -EINVAL);
	assert_int_equal(block_pwrite(bs, 0, buf, 512), -EROFS);
	assert_int_equal(block_discard(bs, 0, 512), -EROFS);
	assert_int_equal(block_truncate(bs, 8192, BLOCK_PREALLOC_OFF, false), -EROFS);
	block_close(bs);
	assert_int_equal(block_open(test_path("range.raw"), "raw", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_write_zeroes(bs, 4000, 200, 0), -EINVAL);
	assert_int_equal(block_truncate(bs, 1024, BLOCK_PREALLOC_OFF, false), -EINVAL);
	assert_int_equal(block_status(bs, 0, 0, &(uint64_t){0}, &(int){0}, &(uint64_t){0}),
			 -EINVAL);
	block_close(bs);
}

static void test_probe(void **state)
{
	const struct block_driver *drv;

	(void)state;
	create_fc("probe.fc", 512, NULL);
	fill_raw("probe.raw", 512, 0);
	assert_int_equal(block_probe(test_path("probe.fc"), &drv), 0);
	assert_string_equal(drv->name, "fakecow");
	assert_int_equal(block_probe(test_path("probe.raw"), &drv), 0);
	assert_string_equal(drv->name, "raw");
	/* an empty file probes as raw */
	int fd = open(test_path("empty"), O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(block_probe(test_path("empty"), &drv), 0);
	assert_string_equal(drv->name, "raw");
	assert_int_equal(block_probe(test_path("none"), &drv), -ENOENT);
	assert_int_equal(block_probe(test_tmpdir, &drv), -EISDIR);
}

static void test_create_options(void **state)
{
	struct block_opts o = {0};
	struct block_create_args a = {.size = 512, .opts = &o};
	struct stat st;

	(void)state;
	assert_int_equal(block_opts_parse(&o, "fake_option=1,bogus=2"), 0);
	assert_int_equal(block_create("fakecow", test_path("opt.fc"), &a), -EINVAL);
	assert_non_null(strstr(error_msg(), "bogus"));
	assert_int_equal(stat(test_path("opt.fc"), &st), -1); /* removed again */
	block_opts_free(&o);
	assert_int_equal(block_opts_parse(&o, "fake_option=1"), 0);
	assert_int_equal(block_create("fakecow", test_path("opt.fc"), &a), 0);
	/* an existing file is not overwritten */
	assert_int_equal(block_create("fakecow", test_path("opt.fc"), &a), -EEXIST);
	block_opts_free(&o);
	assert_int_equal(block_create("nope", test_path("x"), &a), -ENOTSUP);
	/* raw refuses a backing file */
	a.opts = NULL;
	a.backing = "opt.fc";
	assert_int_equal(block_create("raw", test_path("rb"), &a), -ENOTSUP);
	/* size 0 with a backing file takes the backing size */
	struct block_device *bs;
	a.size = 0;
	assert_int_equal(block_create("fakecow", test_path("inherit.fc"), &a), 0);
	assert_int_equal(block_open(test_path("inherit.fc"), NULL, 0, &bs), 0);
	assert_int_equal(bs->size, 512);
	block_close(bs);
}

/* A guest must not turn a probed raw disk into another format (CVE-2008-2004). */
static void test_probed_raw_guard(void **state)
{
	struct block_device *bs;
	uint8_t sec[512], chk[512];

	(void)state;
	fill_raw("guard.raw", 8192, 4);
	assert_int_equal(block_open(test_path("guard.raw"), NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_string_equal(bs->drv->name, "raw");
	assert_true(bs->flags & BLOCK_OPEN_PROBED);
	assert_int_equal(block_pread(bs, 0, sec, 512), 0);
	assert_int_equal(block_pwrite(bs, 0, FC_MAGIC, 8), -EPERM);
	assert_non_null(strstr(error_msg(), "fakecow"));
	/* the magic split over two writes is caught by the second */
	assert_int_equal(block_pwrite(bs, 0, "FAKE", 4), 0);
	assert_int_equal(block_pwrite(bs, 4, "COW1", 4), -EPERM);
	assert_int_equal(block_pread(bs, 0, chk, 512), 0);
	assert_memory_equal(chk + 4, sec + 4, 508);
	/* ordinary writes to sector 0 and beyond it are fine */
	memset(sec, 0x11, sizeof(sec));
	assert_int_equal(block_pwrite(bs, 0, sec, 512), 0);
	assert_int_equal(block_pwrite(bs, 512, FC_MAGIC, 8), 0);
	block_close(bs);
	/* with the format given explicitly, the guest owns every byte */
	assert_int_equal(block_open(test_path("guard.raw"), "raw", BLOCK_OPEN_RDWR, &bs), 0);
	assert_false(bs->flags & BLOCK_OPEN_PROBED);
	assert_int_equal(block_pwrite(bs, 0, FC_MAGIC, 8), 0);
	block_close(bs);
}

static void test_opts_parse(void **state)
{
	struct block_opts o = {0};

	(void)state;
	assert_int_equal(block_opts_parse(&o, "a=1,b=x,,y,c,a=3"), 0);
	assert_int_equal(o.n, 4);
	assert_string_equal(block_opts_get(&o, "b"), "x,y");
	assert_string_equal(block_opts_get(&o, "c"), "on");
	assert_string_equal(block_opts_unused(&o), "a");
	assert_string_equal(block_opts_get(&o, "a"), "3");
	assert_null(block_opts_unused(&o));
	assert_null(block_opts_get(&o, "zz"));
	assert_int_equal(block_opts_parse(&o, "=5"), -EINVAL);
	block_opts_free(&o);
	assert_int_equal(o.n, 0);
}

/* One typed lookup of key=value through a fresh option list. */
static int opt_size(const char *value, uint64_t *out)
{
	char text[128];
	struct block_opts o = {0};

	snprintf(text, sizeof(text), "s=%s", value);
	assert_int_equal(block_opts_parse(&o, text), 0);
	int ret = block_opts_get_size(&o, "img.x", "s", out);
	assert_null(block_opts_unused(&o)); /* looked up, so used, even when bad */
	block_opts_free(&o);
	return ret;
}

static void test_opts_typed(void **state)
{
	static const struct {
		const char *text;
		uint64_t want;
	} good[] = {
	    {"65536", 65536},	{"64K", 65536},	      {"64k", 65536},
	    {"1M", 1 << 20},	{"2GiB", 2ull << 30}, {"1tb", 1ull << 40},
	    {"512b", 512},	{"010", 10},	      {"0", 0},
	    {"8T", 8ull << 40},
	};
	static const char *const bad[] = {
	    "",
	    "x",
	    "-1",
	    " 1",
	    "+1",
	    "0x10",
	    "1Q",
	    "1KK",
	    "1MiBx",
	    "17592186044417M",
	    "18446744073709551616",
	    "16777216T",
	};
	struct block_opts o = {0};
	uint64_t n;
	bool b;
	enum block_prealloc p;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = 12345;
		if (opt_size(good[i].text, &n) != 0 || n != good[i].want)
			fail_msg("size '%s' gave %llu, not %llu", good[i].text,
				 (unsigned long long)n, (unsigned long long)good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 12345;
		if (opt_size(bad[i], &n) != -EINVAL || n != 12345)
			fail_msg("size '%s' was accepted (%llu)", bad[i], (unsigned long long)n);
		assert_non_null(strstr(error_msg(), "img.x: s="));
	}
	/* Absent keys leave the default alone; NULL lists are empty. */
	n = 7;
	b = true;
	p = BLOCK_PREALLOC_FULL;
	assert_int_equal(block_opts_get_size(NULL, "f", "s", &n), 0);
	assert_int_equal(block_opts_get_bool(&o, "f", "b", &b), 0);
	assert_int_equal(block_opts_get_prealloc(&o, "f", &p), 0);
	assert_int_equal(n, 7);
	assert_true(b);
	assert_int_equal(p, BLOCK_PREALLOC_FULL);

	assert_int_equal(block_opts_parse(&o, "a=on,b=OFF,c=Yes,d=0,e=1,f=false,g,h=maybe"), 0);
	const char *keys = "abcdefg";
	const bool want[] = {true, false, true, false, true, false, true};
	for (int i = 0; keys[i]; i++) {
		char key[2] = {keys[i], 0};
		b = !want[i];
		assert_int_equal(block_opts_get_bool(&o, "f", key, &b), 0);
		assert_int_equal(b, want[i]);
	}
	b = true;
	assert_int_equal(block_opts_get_bool(&o, "img.y", "h", &b), -EINVAL);
	assert_true(b);
	assert_non_null(strstr(error_msg(), "img.y: h=maybe"));
	block_opts_free(&o);

	static const char *const modes[] = {"off", "metadata", "falloc", "full"};
	for (int i = 0; i < 4; i++) {
		char text[32];
		snprintf(text, sizeof(text), "preallocation=%s", modes[i]);
		assert_int_equal(block_opts_parse(&o, text), 0);
		p = i == 0 ? BLOCK_PREALLOC_FULL : BLOCK_PREALLOC_OFF;
		assert_int_equal(block_opts_get_prealloc(&o, "f", &p), 0);
		assert_int_equal(p, (enum block_prealloc)i);
		block_opts_free(&o);
	}
	assert_int_equal(block_opts_parse(&o, "preallocation=Full"), 0);
	assert_int_equal(block_opts_get_prealloc(&o, "img.z", &p), -EINVAL);
	assert_non_null(strstr(error_msg(), "img.z: preallocation=Full"));
	block_opts_free(&o);
}

static void test_iov_helpers(void **state)
{
	char a[3], b[5], c[2], flat[10];
	struct iovec v[3] = {{a, 3}, {b, 5}, {c, 2}}, out[3];

	(void)state;
	/* iov_scratch: the caller's array up to IOV_SCRATCH_MAX entries, a heap one beyond */
	struct iovec local[IOV_SCRATCH_MAX], *heap;
	assert_ptr_equal(iov_scratch(local, IOV_SCRATCH_MAX, &heap), local);
	assert_null(heap);
	struct iovec *big = iov_scratch(local, IOV_SCRATCH_MAX + 1, &heap);
	assert_non_null(big);
	assert_ptr_equal(big, heap);
	assert_ptr_not_equal(big, local);
	big[IOV_SCRATCH_MAX] = v[0]; /* the whole array is usable (ASan checks the bound) */
	free(heap);
	assert_int_equal(iov_size(v, 3), 10);
	assert_int_equal(iov_from_buf(v, 3, 0, "0123456789", 10), 10);
	assert_memory_equal(a, "012", 3);
	assert_memory_equal(b, "34567", 5);
	assert_memory_equal(c, "89", 2);
	assert_int_equal(iov_to_buf(v, 3, 2, flat, 7), 7);
	assert_memory_equal(flat, "2345678", 7);
	assert_int_equal(iov_to_buf(v, 3, 8, flat, 7), 2); /* short: iov ends */
	iov_memset(v, 3, 2, 'x', 4);
	assert_memory_equal(a, "01x", 3);
	assert_memory_equal(b, "xxx67", 5);
	assert_int_equal(iov_slice(v, 3, 1, 8, out, 3), 3);
	assert_ptr_equal(out[0].iov_base, a + 1);
	assert_int_equal(out[0].iov_len, 2);
	assert_int_equal(out[1].iov_len, 5);
	assert_int_equal(out[2].iov_len, 1);
	assert_int_equal(iov_slice(v, 3, 1, 8, out, 2), -EINVAL);
	assert_int_equal(iov_slice(v, 3, 5, 6, out, 3), -EINVAL); /* past the end */
	assert_int_equal(iov_slice(v, 3, 4, 0, out, 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_three_layer_chain),
	    cmocka_unit_test(test_backing_relative_to_image_dir),
	    cmocka_unit_test(test_loop_detected),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_missing_backing),
	    cmocka_unit_test(test_hostile_backing),
	    cmocka_unit_test(test_image_ops),
	    cmocka_unit_test(test_create_rounds_to_sectors),
	    cmocka_unit_test(test_range_and_readonly),
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_create_options),
	    cmocka_unit_test(test_probed_raw_guard),
	    cmocka_unit_test(test_opts_parse),
	    cmocka_unit_test(test_opts_typed),
	    cmocka_unit_test(test_iov_helpers),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
