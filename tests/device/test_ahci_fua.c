/* FUA through the AHCI controller: IDENTIFY offers WRITE DMA/MULTIPLE FUA EXT, and a FUA write
 * (non-queued 3Dh/CEh, or WRITE FPDMA QUEUED with the FUA bit) completes only after a FLUSH was
 * submitted once its data was written; plain writes do not flush; cache=unsafe never flushes; a
 * queued write while the write cache is off flushes too; a port stop while the flush is in flight
 * drops the command cleanly. The flushes are counted by the block layer (block_aio_flush_count),
 * and completions are run step by step by the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/ahci_internal.h"
#include "tests/device/ahci_fixture.h"

#define FUA_BIT 0x80 /* FIS device byte */

static int setup_disk(void **state)
{
	return fix_state_new(state, 1, NULL, false);
}

static int setup_unsafe(void **state)
{
	return fix_state_new(state, 1, ",cache=unsafe", false);
}

static int teardown(void **state)
{
	return fix_state_free(state);
}

static unsigned flushes(struct fix *f)
{
	return block_aio_flush_count(f->disk[0]->aio);
}

/* Run completions one poll at a time until the block layer has seen a new flush (or nothing is
 * left); the flush's own callback has not run when this returns. */
static void run_until_flush(struct fix *f, unsigned before)
{
	struct block_aio_ctx *aio = f->disk[0]->aio;
	for (int i = 0; i < 100000 && flushes(f) == before && block_aio_pending(aio); i++)
		block_aio_poll(aio, 1000);
}

static void fill(struct fix *f, uint64_t gpa, unsigned len, uint8_t seed)
{
	uint8_t *p = fix_ram(f, gpa, len);
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void assert_file_has(struct fix *f, uint64_t lba, uint64_t gpa, unsigned len)
{
	uint8_t buf[4096];
	assert_true(len <= sizeof(buf));
	FILE *fp = fopen(fix_path(f, "disk0.img"), "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)(lba * 512), SEEK_SET), 0);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
	assert_memory_equal(buf, fix_ram(f, gpa, len), len);
}

static void non_queued(struct fix *f, uint8_t cmd, uint64_t lba, unsigned count, uint64_t gpa)
{
	uint8_t fis[20];
	struct fix_prd prd = {gpa, count * 512};
	fix_fis(fis, cmd, lba, count, 0);
	fix_cmd(f, 0, 0, fis, NULL, true, &prd, 1);
}

static void test_identify_offers_fua(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_port_start(f, 0);
	fix_fis(fis, 0xEC, 0, 0, 0);
	struct fix_prd prd = {FIX_DATA, 512};
	fix_cmd(f, 0, 0, fis, NULL, false, &prd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	uint16_t *id = fix_ram(f, FIX_DATA, 512);
	assert_true(id[84] & (1 << 6)); /* WRITE DMA/MULTIPLE FUA EXT supported */
	assert_true(id[87] & (1 << 6)); /* ... and enabled */
	assert_true(id[84] & (1 << 14));
	assert_false(id[84] & (1 << 15));
}

static void test_write_dma_fua_flushes_first(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	fill(f, FIX_DATA, 4096, 0x11);
	non_queued(f, 0x3D, 300, 8, FIX_DATA); /* WRITE DMA FUA EXT */
	unsigned before = flushes(f);
	fix_pw(f, 0, PORT_CI, 1);
	assert_int_equal(flushes(f), before); /* the data first */
	run_until_flush(f, before);
	/* The data request completed and the flush went out: the command is still running. */
	assert_int_equal(flushes(f), before + 1);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 1);
	assert_true(fix_pr(f, 0, PORT_TFD) & 0x80);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	assert_int_equal(fix_prdbc(f, 0, 0), 4096);
	assert_file_has(f, 300, FIX_DATA, 4096);

	/* A plain WRITE DMA EXT does not flush. */
	fill(f, FIX_DATA, 4096, 0x22);
	non_queued(f, 0x35, 400, 8, FIX_DATA);
	before = flushes(f);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_int_equal(flushes(f), before);
	assert_file_has(f, 400, FIX_DATA, 4096);
}

static void test_write_multiple_fua(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_port_start(f, 0);
	fix_fis(fis, 0xC6, 0, 4, 0); /* SET MULTIPLE MODE: 4 sectors per block */
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	fill(f, FIX_DATA, 4096, 0x33);
	non_queued(f, 0xCE, 500, 8, FIX_DATA); /* WRITE MULTIPLE FUA EXT */
	unsigned before = flushes(f);
	fix_pw(f, 0, PORT_CI, 1);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	assert_int_equal(flushes(f), before + 1);
	assert_file_has(f, 500, FIX_DATA, 4096);
	/* Beyond the disk: IDNF, nothing written, no flush. */
	non_queued(f, 0x3D, FIX_DISK_SIZE / 512 - 4, 8, FIX_DATA);
	before = flushes(f);
	fix_issue_wait(f, 0, 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(flushes(f), before);
}

static void ncq_write(struct fix *f, unsigned tag, uint64_t lba, uint64_t gpa, bool fua)
{
	uint8_t fis[20];
	struct fix_prd prd = {gpa, 4096};
	fix_ncq_fis(fis, true, tag, lba, 8);
	if (fua)
		fis[7] |= FUA_BIT;
	fix_cmd(f, 0, tag, fis, NULL, true, &prd, 1);
	fix_pw(f, 0, PORT_SACT, 1u << tag);
	fix_pw(f, 0, PORT_CI, 1u << tag);
}

static void test_ncq_fua(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	fill(f, FIX_DATA, 4096, 0x44);
	fill(f, FIX_DATA + 4096, 4096, 0x55);
	unsigned before = flushes(f);
	ncq_write(f, 3, 600, FIX_DATA, true);
	ncq_write(f, 4, 700, FIX_DATA + 4096, false);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 2);
	run_until_flush(f, before);
	/* Tag 3's data is written and its flush is out: its SACT bit stays until the flush ends. */
	assert_int_equal(flushes(f), before + 1);
	assert_true(fix_pr(f, 0, PORT_SACT) & (1u << 3));
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(flushes(f), before + 1); /* tag 4 (no FUA) did not flush */
	assert_int_equal(fix_prdbc(f, 0, 3), 4096);
	assert_file_has(f, 600, FIX_DATA, 4096);
	assert_file_has(f, 700, FIX_DATA + 4096, 4096);
}

static void test_ncq_write_cache_off_flushes(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_port_start(f, 0);
	fix_fis(fis, 0xEF, 0, 0, 0x82); /* SET FEATURES: disable write cache */
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	fill(f, FIX_DATA, 4096, 0x66);
	unsigned before = flushes(f);
	ncq_write(f, 7, 800, FIX_DATA, false);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_int_equal(flushes(f), before + 1);
	assert_file_has(f, 800, FIX_DATA, 4096);
}

/* A port stop while a queued FUA write waits for its flush drops the command cleanly. */
static void test_stop_while_flushing(void **state)
{
	struct fix *f = *state;
	uint8_t *sdb = fix_ram(f, FIX_FB + RFIS_SDBFIS, 8);
	fix_port_start(f, 0);
	fill(f, FIX_DATA, 4096, 0x5A);
	unsigned before = flushes(f);
	ncq_write(f, 2, 1200, FIX_DATA, true);
	run_until_flush(f, before);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 1);
	memset(sdb, 0xCC, 8);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	f->completer_gate = fix_reset_waiting;
	fix_completer_start(f);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	fix_completer_stop(f);
	for (int i = 0; i < 8; i++)
		assert_int_equal(sdb[i], 0xCC);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_SDBS);
	assert_int_equal(flushes(f), before + 1);
	/* The port runs the next FUA write normally. */
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	ncq_write(f, 2, 1300, FIX_DATA, true);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_int_equal(flushes(f), before + 2);
	assert_file_has(f, 1300, FIX_DATA, 4096);
}

static void test_unsafe_ignores_fua(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	fill(f, FIX_DATA, 4096, 0x77);
	unsigned before = flushes(f);
	non_queued(f, 0x3D, 900, 8, FIX_DATA);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	ncq_write(f, 9, 1000, FIX_DATA, true);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_int_equal(flushes(f), before);
	assert_file_has(f, 900, FIX_DATA, 4096);
	assert_file_has(f, 1000, FIX_DATA, 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_identify_offers_fua, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_write_dma_fua_flushes_first, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_write_multiple_fua, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_ncq_fua, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_ncq_write_cache_off_flushes, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_while_flushing, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_unsafe_ignores_fua, setup_unsafe, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
