/* Tests of the VHDX and Parallels drivers through the block API: a seeded random workload from
 * several threads at once against an in-memory shadow (then reopened, then `qemu-img check` and
 * `qemu-img compare` against the shadow), and a hostile VHDX log that claims a huge entry at every
 * position (refused quickly, not replayed, nothing written), log entries zeroing far past the end
 * (replayed sparsely, or refused when beyond what the image can occupy); Parallels bundle
 * descriptors.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "lib/endian.h"
#include "storage/formats/parallels/parallels.h"
#include "storage/formats/vhdx/vhdx.h"
#include "tests/lib/testlib.h"

#define MiB (1024 * 1024)
#define DISK (48 * MiB)
#define THREADS 4
#define OPS 150

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-vhdxprl");
}

struct worker {
	struct block_device *bs;
	uint8_t *shadow;
	int id;
	int failures;
};

/* Thread i owns every THREADS-th 256 KiB stripe from stripe i: the shadow stays exact while the
 * threads allocate blocks (shared by several stripes) concurrently. */
#define STRIPE (256 * 1024)
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1);
	uint8_t *buf = malloc(STRIPE);

	for (int op = 0; op < OPS && buf; op++) {
		uint64_t stripe =
		    (test_xorshift(&seed) % (DISK / STRIPE / THREADS)) * THREADS + w->id;
		uint64_t off = stripe * STRIPE + (test_xorshift(&seed) % (STRIPE / 512)) * 512;
		uint64_t max = stripe * STRIPE + STRIPE - off;
		uint64_t len = 512 * (1 + test_xorshift(&seed) % 64);
		if (len > max)
			len = max;
		if (test_xorshift(&seed) % 3 == 0) {
			if (block_pread(w->bs, off, buf, len) < 0 ||
			    memcmp(buf, w->shadow + off, len))
				w->failures++;
			continue;
		}
		for (uint64_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(test_xorshift(&seed) >> 13);
		if (block_pwrite(w->bs, off, buf, len) < 0)
			w->failures++;
		memcpy(w->shadow + off, buf, len);
		if (op % 50 == 49 && block_flush(w->bs) < 0)
			w->failures++;
	}
	free(buf);
	return NULL;
}

static void workload(const char *fmt, const char *opts, const char *name)
{
	struct block_opts o = {0};
	struct block_create_args args = {.size = DISK, .opts = &o};
	struct block_device *bs;
	uint8_t *shadow = calloc(1, DISK), *back = malloc(DISK);
	const char *img = test_path(name);
	char cmd[1024];

	assert_non_null(shadow);
	assert_non_null(back);
	assert_int_equal(block_opts_parse(&o, opts), 0);
	assert_int_equal(block_create(fmt, img, &args), 0);
	block_opts_free(&o);
	assert_int_equal(block_open(img, fmt, BLOCK_OPEN_RDWR, &bs), 0);

	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.bs = bs, .shadow = shadow, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	block_close(bs);

	assert_int_equal(block_open(img, NULL, 0, &bs), 0);
	assert_string_equal(bs->drv->name, fmt);
	assert_int_equal(block_pread(bs, 0, back, DISK), 0);
	assert_memory_equal(back, shadow, DISK);
	block_close(bs);

	FILE *f = fopen(test_path("shadow.raw"), "w");
	assert_non_null(f);
	assert_int_equal(fwrite(shadow, 1, DISK, f), DISK);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "qemu-img check -q -f %s '%s'", fmt, img);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f raw -F %s '%s' '%s'", fmt,
		 test_path("shadow.raw"), img);
	assert_int_equal(system(cmd), 0);
	free(shadow);
	free(back);
}

static void test_vhdx_dynamic_1m(void **state)
{
	(void)state;
	workload("vhdx", "block_size=1M", "d1.vhdx");
}

static void test_vhdx_dynamic_8m(void **state)
{
	(void)state;
	workload("vhdx", "", "d8.vhdx");
}

static void test_vhdx_fixed(void **state)
{
	(void)state;
	workload("vhdx", "subformat=fixed,block_size=2M", "f.vhdx");
}

static void test_parallels_4k(void **state)
{
	(void)state;
	workload("parallels", "cluster_size=4K", "p4.prl");
}

static void test_parallels_1m(void **state)
{
	(void)state;
	workload("parallels", "", "p1.prl");
}

/* Every 4 KiB of the log claims to be an entry as long as the whole log under the header's log
 * GUID: the search must give up with an error instead of checksumming gigabytes. */
static void test_vhdx_hostile_log(void **state)
{
	struct block_opts o = {0};
	struct block_create_args args = {.size = 8 * MiB, .opts = &o};
	struct block_device *bs;
	const char *img = test_path("hostile.vhdx");
	uint8_t h[VHDX_HEADER_SIZE], e[64];

	(void)state;
	assert_int_equal(block_create("vhdx", img, &args), 0);
	struct host_file f;
	assert_int_equal(host_file_open(&f, img, HOST_FILE_RDWR), 0);
	assert_int_equal(host_file_pread(&f, VHDX_HEADER2, h, sizeof(h)), 0); /* sequence 2 */
	memset(h + VHDX_H_LOG_GUID, 0x5a, 16);
	put_le32(h + VHDX_H_CRC, 0);
	put_le32(h + VHDX_H_CRC, vhdx_crc32c(h, sizeof(h)));
	assert_int_equal(host_file_pwrite(&f, VHDX_HEADER2, h, sizeof(h)), 0);
	memset(e, 0, sizeof(e));
	memcpy(e, "loge", 4);
	put_le32(e + 8, MiB);
	put_le64(e + 16, 7);
	put_le32(e + 24, 1);
	memset(e + 32, 0x5a, 16);
	for (uint64_t pos = 0; pos < MiB; pos += 4096)
		assert_int_equal(host_file_pwrite(&f, MiB + pos, e, sizeof(e)), 0);
	host_file_close(&f);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "md5sum < '%s' > '%s'", img, test_path("before"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(block_open(img, "vhdx", BLOCK_OPEN_RDWR, &bs), -EINVAL);
	assert_non_null(strstr(error_msg(), "hostile.vhdx: VHDX log too damaged"));
	snprintf(cmd, sizeof(cmd), "md5sum < '%s' | cmp -s - '%s'", img, test_path("before"));
	assert_int_equal(system(cmd), 0);
}

/* Create a VHDX of `size` bytes holding one unreplayed log entry that zeroes `len` bytes at `off`
 * (its last file offset `last`); `good` decides whether its checksum is right. */
static void log_zero_entry_at(const char *img, bool good, uint64_t size, uint64_t off, uint64_t len,
			      uint64_t last)
{
	uint8_t h[VHDX_HEADER_SIZE], e[4096] = {0};
	struct block_opts o = {0};
	struct block_create_args args = {.size = size, .opts = &o};
	struct host_file f;

	assert_int_equal(block_create("vhdx", img, &args), 0);
	assert_int_equal(host_file_open(&f, img, HOST_FILE_RDWR), 0);
	assert_int_equal(host_file_pread(&f, VHDX_HEADER2, h, sizeof(h)), 0);
	memset(h + VHDX_H_LOG_GUID, 0x33, 16);
	put_le32(h + VHDX_H_CRC, 0);
	put_le32(h + VHDX_H_CRC, vhdx_crc32c(h, sizeof(h)));
	assert_int_equal(host_file_pwrite(&f, VHDX_HEADER2, h, sizeof(h)), 0);
	memcpy(e, "loge", 4);
	put_le32(e + 8, 4096);
	put_le64(e + 16, 9);
	put_le32(e + 24, 1);
	memset(e + 32, 0x33, 16);
	put_le64(e + 48, 4 * MiB);
	put_le64(e + 56, last);
	memcpy(e + 64, "zero", 4);
	put_le64(e + 72, len);
	put_le64(e + 80, off);
	put_le64(e + 88, 9);
	put_le32(e + 4, vhdx_crc32c(e, 4096) ^ (good ? 0 : 1));
	assert_int_equal(host_file_pwrite(&f, MiB, e, 4096), 0);
	host_file_close(&f);
}

/* An entry zeroing the metadata region (2 MiB..3 MiB in minivmm's layout). */
static void log_zero_entry(const char *img, bool good)
{
	log_zero_entry_at(img, good, 8 * MiB, 2 * MiB, MiB, 4 * MiB);
}

/* A log entry zeroing 1 GiB past the end of a 16 MiB image (the file's size is legitimate: the
 * BAT region has room for that many blocks) replays on a read-write open, as `run` opens, without
 * allocating the zeroes: the file grows sparsely. */
static void test_vhdx_zero_log_sparse(void **state)
{
	const char *img = test_path("zsparse.vhdx");
	struct block_device *bs;
	uint8_t buf[4096];
	struct stat st;

	(void)state;
	log_zero_entry_at(img, true, 16 * MiB, 16 * MiB, 1024 * MiB, 1040 * MiB);
	assert_int_equal(block_open(img, "vhdx", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_pread(bs, 0, buf, sizeof(buf)), 0);
	block_close(bs);
	assert_int_equal(stat(img, &st), 0);
	assert_true((uint64_t)st.st_size >= 1040ull * MiB);
	assert_true((uint64_t)st.st_blocks * 512 < 32ull * MiB); /* not 1 GiB of allocated zeroes */
}

/* An entry reaching far beyond what the BAT region can map is refused whole: one error naming the
 * image, nothing written. */
static void test_vhdx_zero_log_absurd(void **state)
{
	const char *img = test_path("zabsurd.vhdx");
	struct block_device *bs;
	char cmd[600];

	(void)state;
	log_zero_entry_at(img, true, 16 * MiB, 1ull << 47, MiB, (1ull << 47) + MiB);
	snprintf(cmd, sizeof(cmd), "md5sum < '%s' > '%s'", img, test_path("zbefore"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(block_open(img, "vhdx", BLOCK_OPEN_RDWR, &bs), -EINVAL);
	assert_non_null(strstr(error_msg(), "zabsurd.vhdx: VHDX log entry 9 reaches offset"));
	assert_non_null(strstr(error_msg(), "refusing to replay it"));
	snprintf(cmd, sizeof(cmd), "md5sum < '%s' | cmp -s - '%s'", img, test_path("zbefore"));
	assert_int_equal(system(cmd), 0);
}

/* The same entry replays with a good checksum (the metadata is gone) and not with a bad one. */
static void test_vhdx_entry_checksum(void **state)
{
	struct block_device *bs;

	(void)state;
	log_zero_entry(test_path("goodentry.vhdx"), true);
	assert_int_equal(block_open(test_path("goodentry.vhdx"), "vhdx", BLOCK_OPEN_RDWR, &bs),
			 -EINVAL);
	assert_non_null(strstr(error_msg(), "invalid VHDX metadata table"));
}

/* A log entry whose checksum is wrong is not replayed: the image opens as it was. */
static void test_vhdx_bad_entry_ignored(void **state)
{
	struct block_device *bs;
	const char *img = test_path("badentry.vhdx");
	uint8_t h[VHDX_HEADER_SIZE], buf[512];
	struct host_file f;

	(void)state;
	log_zero_entry(img, false);
	assert_int_equal(block_open(img, "vhdx", BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_pread(bs, 0, buf, sizeof(buf)), 0);
	block_close(bs);
	/* the read-write open cleared the log GUID (in the header it wrote, sequence 4) */
	assert_int_equal(host_file_open(&f, img, 0), 0);
	assert_int_equal(host_file_pread(&f, VHDX_HEADER2, h, sizeof(h)), 0);
	host_file_close(&f);
	assert_int_equal(get_le64(h + VHDX_H_SEQ), 4);
	assert_true(vhdx_guid_is_zero(h + VHDX_H_LOG_GUID));
	assert_int_equal(block_open(img, "vhdx", 0, &bs), 0);
	block_close(bs);
}

/* An entry as minivmm writes it (vhdx_log_entry_build), left unreplayed as by a crash, is
 * replayed by qemu-img exactly as by minivmm: block 0 appears, pointing at "MINILOG" data. */
static void test_vhdx_entry_qemu_replays(void **state)
{
	struct block_opts o = {0};
	struct block_create_args args = {.size = 8 * MiB, .opts = &o};
	const char *img = test_path("mlog.vhdx");
	uint8_t h[VHDX_HEADER_SIZE], bat[4096], e[VHDX_LOG_ENTRY_SIZE], guid[16], data[512];
	struct host_file f;
	uint64_t fsize, block;
	char cmd[1600];

	(void)state;
	assert_int_equal(block_opts_parse(&o, "block_size=1M"), 0);
	assert_int_equal(block_create("vhdx", img, &args), 0);
	block_opts_free(&o);
	assert_int_equal(host_file_open(&f, img, HOST_FILE_RDWR), 0);
	assert_int_equal(host_file_size(&f, &fsize), 0);
	block = (fsize + MiB - 1) / MiB * MiB;
	memset(data, 0, sizeof(data));
	memcpy(data, "MINILOG", 7);
	assert_int_equal(host_file_truncate(&f, block + MiB), 0);
	assert_int_equal(host_file_pwrite(&f, block, data, sizeof(data)), 0);
	/* minivmm's layout: log at 1M (1M long), metadata at 2M, BAT at 3M */
	assert_int_equal(host_file_pread(&f, 3 * MiB, bat, sizeof(bat)), 0);
	put_le64(bat, block | VHDX_BAT_FULLY_PRESENT);
	assert_int_equal(vhdx_guid_random(guid), 0);
	vhdx_log_entry_build(e, guid, 5, block + MiB, 3 * MiB, bat);
	assert_int_equal(host_file_pwrite(&f, MiB, e, sizeof(e)), 0);
	assert_int_equal(host_file_pread(&f, VHDX_HEADER2, h, sizeof(h)), 0);
	memcpy(h + VHDX_H_LOG_GUID, guid, 16);
	put_le64(h + VHDX_H_SEQ, 3);
	put_le32(h + VHDX_H_CRC, 0);
	put_le32(h + VHDX_H_CRC, vhdx_crc32c(h, sizeof(h)));
	assert_int_equal(host_file_pwrite(&f, VHDX_HEADER2, h, sizeof(h)), 0);
	host_file_close(&f);

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && cp mlog.vhdx q.vhdx && qemu-img check -q -r all q.vhdx >/dev/null && "
		 "qemu-img check -q q.vhdx && qemu-img convert -O raw q.vhdx q.raw && "
		 "head -c 7 q.raw | grep -qx MINILOG",
		 test_tmpdir);
	assert_int_equal(system(cmd), 0);
	struct block_device *bs;
	assert_int_equal(block_open(img, "vhdx", BLOCK_OPEN_RDWR, &bs), 0);
	block_close(bs);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && qemu-img check -q mlog.vhdx && "
		 "qemu-img compare -q mlog.vhdx q.vhdx",
		 test_tmpdir);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#define DESC_HEAD                                                                                  \
	"<?xml version='1.0' encoding='UTF-8'?>\n<Parallels_disk_image Version=\"1.0\">\n"         \
	"<StorageData>\n<Storage>\n<Start>0</Start>\n<End>16384</End>\n"
#define IMAGE(guid, type, file)                                                                    \
	"<Image>\n  <GUID>" guid "</GUID>\n  <Type>" type "</Type>\n  <File>" file                 \
	"</File>\n</Image>\n"
#define G1 "{5fbaabe3-6958-40ff-92a7-860e329aab41}"
#define G2 "{a1b2c3d4-0000-4000-8000-000000000002}"

static int bundle(const char *desc, char **path, const char **fmt)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", test_path("b.hdd"),
		 test_path("b.hdd"));
	assert_int_equal(system(cmd), 0);
	if (desc) {
		char p[600];
		snprintf(p, sizeof(p), "%s/DiskDescriptor.xml", test_path("b.hdd"));
		write_file(p, desc);
	}
	*path = NULL;
	return prl_bundle_image(test_path("b.hdd"), path, fmt);
}

static void test_parallels_bundle(void **state)
{
	char *path, hds[600];
	const char *fmt;
	struct block_device *bs;
	struct block_opts o = {0};
	struct block_create_args args = {.size = 8 * MiB, .opts = &o};

	(void)state;
	/* one image: it is the one */
	assert_int_equal(
	    bundle(DESC_HEAD IMAGE(G1, "Compressed",
				   "disk.hds") "</Storage>\n"
					       "</StorageData>\n</Parallels_disk_image>\n",
		   &path, &fmt),
	    0);
	assert_string_equal(fmt, "parallels");
	snprintf(hds, sizeof(hds), "%s/disk.hds", test_path("b.hdd"));
	assert_string_equal(path, hds);
	assert_int_equal(block_create("parallels", path, &args), 0);
	assert_int_equal(block_open(path, fmt, BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_pwrite(bs, 4096, "bundle", 6), 0);
	block_close(bs);
	free(path);
	/* two layers: TopGUID chooses, whatever the order */
	assert_int_equal(bundle(DESC_HEAD IMAGE(G1, "Compressed", "base.hds")
				    IMAGE(G2, "Plain", "top.hds") "</Storage>\n</StorageData>\n"
								  "<Snapshots>\n<TopGUID>" G2
								  "</TopGUID>\n</Snapshots>\n"
								  "</Parallels_disk_image>\n",
				&path, &fmt),
			 0);
	assert_string_equal(fmt, "raw");
	assert_non_null(strstr(path, "/top.hds"));
	free(path);

	/* hostile or unsupported descriptors: one message naming the bundle */
	static const struct {
		const char *desc, *msg;
	} bad[] = {
	    {NULL, "no DiskDescriptor.xml"},
	    {DESC_HEAD IMAGE(G1, "Compressed", "../escape.hds") "</Storage></StorageData>",
	     "outside the bundle"},
	    {DESC_HEAD IMAGE(G1, "Compressed", "a/b.hds") "</Storage></StorageData>",
	     "outside the bundle"},
	    {DESC_HEAD IMAGE(G1, "Sparse", "x.hds") "</Storage></StorageData>",
	     "unknown image type"},
	    {DESC_HEAD IMAGE(G1, "Compressed", "x.hds") "</Storage><Storage>" IMAGE(
		 G2, "Compressed", "y.hds") "</Storage></StorageData>",
	     "split disks"},
	    {DESC_HEAD "<Image><GUID>" G1 "</GUID></Image></Storage></StorageData>",
	     "incomplete <Image>"},
	    {DESC_HEAD IMAGE(G1, "Compressed", "x.hds") "</Storage></StorageData>"
							"<Snapshots><TopGUID>" G2
							"</TopGUID></Snapshots>",
	     "no image with the top GUID"},
	    {"<Parallels_disk_image></Parallels_disk_image>", "no <Storage>"},
	    {DESC_HEAD IMAGE(G1, "Compressed", "x.hds"), "unterminated <Storage>"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(bundle(bad[i].desc, &path, &fmt) < 0);
		assert_null(path);
		assert_non_null(strstr(error_msg(), "b.hdd: "));
		if (!strstr(error_msg(), bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, error_msg(), bad[i].msg);
	}
	/* a descriptor over 1 MiB is refused before parsing */
	char *big = malloc(2 * MiB + 1);
	assert_non_null(big);
	memset(big, ' ', 2 * MiB);
	big[2 * MiB] = 0;
	assert_int_equal(bundle(big, &path, &fmt), -EFBIG);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vhdx_dynamic_1m),
	    cmocka_unit_test(test_vhdx_dynamic_8m),
	    cmocka_unit_test(test_vhdx_fixed),
	    cmocka_unit_test(test_parallels_4k),
	    cmocka_unit_test(test_parallels_1m),
	    cmocka_unit_test(test_vhdx_hostile_log),
	    cmocka_unit_test(test_vhdx_entry_checksum),
	    cmocka_unit_test(test_vhdx_bad_entry_ignored),
	    cmocka_unit_test(test_vhdx_zero_log_sparse),
	    cmocka_unit_test(test_vhdx_zero_log_absurd),
	    cmocka_unit_test(test_parallels_bundle),
	    cmocka_unit_test(test_vhdx_entry_qemu_replays),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
