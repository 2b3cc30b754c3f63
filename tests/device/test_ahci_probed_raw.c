/* AHCI against a guest turning its probed raw disk into another format (issue 10 point 1), through
 * the registers: two writes in flight at once, an NCQ write and a non-queued WRITE DMA EXT, each
 * carrying part of a header (a qcow2 header without its magic and a 4-byte PRD with only the
 * magic; a VMDK descriptor split at sector 7): afterwards the image still probes as raw, for the
 * block layer and for qemu-img. And short PRD tables: a WRITE DMA EXT or READ DMA EXT whose table
 * maps fewer bytes than the sector count fails with ABRT before any data moves (nothing written
 * to the disk, nothing to guest memory); a longer table is fine.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "lib/endian.h"
#include "tests/device/ahci_fixture.h"
#include "tests/lib/testlib.h"

#define ATA_WRITE_DMA_EXT 0x35
#define ATA_READ_DMA_EXT 0x25
#define BUF_A (FIX_DATA)
#define BUF_B (FIX_DATA + 0x10000)

static int setup(void **state)
{
	return fix_state_new(state, 2, NULL, true);
}

static int teardown(void **state)
{
	return fix_state_free(state);
}

static const char *disk_path(struct fix *f)
{
	return fix_path(f, "disk0.img");
}

/* The format the disk's file probes as now, for minivmm and for qemu-img. */
static void assert_still_raw(struct fix *f)
{
	const struct block_driver *drv = NULL;
	assert_int_equal(block_probe(disk_path(f), &drv), 0);
	assert_string_equal(drv->name, "raw");
	assert_int_equal(
	    test_run("qemu-img info --output=json '%s' | grep -q '\"format\": \"raw\"'",
		     disk_path(f)),
	    0);
}

/* Slot 0: an NCQ write of `na` bytes at LBA la from BUF_A; slot 1: WRITE DMA EXT of `count`
 * sectors at LBA lb whose PRD maps `nb` bytes of BUF_B. Both issued with one CI write, so both
 * are in flight before any completion runs; then everything completes. */
static void two_writes(struct fix *f, uint64_t la, uint32_t na, uint64_t lb, uint16_t count,
		       uint32_t nb)
{
	uint8_t fis[20];
	struct fix_prd pa = {BUF_A, na}, pb = {BUF_B, nb};
	fix_ncq_fis(fis, true, 0, la, (uint16_t)(na / 512));
	fix_cmd(f, 0, 0, fis, NULL, true, &pa, 1);
	fix_fis(fis, ATA_WRITE_DMA_EXT, lb, count, 0);
	fix_cmd(f, 0, 1, fis, NULL, true, &pb, 1);
	fix_pw(f, 0, PORT_SACT, 1);
	fix_pw(f, 0, PORT_CI, 3);
	fix_complete(f, 0);
}

/* The issue's race: the NCQ write carries a qcow2 header (backing file /etc/passwd) without its
 * magic, the non-queued one only the magic, through a 4-byte PRD. */
static void test_qcow2_header_in_two_writes(void **state)
{
	struct fix *f = *state;
	uint8_t a[1024] = {0}, b[4];
	put_be32(a + 4, 3);		 /* version */
	put_be64(a + 8, 512);		 /* backing file name offset */
	put_be32(a + 16, 11);		 /* and length */
	put_be32(a + 20, 16);		 /* cluster bits */
	put_be64(a + 24, FIX_DISK_SIZE); /* size */
	put_be32(a + 100, 104);		 /* header length */
	memcpy(a + 512, "/etc/passwd", 11);
	put_be32(b, 0x514649fb); /* "QFI\xfb" */
	guest_memory_write(&f->mem, BUF_A, a, sizeof(a));
	guest_memory_write(&f->mem, BUF_B, b, sizeof(b));
	/* The magic alone, through its 4-byte PRD: nothing reaches the disk (the old walker wrote
	 * those 4 bytes before failing the command). */
	uint8_t fis[20], before[8], head[8];
	struct fix_prd pb = {BUF_B, 4};
	assert_int_equal(block_pread(f->disk[0]->bs, 0, before, sizeof(before)), 0);
	fix_fis(fis, ATA_WRITE_DMA_EXT, 0, 1, 0);
	fix_cmd(f, 0, 1, fis, NULL, true, &pb, 1);
	fix_issue_wait(f, 0, 1);
	assert_int_equal((fix_pr(f, 0, PORT_TFD) >> 8) & 0xFF, ATA_ERR_ABRT);
	assert_int_equal(block_pread(f->disk[0]->bs, 0, head, sizeof(head)), 0);
	assert_memory_equal(head, before, sizeof(head));
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	/* Then both at once. */
	two_writes(f, 0, 1024, 0, 1, 4);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES); /* the magic-only write failed */
	assert_int_equal(block_pread(f->disk[0]->bs, 0, head, sizeof(head)), 0);
	assert_int_not_equal(get_be32(head), 0x514649fb);
	assert_still_raw(f);
}

/* Both writes well-formed, each harmless alone, a VMDK descriptor together (sectors 0-6 with
 * version=, sector 7 with createType= and an extent): they are in flight at once, and the
 * guard's lock lets exactly one through. */
static void test_vmdk_descriptor_in_two_writes(void **state)
{
	struct fix *f = *state;
	uint8_t a[3584], b[512];
	memset(a, '\n', sizeof(a));
	memset(b, '\n', sizeof(b));
	memcpy(a, "# a comment\n", 12);
	memcpy(a + 512, "version=1\n", 10);
	memcpy(b, "createType=\"monolithicFlat\"\nRW 2048 FLAT \"/dev/sda\" 0\n", 54);
	guest_memory_write(&f->mem, BUF_A, a, sizeof(a));
	guest_memory_write(&f->mem, BUF_B, b, sizeof(b));
	uint8_t fis[20];
	struct fix_prd pa = {BUF_A, 3584}, pb = {BUF_B, 512};
	fix_ncq_fis(fis, true, 0, 0, 7);
	fix_cmd(f, 0, 0, fis, NULL, true, &pa, 1);
	fix_fis(fis, ATA_WRITE_DMA_EXT, 7, 1, 0);
	fix_cmd(f, 0, 1, fis, NULL, true, &pb, 1);
	fix_pw(f, 0, PORT_SACT, 1);
	fix_pw(f, 0, PORT_CI, 3);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 2); /* both in flight */
	fix_complete(f, 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES); /* one of them was refused */
	uint8_t head[4096];
	assert_int_equal(block_pread(f->disk[0]->bs, 0, head, sizeof(head)), 0);
	bool got_a = !memcmp(head, a, 3584), got_b = !memcmp(head + 3584, b, 512);
	assert_true(got_a != got_b);
	assert_still_raw(f);
}

/* WRITE DMA EXT of 8 sectors with a PRD table of 2 KiB (and of 4 bytes): ABRT, no request,
 * the sectors unchanged. */
static void test_short_prd_write(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	const uint32_t sizes[] = {2048, 4, 4095};
	memset(fix_ram(f, BUF_A, 4096), 0xA5, 4096);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct fix_prd prd = {BUF_A, sizes[i]};
		fix_fis(fis, ATA_WRITE_DMA_EXT, 100, 8, 0);
		fix_cmd(f, 0, 2, fis, NULL, true, &prd, 1);
		fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
		fix_pw(f, 0, PORT_CI, 1u << 2);
		assert_int_equal(block_aio_pending(f->disk[0]->aio), 0); /* nothing submitted */
		fix_complete(f, 0);
		assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
		assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
		assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0x01);
		assert_int_equal((fix_pr(f, 0, PORT_TFD) >> 8) & 0xFF, ATA_ERR_ABRT);
		assert_int_equal(fix_prdbc(f, 0, 2), 0);
		uint8_t back[4096];
		assert_int_equal(block_pread(f->disk[0]->bs, 100 * 512, back, sizeof(back)), 0);
		for (int k = 0; k < 4096; k++)
			assert_int_equal(back[k], fix_pattern(100 * 512 + k));
		/* the port works again once the driver restarts it */
		fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
		fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
		fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	}
}

/* READ DMA EXT with a short table fails the same way and leaves guest memory alone; a table
 * longer than the transfer is fine. */
static void test_short_prd_read(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20], *buf = fix_ram(f, BUF_A, 8192);
	struct fix_prd shortp = {BUF_A, 2048}, longp = {BUF_A, 8192};
	memset(buf, 0xEE, 8192);
	fix_fis(fis, ATA_READ_DMA_EXT, 100, 8, 0);
	fix_cmd(f, 0, 3, fis, NULL, false, &shortp, 1);
	fix_issue_wait(f, 0, 3);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal((fix_pr(f, 0, PORT_TFD) >> 8) & 0xFF, ATA_ERR_ABRT);
	for (int k = 0; k < 8192; k++)
		assert_int_equal(buf[k], 0xEE);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	fix_fis(fis, ATA_READ_DMA_EXT, 100, 8, 0);
	fix_cmd(f, 0, 3, fis, NULL, false, &longp, 1);
	assert_int_equal(fix_issue_wait(f, 0, 3), 0);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	for (int k = 0; k < 4096; k++)
		assert_int_equal(buf[k], fix_pattern(100 * 512 + k));
	assert_int_equal(buf[4096], 0xEE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_qcow2_header_in_two_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vmdk_descriptor_in_two_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_prd_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_prd_read, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
