/* AHCI controller against a hostile or buggy guest: PRDTs outside RAM, huge PRDTL, one-byte
 * entries, resets (ST, COMRESET, HBA reset) with NCQ commands in flight, CI rewrites while
 * commands run, unknown FISes, command lists and FIS areas outside RAM, odd register accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/ahci_internal.h"
#include "tests/device/ahci_fixture.h"

#define OUTSIDE_RAM 0x7FFF00000000ULL

static int setup_disk(void **state)
{
	return fix_state_new(state, 2, NULL, true);
}

static int teardown(void **state)
{
	return fix_state_free(state);
}

static void port_restart(struct fix *f)
{
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
}

/* A good command after the hostile one: the port still works. */
static void assert_port_works(struct fix *f)
{
	uint8_t fis[20];
	struct fix_prd prd = {FIX_DATA + 0x300000, 512};
	uint8_t *buf = fix_ram(f, FIX_DATA + 0x300000, 512);
	memset(buf, 0, 512);
	fix_fis(fis, 0x25, 7, 1, 0);
	fix_cmd(f, 0, 9, fis, NULL, false, &prd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 9), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], fix_pattern(7 * 512 + i));
}

static void test_prdt_outside_ram(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	struct fix_prd prd[2] = {{FIX_DATA, 512}, {OUTSIDE_RAM, 512}};
	fix_fis(fis, 0x25, 0, 2, 0);
	fix_cmd(f, 0, 0, fis, NULL, false, prd, 2);
	fix_issue_wait(f, 0, 0);
	uint32_t is = fix_pr(f, 0, PORT_IS);
	assert_true(is & PORT_IS_TFES);
	assert_true(is & PORT_IS_HBDS);
	assert_true(fix_pr(f, 0, PORT_TFD) & 0x01);
	/* a PRD straddling the end of RAM is outside too */
	port_restart(f);
	struct fix_prd edge = {FIX_RAM - 256, 512};
	fix_cmd(f, 0, 1, fis, NULL, false, &edge, 1);
	fix_issue_wait(f, 0, 1);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_HBDS);
	/* NCQ: same */
	port_restart(f);
	fix_ncq_fis(fis, false, 3, 0, 2);
	fix_cmd(f, 0, 3, fis, NULL, false, prd, 2);
	fix_pw(f, 0, PORT_SACT, 1u << 3);
	fix_pw(f, 0, PORT_CI, 1u << 3);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_HBDS);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	port_restart(f);
	assert_port_works(f);
}

/* Header pointing at a table of `prdtl` one-byte entries (DBC 0) at `ctba`, contiguous. */
static void huge_table(struct fix *f, unsigned slot, uint64_t ctba, unsigned prdtl,
		       const uint8_t fis[20])
{
	uint8_t *hdr = fix_ram(f, FIX_CLB + slot * CMDH_SIZE, CMDH_SIZE);
	memset(hdr, 0, CMDH_SIZE);
	uint32_t dw0 = 5 | (uint32_t)prdtl << 16;
	memcpy(hdr, &dw0, 4);
	memcpy(hdr + 8, &ctba, 8);
	uint8_t *t = fix_ram(f, ctba, CMDT_PRDT);
	memset(t, 0, CMDT_PRDT);
	memcpy(t, fis, 20);
	for (unsigned i = 0; i < prdtl; i++) {
		uint8_t *e = fix_ram(f, ctba + CMDT_PRDT + (uint64_t)i * PRD_SIZE, PRD_SIZE);
		if (!e)
			break; /* the rest of the table lies outside RAM */
		memset(e, 0, PRD_SIZE);
		uint64_t a = FIX_DATA + i;
		memcpy(e, &a, 8); /* DBC 0: one byte */
	}
}

static void test_huge_prdtl(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	/* 65535 one-byte entries cannot hold 65536 bytes: an error, after a bounded walk */
	fix_fis(fis, 0x25, 0, 128, 0);
	huge_table(f, 0, 0x800000, 65535, fis);
	fix_issue_wait(f, 0, 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	/* a table that runs past the end of RAM */
	port_restart(f);
	huge_table(f, 1, FIX_RAM - 0x1000, 65535, fis);
	fix_issue_wait(f, 0, 1);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	/* 65535 entries for one sector: only the first 512 are used, they merge into one piece */
	port_restart(f);
	uint8_t *buf = fix_ram(f, FIX_DATA, 512);
	memset(buf, 0, 512);
	fix_fis(fis, 0x25, 5, 1, 0);
	huge_table(f, 2, 0x800000, 65535, fis);
	assert_int_equal(fix_issue_wait(f, 0, 2), 0);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], fix_pattern(5 * 512 + i));
	assert_int_equal(fix_prdbc(f, 0, 2), 512);
	/* NCQ with the huge table */
	fix_ncq_fis(fis, false, 4, 0, 128);
	huge_table(f, 4, 0x800000, 65535, fis);
	fix_pw(f, 0, PORT_SACT, 1u << 4);
	fix_pw(f, 0, PORT_CI, 1u << 4);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
}

/* Issue NCQ reads in slots 0..n-1 (not completed: nobody runs completions yet). */
static void ncq_reads(struct fix *f, unsigned n)
{
	uint8_t fis[20];
	uint32_t mask = n == 32 ? 0xFFFFFFFF : (1u << n) - 1;
	for (unsigned t = 0; t < n; t++) {
		struct fix_prd prd = {FIX_DATA + t * 0x10000, 0x10000};
		fix_ncq_fis(fis, false, t, t * 128, 128);
		fix_cmd(f, 0, t, fis, NULL, false, &prd, 1);
	}
	fix_pw(f, 0, PORT_SACT, mask);
	fix_pw(f, 0, PORT_CI, mask);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), n);
}

enum reset_kind { RESET_STOP, RESET_COMRESET, RESET_HBA };

/* Completions may run only once a reset of port 0 is waiting for them: none can sneak in before
 * the reset, so every one of them must be dropped. */
static void reset_with_ncq(struct fix *f, enum reset_kind kind)
{
	uint8_t *sdb = fix_ram(f, FIX_FB + RFIS_SDBFIS, 8);
	ncq_reads(f, 32);
	memset(sdb, 0xCC, 8);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	/* The completions run on another thread while the reset waits for them. */
	f->completer_gate = fix_reset_waiting;
	fix_completer_start(f);
	switch (kind) {
	case RESET_STOP:
		fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
		break;
	case RESET_COMRESET:
		fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
		fix_pw(f, 0, PORT_SCTL, 1);
		fix_pw(f, 0, PORT_SCTL, 0);
		break;
	case RESET_HBA:
		fix_w(f, AHCI_GHC, AHCI_GHC_HR);
		break;
	}
	/* When the reset returns, nothing of the old commands runs anymore... */
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_false(fix_pr(f, 0, PORT_CMD) & PORT_CMD_CR);
	fix_completer_stop(f);
	/* ...and their late callbacks neither posted a FIS nor raised an interrupt. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(sdb[i], 0xCC);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_SDBS);
	fix_port_start(f, 0);
	assert_port_works(f);
}

static void test_stop_with_ncq_in_flight(void **state)
{
	reset_with_ncq(*state, RESET_STOP);
}

static void test_comreset_with_ncq_in_flight(void **state)
{
	reset_with_ncq(*state, RESET_COMRESET);
}

static void test_hba_reset_with_ncq_in_flight(void **state)
{
	reset_with_ncq(*state, RESET_HBA);
}

static void test_ci_rewrite_while_running(void **state)
{
	struct fix *f = *state;
	ncq_reads(f, 4);
	/* The same bits again, and SACT again: the running commands are not fetched twice. */
	fix_pw(f, 0, PORT_SACT, 0xF);
	fix_pw(f, 0, PORT_CI, 0xF);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 4);
	fix_complete(f, 0);
	/* After they complete, the re-issued slots run as new commands: SACT was cleared by the
	 * completions, so they are refused (TFES), never run on stale state. */
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	port_restart(f);
	/* A non-queued DMA read in flight, CI rewritten: still one request */
	uint8_t fis[20];
	struct fix_prd prd = {FIX_DATA, 0x10000};
	fix_fis(fis, 0x25, 0, 128, 0);
	fix_cmd(f, 0, 6, fis, NULL, false, &prd, 1);
	fix_pw(f, 0, PORT_CI, 1u << 6);
	unsigned pending = block_aio_pending(f->disk[0]->aio);
	assert_true(pending >= 1);
	fix_pw(f, 0, PORT_CI, 1u << 6);
	fix_pw(f, 0, PORT_CI, 0xFFFFFFFF & ~(1u << 6)); /* slots with garbage headers wait */
	assert_int_equal(block_aio_pending(f->disk[0]->aio), pending);
	/* stop and restart before the garbage runs */
	fix_completer_start(f);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_completer_stop(f);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	port_restart(f);
	assert_port_works(f);
}

static void test_ci_ignored_when_stopped(void **state)
{
	struct fix *f = *state;
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_SACT, 1);
	fix_pw(f, 0, PORT_CI, 1);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	/* all 32 slots exist (CAP.NCS = 31): slot 31 works */
	port_restart(f);
	uint8_t fis[20];
	fix_fis(fis, 0xE7, 0, 0, 0);
	fix_cmd(f, 0, 31, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 31), 0);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
}

static void test_unknown_fis(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_fis(fis, 0x25, 0, 1, 0);
	fis[0] = 0x39; /* DMA activate: not a host-to-device command FIS */
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	fix_pw(f, 0, PORT_CI, 1);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_UFS);
	/* CFL too short for a register FIS */
	port_restart(f);
	fix_fis(fis, 0xE7, 0, 0, 0);
	fix_cmd(f, 0, 1, fis, NULL, false, NULL, 0);
	uint8_t *hdr = fix_ram(f, FIX_CLB + CMDH_SIZE, 4);
	hdr[0] = 2;
	fix_pw(f, 0, PORT_CI, 2);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	port_restart(f);
	assert_port_works(f);
}

static void test_list_and_fis_area_outside_ram(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	/* command list outside RAM */
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_CLB, 0);
	fix_pw(f, 0, PORT_CLBU, 0x7FFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	fix_pw(f, 0, PORT_CI, 1);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_HBFS);
	/* command table outside RAM */
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, 0, PORT_CLB, FIX_CLB);
	fix_pw(f, 0, PORT_CLBU, 0);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	fix_fis(fis, 0xE7, 0, 0, 0);
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	uint8_t *hdr = fix_ram(f, FIX_CLB, CMDH_SIZE);
	uint64_t bad = OUTSIDE_RAM;
	memcpy(hdr + 8, &bad, 8);
	fix_pw(f, 0, PORT_CI, 1);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_HBFS);
	/* FIS area outside RAM: the command runs, posting its FIS fails safely */
	fix_pw(f, 0, PORT_CMD, 0);
	fix_pw(f, 0, PORT_FB, 0xFFFFFF00);
	fix_pw(f, 0, PORT_FBU, 0x7FFF);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	fix_issue_wait(f, 0, 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_HBFS);
	/* back to a sane FIS area */
	fix_pw(f, 0, PORT_CMD, 0);
	fix_pw(f, 0, PORT_FB, FIX_FB);
	fix_pw(f, 0, PORT_FBU, 0);
	fix_port_start(f, 0);
	assert_port_works(f);
}

static void test_srst_control_fis(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20] = {FIS_TYPE_REG_H2D, 0};
	uint8_t *rfis = fix_ram(f, FIX_FB + RFIS_RFIS, 20);
	fis[15] = FIS_CTL_SRST;
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_true(fix_pr(f, 0, PORT_TFD) & 0x80); /* BSY while SRST is asserted */
	memset(rfis, 0, 20);
	fis[15] = 0;
	fix_cmd(f, 0, 1, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 1), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	assert_int_equal(fix_pr(f, 0, PORT_SIG), PORT_SIG_ATA);
	assert_int_equal(rfis[0], FIS_TYPE_REG_D2H);
	assert_int_equal(rfis[12], 1); /* signature sector count */
	assert_port_works(f);
}

static void test_odd_register_accesses(void **state)
{
	struct fix *f = *state;
	uint8_t d[8];
	/* byte read of VS's high half */
	assert_true(io_bus_access(&f->mmio, f->abar + AHCI_VS + 2, d, 2, false));
	assert_int_equal(d[0] | d[1] << 8, 1);
	/* a byte write to GHC is ignored (HR would reset) */
	d[0] = AHCI_GHC_HR | AHCI_GHC_IE;
	io_bus_access(&f->mmio, f->abar + AHCI_GHC, d, 1, true);
	assert_true(fix_pr(f, 0, PORT_CMD) & PORT_CMD_ST);
	/* an 8-byte read covers CAP and GHC */
	assert_true(io_bus_access(&f->mmio, f->abar, d, 8, false));
	uint32_t cap, ghc;
	memcpy(&cap, d, 4);
	memcpy(&ghc, d + 4, 4);
	assert_int_equal(cap, fix_r(f, AHCI_CAP));
	assert_int_equal(ghc, fix_r(f, AHCI_GHC));
	/* the last dword of the ABAR, and registers of a port that does not exist */
	assert_int_equal(fix_r(f, AHCI_ABAR_SIZE - 4), 0);
	fix_pw(f, 5, PORT_CI, 0xFFFFFFFF);
	fix_pw(f, 29, PORT_CMD, 0xFFFFFFFF);
	assert_int_equal(fix_pr(f, 5, PORT_CI), 0);
	/* read-only registers stay */
	fix_w(f, AHCI_CAP, 0);
	fix_w(f, AHCI_PI, 0);
	assert_int_equal(fix_r(f, AHCI_PI), 3);
	fix_pw(f, 0, PORT_SIG, 0);
	fix_pw(f, 0, PORT_SSTS, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SIG), PORT_SIG_ATA);
	assert_int_equal(fix_pr(f, 0, PORT_SSTS) & 0xF, 3);
	/* the empty port reports no device and runs nothing */
	assert_int_equal(fix_pr(f, 1, PORT_SSTS), 0);
	fix_pw(f, 1, PORT_CLB, FIX_CLB + 0x1000);
	fix_pw(f, 1, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	fix_pw(f, 1, PORT_CI, 1);
	assert_int_equal(fix_pr(f, 1, PORT_CI), 1);
	assert_int_equal(fix_pr(f, 1, PORT_IS), 0);
	assert_port_works(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_prdt_outside_ram, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_huge_prdtl, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_with_ncq_in_flight, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_comreset_with_ncq_in_flight, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_hba_reset_with_ncq_in_flight, setup_disk,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_ci_rewrite_while_running, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_ci_ignored_when_stopped, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_fis, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_list_and_fis_area_outside_ram, setup_disk,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_srst_control_fis, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_register_accesses, setup_disk, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
