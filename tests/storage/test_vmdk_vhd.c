/* Tests of the VMDK and VHD drivers (storage/vmdk*.c, storage/vhd*.c) through the block API, with
 * qemu-img as the oracle, in both directions:
 *  - images qemu-img converts from a raw pattern (every VMDK subformat, zeroed grains, VHD fixed
 * and dynamic) read back identically through minivmm;
 *  - images minivmm creates take a seeded random workload checked against a raw shadow file, then
 *    `qemu-img compare` (and `qemu-img check` for VMDK) agree, split extents crossed at 2 GiB;
 *  - VMDK backing (parentFileNameHint, parentCID), stream-optimized images with a footer, UUIDs,
 *    VHD sizes and geometry against qemu-img, concurrent writers.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-vmdkvhd");
}

static void create_img(const char *fmt, const char *path, uint64_t size, const char *opts,
		       const char *backing)
{
	struct block_opts o = {0};
	struct block_create_args a = {.size = size, .opts = &o, .backing = backing};

	if (opts)
		assert_int_equal(block_opts_parse(&o, opts), 0);
	if (block_create(fmt, path, &a) != 0)
		fail_msg("create %s %s: %s", path, opts ? opts : "", error_msg());
	block_opts_free(&o);
}

static struct block_device *open_img(const char *path, const char *fmt, int flags)
{
	struct block_device *bs = NULL;

	if (block_open(path, fmt, flags, &bs) != 0)
		fail_msg("open %s: %s", path, error_msg());
	return bs;
}

/* A pattern with data, written zeroes and holes in 192 KiB pieces (not grain or block aligned). */
static void fill_pattern(uint8_t *p, size_t size, uint64_t seed)
{
	uint64_t s = seed;

	memset(p, 0, size);
	for (size_t off = 0; off < size; off += 192 * 1024) {
		uint64_t kind = test_xorshift(&s) % 3;
		size_t n = size - off < 192 * 1024 ? size - off : 192 * 1024;
		if (kind == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			p[off + i] = kind == 1 ? 0 : (uint8_t)test_xorshift(&s);
	}
}

static void assert_reads(struct block_device *bs, const uint8_t *expect, size_t size)
{
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	if (block_pread(bs, 0, buf, size) != 0)
		fail_msg("read %s: %s", bs->filename, error_msg());
	for (size_t i = 0; i < size; i++)
		if (buf[i] != expect[i])
			fail_msg("%s: byte %zu: read %#x, expected %#x", bs->filename, i, buf[i],
				 expect[i]);
	free(buf);
}

struct cfg {
	const char *fmt, *opts;
};

static const struct cfg cfgs[] = {
    {"vmdk", "subformat=monolithicSparse"},
    {"vmdk", "subformat=monolithicFlat"},
    {"vmdk", "subformat=twoGbMaxExtentSparse"},
    {"vmdk", "subformat=twoGbMaxExtentFlat"},
    {"vmdk", "subformat=streamOptimized"},
    {"vmdk", "subformat=monolithicSparse,zeroed_grain=on"},
    {"vpc", "subformat=dynamic"},
    {"vpc", "subformat=fixed"},
};
#define NCFG (sizeof(cfgs) / sizeof(cfgs[0]))

/* qemu-img converts a raw pattern into every subformat; minivmm reads the same bytes. */
static void test_reads_qemu_images(void **state)
{
	size_t size = 9 * MiB + 512 * 3; /* vpc rounds to its geometry: compare the common part */
	uint8_t *p = malloc(size);

	char cwd[512];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	fill_pattern(p, size, 0x5eed);
	FILE *f = fopen(test_path("src.raw"), "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, size, f), size);
	fclose(f);
	for (size_t i = 0; i < NCFG; i++) {
		test_run("rm -f %s/q*", test_tmpdir);
		assert_int_equal(test_run("qemu-img convert -f raw -O %s -o %s %s %s", cfgs[i].fmt,
					  cfgs[i].opts, test_path("src.raw"), test_path("q.img")),
				 0);
		struct block_device *bs = open_img(test_path("q.img"), cfgs[i].fmt, 0);
		assert_true(bs->size >= size);
		assert_reads(bs, p, size);
		block_close(bs);
		/* `info` fields as qemu-img shows them (format-specific data of VMDK) */
		if (!strcmp(cfgs[i].fmt, "vmdk")) {
			char cmd[1024], out[8192] = {0};
			snprintf(cmd, sizeof(cmd), "cd %s && qemu-img info --output=json q.img",
				 test_tmpdir);
			FILE *q = popen(cmd, "r");
			assert_non_null(q);
			size_t got = fread(out, 1, sizeof(out) - 1, q);
			pclose(q);
			out[got] = 0;
			struct json_object *qj = json_tokener_parse(out), *fs, *qd;
			assert_non_null(qj);
			assert_true(json_object_object_get_ex(qj, "format-specific", &fs));
			assert_true(json_object_object_get_ex(fs, "data", &qd));
			struct json_object *mine = json_object_new_object();
			assert_int_equal(chdir(test_tmpdir),
					 0); /* extent names as qemu-img prints them */
			struct block_device *rel = open_img("q.img", "vmdk", 0);
			assert_int_equal(rel->drv->info(rel, mine), 0);
			block_close(rel);
			assert_int_equal(chdir(cwd), 0);
			assert_string_equal(json_object_to_json_string(mine),
					    json_object_to_json_string(qd));
			json_object_put(mine);
			json_object_put(qj);
		}
		/* The same image found by probing (fixed VHDs have no header to probe). */
		if (strcmp(cfgs[i].opts, "subformat=fixed")) {
			bs = open_img(test_path("q.img"), NULL, 0);
			assert_string_equal(bs->drv->name, cfgs[i].fmt);
			block_close(bs);
		}
	}
	free(p);
}

/* Seeded random writes (unaligned, crossing grains, blocks and extents) and reads against a raw
 * shadow file; the image is reopened and compared by minivmm and by qemu-img. */
static void workload(const struct cfg *c, uint64_t size, uint64_t seed)
{
	enum { ROUNDS = 300, MAXLEN = 600 * 1024 };
	uint8_t *buf = malloc(MAXLEN), *got = malloc(MAXLEN);
	const char *img = test_path("w.img"), *shadow = test_path("w.raw");
	uint64_t s = seed;
	int sfd;

	test_run("rm -f %s/w*", test_tmpdir);
	create_img(c->fmt, img, size, c->opts, NULL);
	struct block_device *bs = open_img(img, c->fmt, BLOCK_OPEN_RDWR);
	size = bs->size; /* vpc rounds up to its geometry */
	sfd = open(shadow, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(sfd >= 0);
	assert_int_equal(ftruncate(sfd, (off_t)size), 0);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t op = test_xorshift(&s) % 10;
		uint64_t unit = test_xorshift(&s) % 4 ? 512 : 1;
		uint64_t len = (1 + test_xorshift(&s) % (MAXLEN / unit)) * unit;
		/* Half the requests near the start, half around the 2 GiB split (when there). */
		uint64_t span = size < 32 * MiB ? size : 32 * MiB;
		uint64_t base = size > 2 * GiB && (r & 1) ? 2 * GiB - 16 * MiB : 0;
		uint64_t off = base + (test_xorshift(&s) % (span / unit)) * unit;
		if (off >= size)
			off = size - unit;
		if (len > size - off)
			len = size - off;
		if (op < 5) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_xorshift(&s);
			if (op == 4)
				memset(buf, 0, len / 2); /* zero runs inside data */
			if (block_pwrite(bs, off, buf, len) != 0)
				fail_msg("%s: write: %s", c->opts, error_msg());
			assert_int_equal(pwrite(sfd, buf, len, (off_t)off), (ssize_t)len);
		} else if (op < 8) {
			if (block_pread(bs, off, got, len) != 0)
				fail_msg("%s: read: %s", c->opts, error_msg());
			assert_int_equal(pread(sfd, buf, len, (off_t)off), (ssize_t)len);
			if (memcmp(buf, got, len))
				fail_msg("%s: round %d: read at %llu+%llu differs", c->opts, r,
					 (unsigned long long)off, (unsigned long long)len);
		} else if (op < 9) {
			if (block_write_zeroes(bs, off, len, 0) != 0)
				fail_msg("%s: write_zeroes: %s", c->opts, error_msg());
			memset(buf, 0, len);
			assert_int_equal(pwrite(sfd, buf, len, (off_t)off), (ssize_t)len);
		} else {
			assert_int_equal(block_flush(bs), 0);
		}
	}
	block_close(bs);
	close(sfd);
	if (test_run("qemu-img compare -q -f raw -F %s %s %s", c->fmt, shadow, img) != 0)
		fail_msg("%s: qemu-img compare differs", c->opts);
	if (!strcmp(c->fmt, "vmdk") && test_run("qemu-img check -q %s", img) != 0)
		fail_msg("%s: qemu-img check failed", c->opts);
	/* And minivmm agrees after reopening. */
	bs = open_img(img, c->fmt, 0);
	sfd = open(shadow, O_RDONLY);
	for (uint64_t off = 0; off < size;) {
		uint64_t n = size - off < MAXLEN ? size - off : MAXLEN;
		if (off >= 40 * MiB && off < 2 * GiB - 20 * MiB)
			off = 2 * GiB - 20 * MiB; /* untouched middle */
		n = size - off < MAXLEN ? size - off : MAXLEN;
		assert_int_equal(block_pread(bs, off, got, n), 0);
		assert_int_equal(pread(sfd, buf, n, (off_t)off), (ssize_t)n);
		if (memcmp(buf, got, n))
			fail_msg("%s: reopened image differs at %llu", c->opts,
				 (unsigned long long)off);
		off += n;
	}
	close(sfd);
	block_close(bs);
	free(buf);
	free(got);
}

static void test_workloads(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCFG; i++) {
		bool split = strstr(cfgs[i].opts, "twoGb") != NULL;
		workload(&cfgs[i], split ? 2 * GiB + 24 * MiB : 24 * MiB + 1536, 0x1000 + i);
	}
}

static long long desc_hex(const char *path, const char *key)
{
	char buf[4096];
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (size_t i = 0; i < n; i++) /* the embedded descriptor follows a binary header */
		if (!buf[i])
			buf[i] = ' ';
	char *p = strstr(buf, key);
	assert_non_null(p);
	return strtoll(p + strlen(key), NULL, 16);
}

/* A VMDK child over a VMDK parent: reads fall through, partial-grain writes merge with the parent,
 * and qemu-img reads the child the same way. */
static void test_vmdk_backing(void **state)
{
	size_t size = 4 * MiB;
	uint8_t *p = malloc(size);

	(void)state;
	test_run("rm -f %s/b*", test_tmpdir);
	fill_pattern(p, size, 77);
	FILE *f = fopen(test_path("b.raw"), "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, size, f), size);
	fclose(f);
	assert_int_equal(test_run("qemu-img convert -f raw -O vmdk %s %s", test_path("b.raw"),
				  test_path("base.vmdk")),
			 0);
	create_img("vmdk", test_path("child.vmdk"), 0, NULL, "base.vmdk");
	long long cid0 = desc_hex(test_path("child.vmdk"), "\nCID=");
	struct block_device *bs = open_img(test_path("child.vmdk"), NULL, BLOCK_OPEN_RDWR);
	assert_non_null(bs->backing);
	assert_int_equal(bs->size, size);
	assert_reads(bs, p, size);
	memset(p + 70000, 0xab, 3000);
	assert_int_equal(block_pwrite(bs, 70000, p + 70000, 3000), 0);
	assert_reads(bs, p, size);
	block_close(bs);
	f = fopen(test_path("b.raw"), "wb");
	assert_int_equal(fwrite(p, 1, size, f), size);
	fclose(f);
	assert_int_equal(test_run("qemu-img compare -q -f raw %s %s", test_path("b.raw"),
				  test_path("child.vmdk")),
			 0);
	/* parentCID is the parent's CID (compared as numbers: qemu-img does not zero-pad) */
	assert_int_equal(desc_hex(test_path("child.vmdk"), "parentCID="),
			 desc_hex(test_path("base.vmdk"), "\nCID="));
	/* The first write gave the child a new CID; the base kept its own */
	assert_true(desc_hex(test_path("child.vmdk"), "\nCID=") != cid0);
	assert_int_equal(desc_hex(test_path("child.vmdk"), "parentCID="),
			 desc_hex(test_path("base.vmdk"), "\nCID="));
	/* Rebase: drop the parent (the child alone reads zeroes where it wrote nothing), then
	 * record it again. */
	bs = open_img(test_path("child.vmdk"), "vmdk", BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING);
	assert_int_equal(bs->drv->set_backing(bs, NULL, NULL), 0);
	block_close(bs);
	bs = open_img(test_path("child.vmdk"), "vmdk", BLOCK_OPEN_RDWR);
	assert_null(bs->backing);
	assert_int_equal(desc_hex(test_path("child.vmdk"), "parentCID="), 0xffffffff);
	assert_int_equal(bs->drv->set_backing(bs, "base.vmdk", "vmdk"), 0);
	block_close(bs);
	assert_int_equal(test_run("qemu-img compare -q -f raw %s %s", test_path("b.raw"),
				  test_path("child.vmdk")),
			 0);
	assert_int_equal(test_run("qemu-img check -q %s", test_path("child.vmdk")), 0);
	/* The base, untouched */
	assert_int_equal(
	    test_run("qemu-img compare -q %s %s", test_path("base.vmdk"), test_path("child.vmdk")),
	    1);
	free(p);
}

/* A streamOptimized extent whose GD lives in a footer (as VMware writes them): built from
 * qemu-img's image by moving the header's GD offset into a footer at the end. Read-only. */
static void test_vmdk_stream_footer(void **state)
{
	size_t size = 3 * MiB;
	uint8_t *p = malloc(size), hdr[512], marker[512] = {0}, eos[512] = {0};

	(void)state;
	test_run("rm -f %s/s*", test_tmpdir);
	fill_pattern(p, size, 99);
	FILE *f = fopen(test_path("s.raw"), "wb");
	assert_int_equal(fwrite(p, 1, size, f), size);
	fclose(f);
	assert_int_equal(
	    test_run("qemu-img convert -f raw -O vmdk -o subformat=streamOptimized %s %s",
		     test_path("s.raw"), test_path("s.vmdk")),
	    0);
	int fd = open(test_path("s.vmdk"), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, hdr, 512, 0), 512);
	off_t end = lseek(fd, 0, SEEK_END);
	end = (end + 511) / 512 * 512;
	marker[12] = 3; /* footer marker: lba 0, size 0, type 3 */
	assert_int_equal(pwrite(fd, marker, 512, end), 512);
	assert_int_equal(pwrite(fd, hdr, 512, end + 512), 512);
	assert_int_equal(pwrite(fd, eos, 512, end + 1024), 512);
	memset(hdr + 56, 0xff, 8); /* gdOffset = GD_AT_END in the header */
	assert_int_equal(pwrite(fd, hdr, 512, 0), 512);
	close(fd);
	assert_int_equal(test_run("cp %s %s", test_path("s.vmdk"), test_path("s.copy")), 0);
	struct block_device *bs = open_img(test_path("s.vmdk"), "vmdk", BLOCK_OPEN_RDWR);
	assert_reads(bs, p, size);
	assert_int_equal(block_pwrite(bs, 0, p, 512), -ENOTSUP);
	assert_non_null(strstr(error_msg(), "s.vmdk"));
	block_close(bs);
	/* the refused write changed nothing, not even the CID */
	assert_int_equal(test_run("cmp -s %s %s", test_path("s.vmdk"), test_path("s.copy")), 0);
	assert_int_equal(
	    test_run("qemu-img compare -q -f raw %s %s", test_path("s.raw"), test_path("s.vmdk")),
	    0);
	free(p);
}

static void test_uuids(void **state)
{
	static const uint8_t u[16] = {1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16};
	const char *fmts[] = {"vmdk", "vpc"};
	uint8_t got[16];

	(void)state;
	for (int i = 0; i < 2; i++) {
		test_run("rm -f %s/u.img", test_tmpdir);
		create_img(fmts[i], test_path("u.img"), 5 * MiB, NULL, NULL);
		struct block_device *bs = open_img(test_path("u.img"), fmts[i], BLOCK_OPEN_RDWR);
		assert_int_equal(bs->drv->set_uuid(bs, u), 0);
		block_close(bs);
		bs = open_img(test_path("u.img"), fmts[i], 0);
		assert_int_equal(bs->drv->get_uuid(bs, got), 0);
		assert_memory_equal(got, u, 16);
		block_close(bs);
		assert_int_equal(
		    test_run("qemu-img check -q -f %s %s 2>/dev/null; qemu-img info -f %s "
			     "%s >/dev/null",
			     fmts[i], test_path("u.img"), fmts[i], test_path("u.img")),
		    0);
		if (i == 0) /* VMware's notation, in the embedded descriptor */
			assert_int_equal(
			    test_run("grep -a -q 'ddb.uuid.image=\"01 02 03 04 05 06 47 "
				     "08-89 0a 0b 0c 0d 0e 0f 10\"' %s",
				     test_path("u.img")),
			    0);
	}
}

/* Virtual sizes of new VHDs (CHS-rounded, or exact with force_size) as qemu-img reads them and
 * as qemu-img itself creates them. */
static void test_vhd_sizes(void **state)
{
	static const uint64_t sizes[] = {1 * MiB,  10 * MiB + 512,	127 * MiB, 1 * GiB + 12345,
					 40 * GiB, 127 * GiB + 7 * MiB, 200 * GiB, 2040ull * GiB};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int force = 0; force < 2; force++) {
			test_run("rm -f %s/v*", test_tmpdir);
			create_img("vpc", test_path("v1.vhd"), sizes[i],
				   force ? "force_size=on" : NULL, NULL);
			assert_int_equal(test_run("qemu-img create -q -f vpc %s %s %llu",
						  force ? "-o force_size=on" : "",
						  test_path("v2.vhd"),
						  (unsigned long long)sizes[i]),
					 0);
			struct block_device *a = open_img(test_path("v1.vhd"), "vpc", 0);
			struct block_device *b = open_img(test_path("v2.vhd"), "vpc", 0);
			snprintf(out, sizeof(out), "%llu", (unsigned long long)a->size);
			if (a->size != b->size)
				fail_msg("size %llu force %d: minivmm %llu, qemu-img %llu",
					 (unsigned long long)sizes[i], force,
					 (unsigned long long)a->size, (unsigned long long)b->size);
			block_close(a);
			block_close(b);
			assert_int_equal(
			    test_run("test \"$(qemu-img info --output=json %s | grep -o "
				     "'\"virtual-size\": [0-9]*' | grep -o '[0-9]*$')\" = %s",
				     test_path("v1.vhd"), out),
			    0);
		}
	}
}

/* A differencing VHD over a dynamic VHD that qemu-img made: reads fall through to the parent,
 * writes (partial blocks included) merge with it, a block whose bitmap a foreign writer left
 * partly clear takes the cleared sectors from the parent, and the parent is never written. */
static void test_vhd_differencing(void **state)
{
	size_t size = 6 * MiB;
	uint8_t *p = malloc(size), *buf = malloc(size);
	uint64_t s = 4242;

	(void)state;
	test_run("rm -f %s/d*", test_tmpdir);
	fill_pattern(p, size, 31);
	FILE *f = fopen(test_path("d.raw"), "wb");
	assert_int_equal(fwrite(p, 1, size, f), size);
	fclose(f);
	assert_int_equal(test_run("qemu-img convert -f raw -O vpc -o force_size=on %s %s",
				  test_path("d.raw"), test_path("dbase.vhd")),
			 0);
	assert_int_equal(test_run("cp %s %s", test_path("dbase.vhd"), test_path("dbase.orig")), 0);
	create_img("vpc", test_path("dchild.vhd"), 0, NULL, "dbase.vhd");
	struct block_device *bs = open_img(test_path("dchild.vhd"), NULL, BLOCK_OPEN_RDWR);
	assert_string_equal(bs->drv->name, "vpc");
	assert_non_null(bs->backing);
	assert_int_equal(bs->size, size);
	assert_reads(bs, p, size);
	for (int r = 0; r < 60; r++) {
		uint64_t off = test_xorshift(&s) % size, len = 1 + test_xorshift(&s) % (300 * 1024);
		if (len > size - off)
			len = size - off;
		for (size_t i = 0; i < len; i++)
			p[off + i] = (uint8_t)test_xorshift(&s);
		assert_int_equal(block_pwrite(bs, off, p + off, len), 0);
	}
	memset(p, 0x77, 32 * 512); /* the child's own sectors 0-31, unlike the parent's */
	assert_int_equal(block_pwrite(bs, 0, p, 32 * 512), 0);
	assert_reads(bs, p, size);
	block_close(bs);
	assert_int_equal(test_run("cmp -s %s %s", test_path("dbase.vhd"), test_path("dbase.orig")),
			 0);

	/* Clear the bitmap bits of sectors 8..15 of the child's first allocated block, as a writer
	 * that stored only some sectors would leave them: they read from the parent again. */
	int fd = open(test_path("dchild.vhd"), O_RDWR);
	uint8_t hdr[1024];
	uint32_t bat0;
	assert_int_equal(pread(fd, hdr, 1024, 512), 1024);
	uint64_t bat_off = 0;
	for (int i = 0; i < 8; i++)
		bat_off = bat_off << 8 | hdr[16 + i];
	assert_int_equal(pread(fd, &bat0, 4, (off_t)bat_off), 4);
	uint64_t blk = (uint64_t)__builtin_bswap32(bat0) * 512;
	assert_true(__builtin_bswap32(bat0) != 0xffffffffu);
	uint8_t zero = 0;
	assert_int_equal(pwrite(fd, &zero, 1, (off_t)blk + 1), 1);
	close(fd);
	f = fopen(test_path("d.raw"), "rb");
	assert_int_equal(fread(buf, 1, size, f), size);
	fclose(f);
	memcpy(p + 8 * 512, buf + 8 * 512, 8 * 512);
	bs = open_img(test_path("dchild.vhd"), "vpc", BLOCK_OPEN_RDWR);
	assert_reads(bs, p, size);
	/* A write into that block keeps the parent's sectors around it. */
	memset(p + 9 * 512 + 100, 0xee, 700);
	assert_int_equal(block_pwrite(bs, 9 * 512 + 100, p + 9 * 512 + 100, 700), 0);
	assert_reads(bs, p, size);
	block_close(bs);
	bs = open_img(test_path("dchild.vhd"), "vpc", 0);
	assert_reads(bs, p, size);
	block_close(bs);
	/* A parent that is no VHD is refused before anything is created. */
	assert_int_equal(test_run("qemu-img create -q -f qcow2 %s 1M", test_path("dq.qcow2")), 0);
	struct block_opts o = {0};
	struct block_create_args a = {.size = 0, .opts = &o, .backing = "dq.qcow2"};
	assert_true(block_create("vpc", test_path("dbad.vhd"), &a) < 0);
	assert_int_equal(access(test_path("dbad.vhd"), F_OK), -1);
	free(p);
	free(buf);
}

struct writer {
	struct block_device *bs;
	int id;
	int err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[70000];

	for (int r = 0; r < 40 && !w->err; r++) {
		uint64_t off = (uint64_t)w->id * 4 * MiB + (uint64_t)r * 97 * 1024;
		memset(buf, w->id * 40 + r + 1, sizeof(buf));
		if (block_pwrite(w->bs, off, buf, sizeof(buf)) != 0)
			w->err = 1;
	}
	return NULL;
}

/* Four threads allocate grains/blocks at once; every write lands where it belongs. */
static void test_concurrent_writers(void **state)
{
	const struct cfg *cs[] = {&cfgs[0], &cfgs[4], &cfgs[6]};
	uint8_t buf[70000];

	(void)state;
	for (int c = 0; c < 3; c++) {
		test_run("rm -f %s/c*", test_tmpdir);
		create_img(cs[c]->fmt, test_path("c.img"), 16 * MiB + 8 * MiB, cs[c]->opts, NULL);
		struct block_device *bs = open_img(test_path("c.img"), cs[c]->fmt, BLOCK_OPEN_RDWR);
		pthread_t t[4];
		struct writer w[4];
		for (int i = 0; i < 4; i++) {
			w[i] = (struct writer){bs, i, 0};
			pthread_create(&t[i], NULL, writer_main, &w[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(w[i].err, 0);
		}
		block_close(bs);
		bs = open_img(test_path("c.img"), cs[c]->fmt, 0);
		for (int i = 0; i < 4; i++) {
			for (int r = 0; r < 40; r++) {
				uint64_t off = (uint64_t)i * 4 * MiB + (uint64_t)r * 97 * 1024;
				size_t n = sizeof(buf);
				assert_int_equal(block_pread(bs, off, buf, n), 0);
				for (size_t k = 0; k < n; k++)
					if (buf[k] != (uint8_t)(i * 40 + r + 1))
						fail_msg("%s thread %d write %d byte %zu",
							 cs[c]->opts, i, r, k);
			}
		}
		block_close(bs);
		if (!strcmp(cs[c]->fmt, "vmdk"))
			assert_int_equal(test_run("qemu-img check -q %s", test_path("c.img")), 0);
	}
}

/* Create options: qemu-img reads what the options asked for; bad values are refused clearly. */
static void test_create_options(void **state)
{
	struct block_opts o = {0};
	struct block_create_args a = {.size = MiB, .opts = &o};

	(void)state;
	test_run("rm -f %s/o*", test_tmpdir);
	create_img("vmdk", test_path("o1.vmdk"), 64 * MiB, "adapter_type=lsilogic,hwversion=7",
		   NULL);
	assert_int_equal(test_run("grep -a -q 'ddb.adapterType = \"lsilogic\"' %s && grep -a -q "
				  "'ddb.virtualHWVersion = \"7\"' %s && grep -a -q "
				  "'ddb.geometry.heads = \"255\"' %s",
				  test_path("o1.vmdk"), test_path("o1.vmdk"), test_path("o1.vmdk")),
			 0);
	assert_int_equal(test_run("qemu-img check -q %s", test_path("o1.vmdk")), 0);
	assert_int_equal(block_opts_parse(&o, "subformat=bogus"), 0);
	assert_int_equal(block_create("vmdk", test_path("o2.vmdk"), &a), -EINVAL);
	assert_non_null(strstr(error_msg(), "bogus"));
	assert_int_equal(access(test_path("o2.vmdk"), F_OK), -1);
	block_opts_free(&o);
	assert_int_equal(block_opts_parse(&o, "adapter_type=scsi"), 0);
	assert_int_equal(block_create("vmdk", test_path("o3.vmdk"), &a), -EINVAL);
	block_opts_free(&o);
	assert_int_equal(block_opts_parse(&o, "subformat=twoGbMaxExtentFlat,nonsense=1"), 0);
	assert_int_equal(block_create("vmdk", test_path("o4.vmdk"), &a), -EINVAL);
	assert_int_equal(test_run("ls %s/o4* 2>/dev/null | grep -q .", test_tmpdir), 1);
	block_opts_free(&o);
	assert_int_equal(block_opts_parse(&o, "subformat=sparse"), 0);
	assert_int_equal(block_create("vpc", test_path("o5.vhd"), &a), -EINVAL);
	block_opts_free(&o);
	/* Empty disks of every kind open (a zero-sized extent line is an empty disk) */
	const char *empty[] = {"subformat=monolithicFlat", "subformat=twoGbMaxExtentSparse",
			       "subformat=streamOptimized"};
	for (int i = 0; i < 3; i++) {
		test_run("rm -f %s/e*", test_tmpdir);
		create_img("vmdk", test_path("e.vmdk"), 0, empty[i], NULL);
		struct block_device *e = open_img(test_path("e.vmdk"), "vmdk", 0);
		assert_int_equal(e->size, 0);
		block_close(e); /* (qemu-img 7.2 cannot open its own empty VMDKs: no oracle) */
	}
	/* zeroed_grain: qemu-img sees the flag (version 2 header), and writes of zeroes read back
	 */
	create_img("vmdk", test_path("o6.vmdk"), 8 * MiB, "zeroed_grain=on", NULL);
	assert_int_equal(test_run("qemu-img check -q %s", test_path("o6.vmdk")), 0);
	assert_int_equal(
	    test_run("qemu-io -c 'write -P 9 0 2M' %s >/dev/null", test_path("o6.vmdk")), 0);
	struct block_device *bs = open_img(test_path("o6.vmdk"), "vmdk", BLOCK_OPEN_RDWR);
	uint64_t fsize_before, pnum, map;
	int st;
	assert_int_equal(host_file_size(&bs->file, &fsize_before), 0);
	assert_int_equal(block_write_zeroes(bs, 0, MiB + 4096, 0), 0);
	uint64_t fsize_after;
	assert_int_equal(host_file_size(&bs->file, &fsize_after), 0);
	assert_true(fsize_after == fsize_before); /* whole grains: GT entries, no data */
	assert_int_equal(block_status(bs, 0, MiB, &pnum, &st, &map), 0);
	assert_int_equal(st, BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED);
	assert_int_equal(pnum, MiB);
	block_close(bs);
	assert_int_equal(
	    test_run("qemu-io -c 'read -P 0 0 1052672' -c 'read -P 9 1052672 1044480' %s "
		     "| grep -q -v Pattern",
		     test_path("o6.vmdk")),
	    0);
	assert_int_equal(
	    test_run("qemu-io -c 'read -P 0 0 1052672' -c 'read -P 9 1052672 1044480' %s "
		     "| grep -q 'Pattern verification failed'",
		     test_path("o6.vmdk")),
	    1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_qemu_images),
	    cmocka_unit_test(test_workloads),
	    cmocka_unit_test(test_vmdk_backing),
	    cmocka_unit_test(test_vmdk_stream_footer),
	    cmocka_unit_test(test_uuids),
	    cmocka_unit_test(test_vhd_sizes),
	    cmocka_unit_test(test_concurrent_writers),
	    cmocka_unit_test(test_create_options),
	    cmocka_unit_test(test_vhd_differencing),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
