/* Queued TRIM through the AHCI controller, as Linux finds and uses it: IDENTIFY word 77 bit 6,
 * READ LOG EXT of the log directory and of the NCQ Send and Receive log (13h), then SEND FPDMA
 * QUEUED (64h) with DATA SET MANAGEMENT/TRIM. Hostile payloads (ranges beyond the disk, too many
 * blocks, a PRDT shorter than the payload or outside RAM, other subcommands) fail the command with
 * the ATA error status and discard nothing; a port stop with a queued TRIM in flight drops it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/ahci_internal.h"
#include "tests/device/ahci_fixture.h"

#define RANGES (FIX_DATA + 0x200000)
#define READBUF (FIX_DATA + 0x300000)

static int setup_disk(void **state)
{
	return fix_state_new(state, 1, NULL, true);
}

static int teardown(void **state)
{
	return fix_state_free(state);
}

/* Non-queued PIO-in command into FIX_DATA; returns PxTFD. */
static uint32_t read_log(struct fix *f, uint8_t log, uint16_t page, uint16_t count)
{
	uint8_t fis[20];
	struct fix_prd prd = {FIX_DATA, 512};
	memset(fix_ram(f, FIX_DATA, 512), 0xEE, 512);
	fix_fis(fis, 0x2F, log | (uint64_t)(page & 0xFF) << 8 | (uint64_t)(page >> 8) << 32, count,
		0);
	fix_cmd(f, 0, 0, fis, NULL, false, &prd, 1);
	fix_issue_wait(f, 0, 0);
	return fix_pr(f, 0, PORT_TFD);
}

/* Restart port 0 after a task-file error, as Linux's error handler does. */
static void restart(struct fix *f)
{
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
}

static void put_range(struct fix *f, uint64_t list, unsigned i, uint64_t lba, uint64_t n)
{
	uint8_t *e = fix_ram(f, list + 8 * i, 8);
	uint64_t v = lba | n << 48;
	for (int b = 0; b < 8; b++)
		e[b] = (uint8_t)(v >> (8 * b));
}

/* SEND FPDMA QUEUED, DSM with TRIM unless told otherwise, payload at RANGES. */
static void send_trim(struct fix *f, unsigned tag, uint16_t blocks, const struct fix_prd *prd,
		      unsigned nprd, uint8_t subcmd, uint8_t aux)
{
	uint8_t fis[20];
	fix_fis(fis, 0x64, 0, (uint16_t)(tag << 3 | subcmd << 8), blocks);
	fis[16] = aux;
	fix_cmd(f, 0, tag, fis, NULL, true, prd, nprd);
	fix_pw(f, 0, PORT_SACT, 1u << tag);
	fix_pw(f, 0, PORT_CI, 1u << tag);
}

/* Sector `lba` reads back as zeroes (trimmed) or as the image pattern. */
static bool sector_zero(struct fix *f, uint64_t lba)
{
	uint8_t fis[20];
	struct fix_prd prd = {READBUF, 512};
	memset(fix_ram(f, READBUF, 512), 0xEE, 512);
	fix_fis(fis, 0x25, lba, 1, 0);
	fix_cmd(f, 0, 1, fis, NULL, false, &prd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 1), 0);
	uint8_t *b = fix_ram(f, READBUF, 512);
	bool zero = true, pattern = true;
	for (unsigned i = 0; i < 512; i++) {
		zero &= b[i] == 0;
		pattern &= b[i] == fix_pattern(lba * 512 + i);
	}
	assert_true(zero || pattern);
	return zero;
}

static void test_advertised(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	struct fix_prd prd = {FIX_DATA, 512};
	fix_fis(fis, 0xEC, 0, 0, 0);
	fix_cmd(f, 0, 0, fis, NULL, false, &prd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	uint16_t *id = fix_ram(f, FIX_DATA, 512);
	assert_true(id[77] & (1 << 6)); /* SEND/RECEIVE FPDMA QUEUED */
	assert_true(id[169] & 1);	/* TRIM */
	assert_true(id[84] & (1 << 5)); /* general purpose logging */
	assert_int_equal(id[105], 256); /* blocks of ranges per command */
	assert_true(id[80] & (1 << 7)); /* major version >= 7 (Linux trusts word 169) */

	/* The log directory lists log 13h with one page. */
	assert_int_equal(read_log(f, 0x00, 0, 1) & 0xFF, 0x50);
	uint8_t *b = fix_ram(f, FIX_DATA, 512);
	assert_int_equal(b[0] | b[1] << 8, 1);
	assert_int_equal(b[0x13 * 2] | b[0x13 * 2 + 1] << 8, 1);
	assert_int_equal(b[0x10 * 2] | b[0x10 * 2 + 1] << 8, 1); /* NCQ Command Error */
	assert_int_equal(b[0x11 * 2], 0);
	assert_int_equal(fix_prdbc(f, 0, 0), 512);
	/* Log 13h: SEND FPDMA with DSM (byte 0 bit 0), and its TRIM (byte 4 bit 0). */
	assert_int_equal(read_log(f, 0x13, 0, 1) & 0xFF, 0x50);
	assert_int_equal(b[0] & 1, 1);
	assert_int_equal(b[4] & 1, 1);
	assert_int_equal(b[100], 0);
}

static void test_read_log_errors(void **state)
{
	struct fix *f = *state;
	const struct {
		uint8_t log;
		uint16_t page, count;
	} bad[] = {{0x11, 0, 1}, {0x13, 1, 1},	   {0x13, 0, 2},
		   {0x00, 0, 0}, {0x13, 0x100, 1}, {0xFF, 0, 1}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t tfd = read_log(f, bad[i].log, bad[i].page, bad[i].count);
		assert_true(tfd & 0x01);
		assert_int_equal((tfd >> 8) & 0xFF, 0x04); /* ABRT */
		assert_int_equal(*(uint8_t *)fix_ram(f, FIX_DATA, 1), 0xEE);
		restart(f);
	}
	assert_int_equal(read_log(f, 0x13, 0, 1) & 0xFF, 0x50);
}

static void test_queued_trim(void **state)
{
	struct fix *f = *state;
	memset(fix_ram(f, RANGES, 1024), 0, 1024);
	put_range(f, RANGES, 0, 64, 64);
	put_range(f, RANGES, 2, 1000, 8);  /* entry 1 unused */
	put_range(f, RANGES, 70, 2000, 1); /* in the second block */
	struct fix_prd prd[2] = {{RANGES, 600}, {RANGES + 600, 424}};
	send_trim(f, 5, 2, prd, 2, 0, 1);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_true(fix_pr(f, 0, PORT_SACT) & (1u << 5));
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_SDBS);
	assert_int_equal(fix_prdbc(f, 0, 5), 1024);
	assert_false(sector_zero(f, 63));
	assert_true(sector_zero(f, 64));
	assert_true(sector_zero(f, 127));
	assert_false(sector_zero(f, 128));
	assert_true(sector_zero(f, 1007));
	assert_false(sector_zero(f, 1008));
	assert_true(sector_zero(f, 2000));
	assert_false(sector_zero(f, 2001));
}

/* The command with `tag` fails with `err` in PxTFD and discards nothing (sector 300 keeps its
 * data); the NCQ Command Error log names it, as Linux's error handler reads it. */
static void expect_fail(struct fix *f, unsigned tag, uint8_t err, bool hbds)
{
	fix_complete(f, 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(!!(fix_pr(f, 0, PORT_IS) & PORT_IS_HBDS), hbds);
	assert_int_equal((fix_pr(f, 0, PORT_TFD) >> 8) & 0xFF, err);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	restart(f);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	uint8_t *b = fix_ram(f, FIX_DATA, 512);
	assert_int_equal(b[0], tag);
	assert_int_equal(b[3], err);
	assert_false(sector_zero(f, 300));
}

static void test_hostile_payloads(void **state)
{
	struct fix *f = *state;
	struct fix_prd one = {RANGES, 512};
	memset(fix_ram(f, RANGES, 4096), 0, 4096);
	put_range(f, RANGES, 0, 300, 4);
	/* A range past the end of the disk (and one that wraps): IDNF, the good range stays. */
	put_range(f, RANGES, 1, FIX_DISK_SIZE / 512 - 2, 4);
	send_trim(f, 1, 1, &one, 1, 0, 1);
	expect_fail(f, 1, 0x14, false);
	put_range(f, RANGES, 1, 0xFFFFFFFFFFFFULL, 0xFFFF);
	send_trim(f, 2, 1, &one, 1, 0, 1);
	expect_fail(f, 2, 0x14, false);
	put_range(f, RANGES, 1, 0, 0);
	/* The PRDT describes less than the payload's two blocks. */
	send_trim(f, 3, 2, &one, 1, 0, 1);
	expect_fail(f, 3, 0x04, false);
	/* No PRDT at all. */
	send_trim(f, 4, 1, NULL, 0, 0, 1);
	expect_fail(f, 4, 0x04, false);
	/* The payload outside guest RAM. */
	struct fix_prd out = {FIX_RAM - 256, 512};
	send_trim(f, 6, 1, &out, 1, 0, 1);
	expect_fail(f, 6, 0x04, true);
	/* More blocks than IDENTIFY word 105 allows; 0 means 65536. */
	send_trim(f, 7, 257, &one, 1, 0, 1);
	expect_fail(f, 7, 0x04, false);
	send_trim(f, 8, 0, &one, 1, 0, 1);
	expect_fail(f, 8, 0x04, false);
	/* Another subcommand, or DSM without its TRIM bit. */
	send_trim(f, 9, 1, &one, 1, 2, 1);
	expect_fail(f, 9, 0x04, false);
	send_trim(f, 10, 1, &one, 1, 0, 0);
	expect_fail(f, 10, 0x04, false);
	/* A tag that does not match the slot, and a slot without its SACT bit. */
	uint8_t fis[20];
	fix_fis(fis, 0x64, 0, 12 << 3, 1);
	fis[16] = 1;
	fix_cmd(f, 0, 11, fis, NULL, true, &one, 1);
	fix_pw(f, 0, PORT_SACT, 1u << 11);
	fix_pw(f, 0, PORT_CI, 1u << 11);
	expect_fail(f, 12, 0x04, false);
	fix_fis(fis, 0x64, 0, 13 << 3, 1);
	fis[16] = 1;
	fix_cmd(f, 0, 13, fis, NULL, true, &one, 1);
	fix_pw(f, 0, PORT_CI, 1u << 13);
	expect_fail(f, 13, 0x04, false);
	/* After all that, a good one still works. */
	send_trim(f, 14, 1, &one, 1, 0, 1);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_true(sector_zero(f, 303));
}

static void test_readonly(void **state)
{
	(void)state;
	struct fix f;
	assert_int_equal(fix_init(&f, 1), 0);
	assert_int_equal(fix_attach(&f, 0, ",readonly", DISK_MEDIA_HDD), 0);
	fix_port_start(&f, 0);
	/* The log exists but offers no TRIM, and a queued TRIM aborts. */
	assert_int_equal(read_log(&f, 0x13, 0, 1) & 0xFF, 0x50);
	uint8_t *b = fix_ram(&f, FIX_DATA, 512);
	assert_int_equal(b[0] & 1, 0);
	assert_int_equal(b[4] & 1, 0);
	memset(fix_ram(&f, RANGES, 512), 0, 512);
	put_range(&f, RANGES, 0, 10, 1);
	struct fix_prd one = {RANGES, 512};
	send_trim(&f, 2, 1, &one, 1, 0, 1);
	fix_complete(&f, 0);
	assert_true(fix_pr(&f, 0, PORT_IS) & PORT_IS_TFES);
	fix_fini(&f);
}

static void test_stop_with_trim_in_flight(void **state)
{
	struct fix *f = *state;
	memset(fix_ram(f, RANGES, 512), 0, 512);
	for (unsigned i = 0; i < 8; i++)
		put_range(f, RANGES, i, 100 + 16 * i, 8);
	struct fix_prd one = {RANGES, 512};
	uint8_t *sdb = fix_ram(f, FIX_FB + RFIS_SDBFIS, 8);
	send_trim(f, 0, 1, &one, 1, 0, 1);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 1);
	memset(sdb, 0xCC, 8);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	/* The discard completes only once the stop waits for it: the rest is dropped. */
	f->completer_gate = fix_reset_waiting;
	fix_completer_start(f);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	fix_completer_stop(f);
	for (int i = 0; i < 8; i++)
		assert_int_equal(sdb[i], 0xCC);
	/* The port works again; the second range never went out, nor do the slot's old ranges. */
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	assert_false(sector_zero(f, 116));
	memset(fix_ram(f, RANGES, 512), 0, 512);
	put_range(f, RANGES, 0, 3000, 2);
	send_trim(f, 0, 1, &one, 1, 0, 1);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_true(sector_zero(f, 3001));
	assert_false(sector_zero(f, 116));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_advertised, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_read_log_errors, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_trim, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_payloads, setup_disk, teardown),
	    cmocka_unit_test(test_readonly),
	    cmocka_unit_test_setup_teardown(test_stop_with_trim_in_flight, setup_disk, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
