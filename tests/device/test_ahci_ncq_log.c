/* The NCQ Command Error log (READ LOG EXT 10h) through the AHCI controller, the way Linux's error
 * handler uses it after a queued command fails (libata-sata.c ata_eh_analyze_ncq_error): the
 * failed tag, status, error, LBA, device and count, a page that sums to 0, NQ once read or when
 * nothing failed. While an error is pending the device refuses queued commands; reading the log
 * (not a port restart, nor a refused log read or one whose PRDT is outside RAM) clears it, and so
 * does COMRESET. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/ahci_internal.h"
#include "tests/device/ahci_fixture.h"

#define LOGBUF FIX_DATA
#define READBUF (FIX_DATA + 0x10000)
#define SECTORS (FIX_DISK_SIZE / 512)

static int setup_disk(void **state)
{
	return fix_state_new(state, 1, NULL, true);
}

static int teardown(void **state)
{
	return fix_state_free(state);
}

/* READ LOG EXT (PIO in) of `count` pages into the PRDT given; returns PxTFD. */
static uint32_t read_log_prd(struct fix *f, uint8_t log, uint16_t page, uint16_t count,
			     const struct fix_prd *prd, unsigned nprd)
{
	uint8_t fis[20];
	memset(fix_ram(f, LOGBUF, 512), 0xEE, 512);
	fix_fis(fis, 0x2F, log | (uint64_t)(page & 0xFF) << 8 | (uint64_t)(page >> 8) << 32, count,
		0);
	fix_cmd(f, 0, 0, fis, NULL, false, prd, nprd);
	fix_issue_wait(f, 0, 0);
	return fix_pr(f, 0, PORT_TFD);
}

static uint32_t read_log(struct fix *f, uint8_t log, uint16_t page, uint16_t count)
{
	struct fix_prd prd = {LOGBUF, 512};
	return read_log_prd(f, log, page, count, &prd, 1);
}

/* Restart port 0 after a task-file error, as Linux's error handler does. */
static void restart(struct fix *f)
{
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
}

/* The last command ended with ERR and `err` in PxTFD. */
static void expect_tfd_error(struct fix *f, uint8_t err)
{
	uint32_t tfd = fix_pr(f, 0, PORT_TFD);
	assert_true(tfd & 0x01);
	assert_int_equal((tfd >> 8) & 0xFF, err);
}

static void expect_checksum(const uint8_t *b)
{
	uint8_t sum = 0;
	for (int i = 0; i < 512; i++)
		sum += b[i];
	assert_int_equal(sum, 0);
}

/* Log 10h as read into LOGBUF says "no NCQ error": NQ, nothing else but the checksum. */
static void expect_nq(struct fix *f)
{
	uint8_t *b = fix_ram(f, LOGBUF, 512);
	assert_int_equal(b[0], 0x80);
	for (int i = 1; i < 511; i++)
		assert_int_equal(b[i], 0);
	expect_checksum(b);
}

/* Queue a READ FPDMA QUEUED in slot `tag` and let it run. */
static void ncq_read(struct fix *f, unsigned tag, uint64_t lba, uint16_t count)
{
	uint8_t fis[20];
	struct fix_prd prd = {READBUF, (uint32_t)count * 512};
	fix_ncq_fis(fis, false, tag, lba, count);
	fix_cmd(f, 0, tag, fis, NULL, false, &prd, 1);
	fix_pw(f, 0, PORT_SACT, 1u << tag);
	fix_pw(f, 0, PORT_CI, 1u << tag);
	fix_complete(f, 0);
}

/* A read of sectors [SECTORS - 2, SECTORS + 2) in tag 5: IDNF; the port is restarted. */
static void fail_tag5(struct fix *f)
{
	ncq_read(f, 5, SECTORS - 2, 4);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	expect_tfd_error(f, 0x10);
	restart(f);
}

/* LOGBUF holds the log page for fail_tag5's command. */
static void expect_tag5(struct fix *f)
{
	uint8_t *b = fix_ram(f, LOGBUF, 512);
	uint64_t lba = SECTORS - 2;
	assert_int_equal(b[0], 5);    /* tag, NQ clear */
	assert_int_equal(b[2], 0x41); /* DRDY | ERR */
	assert_int_equal(b[3], 0x10); /* IDNF */
	assert_int_equal(b[4] | b[5] << 8 | b[6] << 16 | (uint64_t)b[8] << 24 |
			     (uint64_t)b[9] << 32 | (uint64_t)b[10] << 40,
			 lba);
	assert_int_equal(b[7], 0x40);
	assert_int_equal(b[12] | b[13] << 8, 4);
	for (int i = 14; i < 511; i++)
		assert_int_equal(b[i], 0);
	expect_checksum(b);
}

static void test_failed_read_reported(void **state)
{
	struct fix *f = *state;
	fail_tag5(f);
	memset(fix_ram(f, READBUF, 512), 0xEE, 512);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	assert_int_equal(fix_prdbc(f, 0, 0), 512);
	expect_tag5(f);
	/* Read once, the error is gone: NQ. */
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_nq(f);
	/* Queued commands run again. */
	ncq_read(f, 3, 0, 1);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_int_equal(*(uint8_t *)fix_ram(f, READBUF, 1), fix_pattern(0));
}

static void test_no_error(void **state)
{
	struct fix *f = *state;
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_nq(f);
	/* A good queued command leaves nothing to report either. */
	ncq_read(f, 2, 8, 2);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_nq(f);
}

/* Until the log is read, a queued command aborts and the first error stays the one reported. */
static void test_pending_refuses_queued(void **state)
{
	struct fix *f = *state;
	fail_tag5(f);
	memset(fix_ram(f, READBUF, 512), 0xEE, 512);
	ncq_read(f, 9, 0, 1);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	expect_tfd_error(f, 0x04);
	assert_true(fix_pr(f, 0, PORT_SACT) & (1u << 9));
	assert_int_equal(*(uint8_t *)fix_ram(f, READBUF, 1), 0xEE);
	restart(f);
	/* Non-queued commands still run. */
	assert_int_equal(read_log(f, 0x00, 0, 1) & 0xFF, 0x50);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_tag5(f);
}

/* Bad page, count or log address: ABRT, nothing transferred, the error still pending. */
static void test_bad_log_reads(void **state)
{
	struct fix *f = *state;
	const struct {
		uint8_t log;
		uint16_t page, count;
	} bad[] = {{0x10, 1, 1}, {0x10, 0, 2}, {0x10, 0, 0}, {0x10, 0x100, 1}, {0x11, 0, 1}};
	fail_tag5(f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		read_log(f, bad[i].log, bad[i].page, bad[i].count);
		expect_tfd_error(f, 0x04);
		assert_int_equal(*(uint8_t *)fix_ram(f, LOGBUF, 1), 0xEE);
		restart(f);
	}
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_tag5(f);
}

/* A log read whose PRDT is outside RAM aborts (HBDS) and the error stays pending. A PRDT shorter
 * than the page, as for any PIO-in command here, ends the command with the rest dropped (PRDBC
 * says how much arrived): the device did send the page, so the error is reported and cleared. */
static void test_hostile_prd(void **state)
{
	struct fix *f = *state;
	struct fix_prd out = {FIX_RAM - 256, 512}, half = {LOGBUF, 256};
	fail_tag5(f);
	read_log_prd(f, 0x10, 0, 1, &out, 1);
	expect_tfd_error(f, 0x04);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_HBDS);
	restart(f);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_tag5(f);

	fail_tag5(f);
	read_log_prd(f, 0x10, 0, 1, NULL, 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0);
	assert_int_equal(fix_prdbc(f, 0, 0), 0);
	assert_int_equal(*(uint8_t *)fix_ram(f, LOGBUF, 1), 0xEE);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_nq(f);

	fail_tag5(f);
	read_log_prd(f, 0x10, 0, 1, &half, 1);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	assert_int_equal(fix_prdbc(f, 0, 0), 256);
	uint8_t *b = fix_ram(f, LOGBUF, 512);
	assert_int_equal(b[0], 5);
	assert_int_equal(b[3], 0x10);
	assert_int_equal(b[256], 0xEE);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_nq(f);
}

/* COMRESET is a device reset: the error is forgotten. */
static void test_comreset_clears(void **state)
{
	struct fix *f = *state;
	fail_tag5(f);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_SCTL, 0x301);
	fix_pw(f, 0, PORT_SCTL, 0x300);
	fix_pw(f, 0, PORT_SERR, 0xFFFFFFFF);
	restart(f);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	expect_nq(f);
}

/* A failed queued TRIM (a range beyond the disk) is reported with its tag and block count. */
static void test_trim_failure(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	struct fix_prd prd = {READBUF, 512};
	uint8_t *e = fix_ram(f, READBUF, 512);
	uint64_t v = (uint64_t)(SECTORS - 1) | (uint64_t)8 << 48;
	memset(e, 0, 512);
	for (int i = 0; i < 8; i++)
		e[i] = (uint8_t)(v >> (8 * i));
	fix_fis(fis, 0x64, 0, 17 << 3, 1);
	fis[16] = 1;
	fix_cmd(f, 0, 17, fis, NULL, true, &prd, 1);
	fix_pw(f, 0, PORT_SACT, 1u << 17);
	fix_pw(f, 0, PORT_CI, 1u << 17);
	fix_complete(f, 0);
	expect_tfd_error(f, 0x14);
	restart(f);
	assert_int_equal(read_log(f, 0x10, 0, 1) & 0xFF, 0x50);
	uint8_t *b = fix_ram(f, LOGBUF, 512);
	assert_int_equal(b[0], 17);
	assert_int_equal(b[3], 0x14);
	assert_int_equal(b[12] | b[13] << 8, 1);
	expect_checksum(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_failed_read_reported, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_no_error, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_refuses_queued, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_log_reads, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_prd, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_comreset_clears, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_trim_failure, setup_disk, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
