/* Hostile VMDK and VHD images: each crafted defect gives one clear error naming the file and the
 * problem, no crash (this runs under ASan/UBSan), no hang, and the file is left unchanged even
 * when opened read-write. A seeded fuzz pass flips header bytes and reads whatever still opens.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "tests/lib/testlib.h"

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-vmdkvhd-bad");
}

static void poke32le(const char *path, uint64_t off, uint32_t v)
{
	uint32_t le = htole32(v);
	test_file_poke(path, off, &le, 4);
}

static void poke64le(const char *path, uint64_t off, uint64_t v)
{
	uint64_t le = htole64(v);
	test_file_poke(path, off, &le, 8);
}

static void poke32be(const char *path, uint64_t off, uint32_t v)
{
	uint32_t be = htobe32(v);
	test_file_poke(path, off, &be, 4);
}

static void peek(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* Opening (read-write, then read-only) fails with a message naming the file and `what`; reading
 * the whole disk is tried if open unexpectedly succeeds, so a missed check still shows under ASan.
 */
static void expect_bad(const char *path, const char *fmt, const char *what)
{
	struct block_device *bs = NULL;
	uint64_t before = test_file_hash(path);
	const char *base = strrchr(path, '/') + 1;

	for (int pass = 0; pass < 2; pass++) {
		int ret = block_open(path, fmt, pass ? 0 : BLOCK_OPEN_RDWR, &bs);
		if (ret == 0) {
			block_close(bs);
			fail_msg("%s: opened although it has: %s", path, what);
		}
		const char *msg = error_msg();
		if (!strstr(msg, base) || !strstr(msg, what))
			fail_msg("%s: message '%s' does not name the file and '%s'", path, msg,
				 what);
		if (strchr(msg, '\n'))
			fail_msg("message spans lines: '%s'", msg);
	}
	assert_true(test_file_hash(path) == before);
}

/* Opening works but reading the disk fails cleanly, naming the file and the problem. */
static void expect_bad_read(const char *path, const char *fmt, const char *what)
{
	struct block_device *bs = NULL;
	uint64_t before = test_file_hash(path);
	int failed = 0;

	if (block_open(path, fmt, 0, &bs) != 0)
		fail_msg("%s: %s", path, error_msg());
	uint8_t *buf = malloc(1 << 20);
	for (uint64_t off = 0; off < bs->size; off += 1 << 20) {
		size_t n = bs->size - off < (1 << 20) ? bs->size - off : 1 << 20;
		if (block_pread(bs, off, buf, n) < 0) {
			failed = 1;
			if (!strstr(error_msg(), what))
				fail_msg("read error '%s' does not say '%s'", error_msg(), what);
		}
	}
	free(buf);
	block_close(bs);
	assert_true(failed);
	assert_true(test_file_hash(path) == before);
}

static void fresh(const char *name, const char *fmt, const char *opts, const char *size)
{
	test_run("rm -f %s/*", test_tmpdir);
	assert_int_equal(test_run("qemu-img create -q -f %s %s %s %s %s", fmt, opts ? "-o" : "",
				  opts ? opts : "", test_path(name), size),
			 0);
}

/* Edit a footer field in both copies (0 and the end of the file) and fix their checksums. */
static void vhd_poke_footer(const char *path, unsigned field, const void *val, size_t len)
{
	uint8_t f[512];
	uint32_t sum = 0;
	int fd = open(path, O_RDWR);
	off_t end = lseek(fd, 0, SEEK_END);

	assert_int_equal(pread(fd, f, 512, end - 512), 512);
	memcpy(f + field, val, len);
	memset(f + 64, 0, 4);
	for (int i = 0; i < 512; i++)
		sum += f[i];
	uint32_t be = htobe32(~sum);
	memcpy(f + 64, &be, 4);
	assert_int_equal(pwrite(fd, f, 512, end - 512), 512);
	if (be32toh(*(uint32_t *)(f + 60)) != 2)
		assert_int_equal(pwrite(fd, f, 512, 0), 512);
	close(fd);
}

static void vhd_fix_header(const char *path)
{
	uint8_t h[1024];
	uint32_t sum = 0;

	peek(path, 512, h, sizeof(h));
	memset(h + 36, 0, 4);
	for (int i = 0; i < 1024; i++)
		sum += h[i];
	uint32_t be = htobe32(~sum);
	memcpy(h + 36, &be, 4);
	test_file_poke(path, 512, h, sizeof(h));
}

static void test_vhd(void **state)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", test_path("d.vhd"));
	uint8_t b = 0x5a;

	(void)state;
	/* The defects that checksums catch. */
	fresh("d.vhd", "vpc", NULL, "64M");
	test_file_poke(p, 100, &b, 1); /* inside the footer copy at 0 */
	test_run("truncate -s -512 %s && printf 'not-a-footer' >> %s && truncate -s %%512 %s", p, p,
		 p);
	expect_bad(p, "vpc", "footer");
	fresh("d.vhd", "vpc", NULL, "64M");
	test_file_poke(p, 512 + 100, &b, 1);
	expect_bad(p, "vpc", "dynamic header checksum mismatch");
	/* Fields with valid checksums but absurd values. */
	fresh("d.vhd", "vpc", NULL, "64M");
	poke32be(p, 512 + 32, 3000); /* block size */
	vhd_fix_header(p);
	expect_bad(p, "vpc", "invalid block size");
	fresh("d.vhd", "vpc", NULL, "64M");
	poke32be(p, 512 + 28, 0xfffffff0); /* max table entries */
	vhd_fix_header(p);
	expect_bad(p, "vpc", "absurd");
	fresh("d.vhd", "vpc", NULL, "64M");
	poke32be(p, 512 + 28, 2); /* too few entries for the size */
	vhd_fix_header(p);
	expect_bad(p, "vpc", "larger than the BAT covers");
	fresh("d.vhd", "vpc", NULL, "64M");
	uint64_t far = htobe64(1ull << 40);
	test_file_poke(p, 512 + 16, &far, 8); /* BAT offset */
	vhd_fix_header(p);
	expect_bad(p, "vpc", "beyond end of file");
	fresh("d.vhd", "vpc", NULL, "64M");
	vhd_poke_footer(p, 16, &far, 8); /* dynamic header offset */
	expect_bad(p, "vpc", "dynamic header offset");
	fresh("d.vhd", "vpc", NULL, "64M");
	uint32_t type = htobe32(9);
	vhd_poke_footer(p, 60, &type, 4);
	expect_bad(p, "vpc", "unknown VHD disk type");
	fresh("d.vhd", "vpc", NULL, "64M");
	type = htobe32(4);
	vhd_poke_footer(p, 60, &type, 4);
	expect_bad(p, "vpc", "differencing");
	/* BAT entries: beyond the end, onto the metadata, two blocks overlapping. */
	fresh("d.vhd", "vpc", NULL, "64M");
	poke32be(p, 1536 + 4, 0x7fffffff);
	expect_bad(p, "vpc", "BAT entry 1: block at offset");
	fresh("d.vhd", "vpc", NULL, "64M");
	assert_int_equal(test_run("qemu-io -c 'write -P 1 0 4M' %s >/dev/null", p), 0);
	poke32be(p, 1536, 2);
	expect_bad(p, "vpc", "overlaps the VHD metadata");
	fresh("d.vhd", "vpc", NULL, "64M");
	assert_int_equal(test_run("qemu-io -c 'write -P 1 0 4M' %s >/dev/null", p), 0);
	uint32_t first;
	peek(p, 1536, &first, 4);
	test_file_poke(p, 1536 + 8, &first, 4);
	expect_bad(p, "vpc", "overlap");
	/* A fixed disk bigger than its file; a truncated file. */
	fresh("f.vhd", "vpc", "subformat=fixed", "8M");
	snprintf(p, sizeof(p), "%s", test_path("f.vhd"));
	uint64_t big = htobe64(1ull << 36);
	vhd_poke_footer(p, 48, &big, 8);
	vhd_poke_footer(p, 28, "win ", 4); /* size from current_size */
	expect_bad(p, "vpc", "fixed disk of");
	test_run("truncate -s 100 %s", p);
	expect_bad(p, "vpc", "too small");
}

static void test_vmdk_header(void **state)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", test_path("s.vmdk"));

	(void)state;
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke32le(p, 4, 9);
	expect_bad(p, "vmdk", "version 9 not supported");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke64le(p, 20, 0);
	expect_bad(p, "vmdk", "grain size");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke64le(p, 20, 3);
	expect_bad(p, "vmdk", "grain size");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke32le(p, 44, 0);
	expect_bad(p, "vmdk", "entries per grain table");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke64le(p, 12, 1ull << 60);
	expect_bad(p, "vmdk", "capacity");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke64le(p, 12, 1ull << 36); /* a GD much bigger than the file */
	expect_bad(p, "vmdk", "grain directory");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke64le(p, 56, 1ull << 40);
	expect_bad(p, "vmdk", "grain directory at sector");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	poke64le(p, 28, 1ull << 40);
	expect_bad(p, "vmdk", "embedded descriptor");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	uint64_t gd;
	peek(p, 56, &gd, 8);
	poke32le(p, le64toh(gd) * 512, 0x7ffffff0);
	expect_bad(p, "vmdk", "grain table at sector");
	fresh("s.vmdk", "vmdk", NULL, "64M");
	uint64_t rgd;
	peek(p, 48, &rgd, 8);
	poke32le(p, le64toh(rgd) * 512, 0);
	expect_bad(p, "vmdk", "disagree");
	/* A GT entry beyond the end: open works, the read fails. */
	fresh("s.vmdk", "vmdk", NULL, "64M");
	peek(p, 56, &gd, 8);
	uint32_t gt;
	peek(p, le64toh(gd) * 512, &gt, 4);
	poke32le(p, le32toh(gt) * 512 + 8, 0x7ffffff0);
	expect_bad_read(p, "vmdk", "beyond end of file");
	/* A grain that starts inside the file but runs past its end: readable, never written. */
	fresh("s.vmdk", "vmdk", NULL, "64M");
	peek(p, 56, &gd, 8);
	peek(p, le64toh(gd) * 512, &gt, 4);
	{
		int fd = open(p, O_RDONLY);
		off_t end = lseek(fd, 0, SEEK_END);
		close(fd);
		poke32le(p, le32toh(gt) * 512 + 4, (uint32_t)(end / 512 - 8));
		struct block_device *w;
		uint8_t data[512] = {1};
		assert_int_equal(block_open(p, "vmdk", BLOCK_OPEN_RDWR, &w), 0);
		assert_int_equal(block_pread(w, 65536, data, sizeof(data)), 0);
		assert_int_equal(block_pwrite(w, 65536, data, sizeof(data)), -EINVAL);
		assert_non_null(strstr(error_msg(), "runs past the end"));
		block_close(w);
		/* the refused write allocated nothing (only the CID in the descriptor changed) */
		fd = open(p, O_RDONLY);
		assert_true(lseek(fd, 0, SEEK_END) == end);
		close(fd);
	}
	fresh("s.vmdk", "vmdk", NULL, "64M");
	peek(p, 56, &gd, 8);
	peek(p, le64toh(gd) * 512, &gt, 4);
	poke32le(p, le32toh(gt) * 512 + 8, 0x7ffffff0);
	struct block_check_result res = {0};
	struct block_device *bs;
	assert_int_equal(block_open(p, "vmdk", BLOCK_OPEN_CHECK, &bs), 0);
	assert_int_equal(bs->drv->check(bs, &res, 0), 0);
	assert_int_equal(res.corruptions, 1);
	block_close(bs);
	/* streamOptimized: a compressed grain whose marker size is absurd, or whose data is junk.
	 */
	test_run("rm -f %s/*", test_tmpdir);
	assert_int_equal(test_run("head -c 65536 /dev/urandom > %s && qemu-img convert -O vmdk -o "
				  "subformat=streamOptimized %s %s",
				  test_path("r.raw"), test_path("r.raw"), p),
			 0);
	peek(p, 56, &gd, 8);
	peek(p, le64toh(gd) * 512, &gt, 4);
	uint32_t g0;
	peek(p, le32toh(gt) * 512, &g0, 4);
	poke32le(p, le32toh(g0) * 512 + 8, 0x7fffffff);
	expect_bad_read(p, "vmdk", "bad size");
	poke32le(p, le32toh(g0) * 512 + 8, 100);
	poke64le(p, le32toh(g0) * 512 + 12, 0x1122334455667788ull);
	expect_bad_read(p, "vmdk", "does not inflate");
	/* A footer-style stream image without its footer */
	poke64le(p, 56, ~0ull);
	expect_bad(p, "vmdk", "footer");
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#define DESC_HEAD "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"

static void test_vmdk_descriptor(void **state)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", test_path("t.vmdk"));

	(void)state;
	test_run("rm -f %s/*", test_tmpdir);
	assert_int_equal(test_run("truncate -s 1M %s", test_path("data.bin")), 0);
	/* An extent that is the descriptor itself; one listed twice. */
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\nRW 2048 FLAT \"t.vmdk\" 0\n");
	expect_bad(p, "vmdk", "the descriptor itself");
	write_text(p, DESC_HEAD "createType=\"twoGbMaxExtentFlat\"\nRW 2048 FLAT \"data.bin\" 0\n"
				"RW 2048 FLAT \"data.bin\" 0\n");
	expect_bad(p, "vmdk", "listed twice");
	/* A sparse extent that is another descriptor: not followed (no chains of descriptors). */
	write_text(test_path("other.vmdk"),
		   DESC_HEAD "createType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"t.vmdk\"\n");
	write_text(p, DESC_HEAD
		   "createType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"other.vmdk\"\n");
	expect_bad(p, "vmdk", "no KDMV magic");
	/* A FIFO as extent must not hang the open; a directory is no disk either. */
	assert_int_equal(test_run("mkfifo %s && mkdir %s", test_path("fifo"), test_path("adir")),
			 0);
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\nRW 2048 FLAT \"fifo\" 0\n");
	expect_bad(p, "vmdk", "not a regular file");
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\nRW 2048 FLAT \"adir\" 0\n");
	expect_bad(p, "vmdk", "not a regular file");
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\nRW 2048 FLAT \"missing.bin\" 0\n");
	expect_bad(p, "vmdk", "cannot open extent file");
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\nRW 99999999999999999 FLAT "
				"\"data.bin\" 0\n");
	expect_bad(p, "vmdk", "bad extent line");
	write_text(p, DESC_HEAD "createType=\"vmfsSparse\"\nRW 2048 VMFSSPARSE \"data.bin\"\n");
	expect_bad(p, "vmdk", "extent type VMFSSPARSE not supported");
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\n");
	expect_bad(p, "vmdk", "no extents");
	write_text(p, "# Disk DescriptorFile\nversion=1\nRW 2048 FLAT \"data.bin\" 0\n");
	expect_bad(p, "vmdk", "createType");
	write_text(p, "# Disk DescriptorFile\nversion=7\ncreateType=\"monolithicFlat\"\n");
	expect_bad(p, "vmdk", "version 7");
	write_text(p, DESC_HEAD "createType=\"monolithicFlat\"\nRW 2048 FLAT \"data.bin\" 0\n");
	test_file_poke(p, 5, "\001", 1);
	expect_bad(p, "vmdk", "binary data");
	/* More extents than allowed: refused without opening thousands of files. */
	FILE *f = fopen(p, "w");
	fputs(DESC_HEAD "createType=\"custom\"\n", f);
	for (int i = 0; i < 5000; i++)
		fputs("RW 1 ZERO\n", f);
	fclose(f);
	expect_bad(p, "vmdk", "extents");
	/* A sparse extent smaller than the descriptor claims. */
	assert_int_equal(test_run("qemu-img create -q -f vmdk %s 1M", test_path("small.vmdk")), 0);
	write_text(p, DESC_HEAD "createType=\"twoGbMaxExtentSparse\"\nRW 4096 SPARSE "
				"\"small.vmdk\"\n");
	expect_bad(p, "vmdk", "capacity is 2048");
}

/* Seeded fuzz: random bytes in the metadata of small images; whatever opens must read without
 * crashing, and nothing is ever written by a read-only open. */
static void fuzz(const char *fmt, const char *opts, unsigned meta_bytes, uint64_t seed)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", test_path("z.img"));
	uint64_t s = seed;

	test_run("rm -f %s/z*", test_tmpdir);
	assert_int_equal(test_run("qemu-img create -q -f %s %s %s %s 3M && qemu-io -f %s -c "
				  "'write -P 7 64k 1M' %s >/dev/null",
				  fmt, opts ? "-o" : "", opts ? opts : "", test_path("zbase"), fmt,
				  test_path("zbase")),
			 0);
	for (int it = 0; it < 150; it++) {
		assert_int_equal(test_run("cp %s %s", test_path("zbase"), p), 0);
		for (int k = 0; k < 4; k++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			uint8_t v = (uint8_t)(s >> 56);
			test_file_poke(p, (s >> 20) % meta_bytes, &v, 1);
		}
		uint64_t before = test_file_hash(p);
		struct block_device *bs;
		if (block_open(p, fmt, 0, &bs) == 0) {
			uint8_t *buf = malloc(1 << 20);
			for (uint64_t off = 0; off < bs->size && off < (64ull << 20);
			     off += 1 << 20) {
				size_t n = bs->size - off < (1 << 20) ? bs->size - off : 1 << 20;
				block_pread(bs, off, buf, n);
			}
			free(buf);
			block_close(bs);
		} else {
			assert_non_null(strstr(error_msg(), "z.img"));
		}
		assert_true(test_file_hash(p) == before);
	}
}

static void test_fuzz(void **state)
{
	(void)state;
	fuzz("vmdk", NULL, 12 * 1024, 1);
	fuzz("vmdk", "subformat=streamOptimized", 12 * 1024, 2);
	fuzz("vpc", NULL, 2048, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vhd),
	    cmocka_unit_test(test_vmdk_header),
	    cmocka_unit_test(test_vmdk_descriptor),
	    cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
