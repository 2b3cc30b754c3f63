/* ATAPI CD-ROM on the IDE secondary master, driven through the ports with an ISO made by xorriso:
 * signature, IDENTIFY (PACKET) DEVICE, INQUIRY, READ CAPACITY, READ(10)/(12) by PIO and DMA, TOC
 * formats, MODE SENSE, GET CONFIGURATION, events, sense data for errors, allocation lengths far
 * larger than the replies, tray lock/eject, and media change through storage_change_medium with the
 * real I/O thread. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "tests/device/ide_rig.h"
#include "devices/device.h"
#include "vmm/control.h"
#include "lib/error.h"

#define S 0x170
#define SCTL 0x376

static char iso_path[600], iso2_path[600];
static uint64_t iso_size;

static int setup(void **state)
{
	(void)state;
	char cmd[2048];
	if (test_tmpdir_setup("test-ata") < 0)
		return -1;
	snprintf(
	    cmd, sizeof(cmd),
	    "set -e; d='%s'; mkdir -p $d/tree $d/tree2; "
	    "head -c 300000 /dev/urandom > $d/tree/random.bin; echo hello > $d/tree/hello.txt; "
	    "echo second > $d/tree2/second.txt; "
	    "xorriso -as mkisofs -quiet -V TESTCD -o $d/a.iso $d/tree 2>/dev/null; "
	    "xorriso -as mkisofs -quiet -V OTHER -o $d/b.iso $d/tree2 2>/dev/null",
	    test_tmpdir);
	if (system(cmd) != 0)
		return -1;
	snprintf(iso_path, sizeof(iso_path), "%s/a.iso", test_tmpdir);
	snprintf(iso2_path, sizeof(iso2_path), "%s/b.iso", test_tmpdir);
	FILE *f = fopen(iso_path, "r");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	iso_size = (uint64_t)ftell(f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return test_tmpdir_teardown(NULL);
}

static struct rig *rig_cd(void)
{
	const char *args[4] = {NULL, NULL, iso_path, NULL};
	const bool cd[4] = {false, false, true, false};
	struct rig *r = rig_new(args, cd);
	assert_non_null(r);
	return r;
}

/* Wait for BSY to clear: run completions (rig: directly; storage: the I/O thread does). */
typedef void (*drain_fn)(struct rig *r);
static drain_fn drain;

static void rig_drain_fn(struct rig *r)
{
	rig_drain(r);
}

/* Send a packet; collect the data-in phase into out (at most max bytes). Returns the final status;
 * *len gets the bytes received. byte_limit goes to LBA mid/high, dma selects FEATURES bit 0. */
static uint8_t packet(struct rig *r, const uint8_t cdb[12], uint8_t *out, size_t max, size_t *len,
		      uint16_t byte_limit, bool dma)
{
	size_t got = 0;
	rig_out(r, S + 6, 0xA0, 1);
	rig_out(r, S + 1, dma ? 1 : 0, 1);
	rig_out(r, S + 4, byte_limit & 0xFF, 1);
	rig_out(r, S + 5, byte_limit >> 8, 1);
	rig_out(r, S + 7, 0xA0, 1);
	uint8_t st = (uint8_t)rig_in(r, S + 7, 1);
	assert_true(st & ATA_STAT_DRQ);
	assert_int_equal(rig_in(r, S + 2, 1) & 3, 1); /* C/D: the device wants the packet */
	for (int i = 0; i < 12; i += 2)
		rig_out(r, S, cdb[i] | cdb[i + 1] << 8, 2);
	if (dma)
		rig_out(r, (r->bm_base + 8), BM_CMD_TO_MEMORY | BM_CMD_START, 1);
	for (int blocks = 0; blocks < 100000; blocks++) {
		drain(r);
		st = (uint8_t)rig_in(r, S + 7, 1);
		if (st & ATA_STAT_BSY)
			continue;
		if (!(st & ATA_STAT_DRQ))
			break;
		assert_int_equal(rig_in(r, S + 2, 1) & 3, 2); /* I/O: data to the host */
		size_t n = rig_in(r, S + 4, 1) | rig_in(r, S + 5, 1) << 8;
		assert_true(n > 0 && (byte_limit == 0 || n <= byte_limit));
		for (size_t i = 0; i < n; i += 2) {
			uint16_t w = (uint16_t)rig_in(r, S, 2);
			if (got + 2 <= max)
				memcpy(out + got, &w, 2);
			got += 2;
		}
	}
	if (dma)
		rig_out(r, (r->bm_base + 8), 0, 1);
	assert_int_equal(rig_in(r, S + 2, 1) & 3, 3); /* command complete */
	if (len)
		*len = got;
	return st;
}

struct atapi_sense {
	uint8_t key, asc, ascq;
};

static struct atapi_sense request_sense(struct rig *r)
{
	uint8_t cdb[12] = {0x03, 0, 0, 0, 18}, b[18];
	size_t n;
	assert_int_equal(packet(r, cdb, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(n, 18);
	assert_int_equal(b[0], 0x70);
	return (struct atapi_sense){b[2] & 0x0F, b[12], b[13]};
}

static void expect_sense(struct rig *r, uint8_t st, uint8_t key, uint8_t asc)
{
	assert_int_equal(st, 0x41);
	assert_int_equal(rig_in(r, S + 1, 1), (unsigned)(key << 4 | ATA_ERR_ABRT));
	struct atapi_sense s = request_sense(r);
	assert_int_equal(s.key, key);
	assert_int_equal(s.asc, asc);
}

static void test_signature_identify(void **state)
{
	(void)state;
	struct rig *r = rig_cd();
	drain = rig_drain_fn;
	rig_out(r, SCTL, ATA_CTL_SRST, 1);
	rig_out(r, SCTL, 0, 1);
	rig_out(r, S + 6, 0xA0, 1);
	assert_int_equal(rig_in(r, S + 4, 1), 0x14);
	assert_int_equal(rig_in(r, S + 5, 1), 0xEB);
	assert_int_equal(rig_in(r, S + 7, 1), 0); /* ATAPI: DRDY clear after reset */
	/* IDENTIFY DEVICE aborts and leaves the signature; IDENTIFY PACKET DEVICE answers. */
	rig_out(r, S + 7, 0xEC, 1);
	assert_int_equal(rig_in(r, S + 7, 1), 0x41);
	assert_int_equal(rig_in(r, S + 4, 1), 0x14);
	assert_int_equal(rig_in(r, S + 5, 1), 0xEB);
	rig_out(r, S + 7, 0xA1, 1);
	assert_int_equal(rig_in(r, S + 7, 1), 0x58);
	uint16_t id[256];
	for (int i = 0; i < 256; i++)
		id[i] = (uint16_t)rig_in(r, S, 2);
	assert_int_equal(id[0], 0x85C0);
	assert_true(id[49] & (1 << 8)); /* DMA */
	/* Disk commands on the CD abort (CVE-2015-6855). */
	const uint8_t disk_cmds[] = {0x20, 0x30, 0xC8, 0xCA, 0x25, 0x06, 0xE7, 0xF8, 0xC6};
	for (size_t i = 0; i < sizeof(disk_cmds); i++) {
		rig_out(r, S + 7, disk_cmds[i], 1);
		assert_int_equal(rig_in(r, S + 7, 1), 0x41);
		assert_int_equal(rig_in(r, S + 1, 1), ATA_ERR_ABRT);
	}
	/* The slave position is empty: it reads 0. */
	rig_out(r, S + 6, 0xB0, 1);
	assert_int_equal(rig_in(r, S + 7, 1), 0);
	rig_free(r);
}

static void test_inquiry_capacity_read(void **state)
{
	(void)state;
	struct rig *r = rig_cd();
	drain = rig_drain_fn;
	uint8_t b[65536], ref[8192];
	size_t n;

	/* INQUIRY with the largest allocation length: 36 bytes come back, no more. */
	uint8_t inq[12] = {0x12, 0, 0, 0xFF, 0xFF};
	assert_int_equal(packet(r, inq, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(n, 36);
	assert_int_equal(b[0], 0x05);
	assert_int_equal(b[1], 0x80);
	assert_memory_equal(b + 8, "MINIVMM ", 8);
	/* ... and cut to a small one. */
	inq[3] = 0;
	inq[4] = 5;
	packet(r, inq, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 6); /* 5 rounded up to the 16-bit data port */
	/* EVPD: the supported-pages page is there, a page that does not exist is refused. */
	inq[1] = 1;
	inq[4] = 0xFF;
	assert_int_equal(packet(r, inq, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(b[1], 0x00);
	inq[2] = 0x99;
	expect_sense(r, packet(r, inq, b, sizeof(b), &n, 0xFFFE, false), 5, 0x24);

	uint8_t cap[12] = {0x25};
	assert_int_equal(packet(r, cap, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(n, 8);
	uint32_t last = (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
	assert_int_equal(last, iso_size / 2048 - 1);
	assert_int_equal(b[6] << 8 | b[7], 2048);

	/* READ(10) of the primary volume descriptor, 2048-byte PIO blocks. */
	uint8_t rd[12] = {0x28, 0, 0, 0, 0, 16, 0, 0, 1};
	assert_int_equal(packet(r, rd, b, sizeof(b), &n, 2048, false), 0x50);
	assert_int_equal(n, 2048);
	assert_memory_equal(b,
			    "\x01"
			    "CD001",
			    6);
	assert_memory_equal(b + 40, "TESTCD", 6);
	/* READ(12) of 4 blocks with a small byte limit: many DRQ blocks, same data. */
	FILE *f = fopen(iso_path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 20 * 2048, SEEK_SET), 0);
	assert_int_equal(fread(ref, 1, 8192, f), 8192);
	fclose(f);
	uint8_t rd12[12] = {0xA8, 0, 0, 0, 0, 20, 0, 0, 0, 4};
	assert_int_equal(packet(r, rd12, b, sizeof(b), &n, 1000, false), 0x50);
	assert_int_equal(n, 8192);
	assert_memory_equal(b, ref, 8192);
	/* The same by DMA into two PRD segments. */
	rig_prd(r, 0x1000, 0, 0x10000, 3000, false);
	rig_prd(r, 0x1000, 1, 0x20000, 5192, true);
	rig_out(r, (r->bm_base + 8) + 4, 0x1000, 4);
	uint8_t rd10[12] = {0x28, 0, 0, 0, 0, 20, 0, 0, 4};
	assert_int_equal(packet(r, rd10, b, sizeof(b), &n, 0, true), 0x50);
	assert_int_equal(n, 0);
	guest_memory_read(&r->mem, 0x10000, b, 3000);
	guest_memory_read(&r->mem, 0x20000, b + 3000, 5192);
	assert_memory_equal(b, ref, 8192);
	assert_true(rig_in(r, (r->bm_base + 8) + 2, 1) & BM_STATUS_INTR);
	/* INQUIRY by DMA: the reply buffer goes through the PRD table. */
	inq[1] = 0;
	inq[2] = 0;
	inq[4] = 36;
	packet(r, inq, b, sizeof(b), &n, 0, true);
	guest_memory_read(&r->mem, 0x10000, b, 36);
	assert_int_equal(b[0], 0x05);

	/* Out of range: the last block is fine, one past it is LBA OUT OF RANGE. */
	uint32_t blocks = (uint32_t)(iso_size / 2048);
	uint8_t bad[12] = {0x28,
			   0,
			   (uint8_t)(blocks >> 24),
			   (uint8_t)(blocks >> 16),
			   (uint8_t)(blocks >> 8),
			   (uint8_t)blocks,
			   0,
			   0,
			   1};
	expect_sense(r, packet(r, bad, b, sizeof(b), &n, 0xFFFE, false), 5, 0x21);
	uint8_t huge[12] = {0xA8, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
	expect_sense(r, packet(r, huge, b, sizeof(b), &n, 0xFFFE, false), 5, 0x21);
	bad[5]--;
	assert_int_equal(packet(r, bad, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(n, 2048);
	/* Count 0 transfers nothing and succeeds. */
	uint8_t zero[12] = {0x28, 0, 0, 0, 0, 16, 0, 0, 0};
	assert_int_equal(packet(r, zero, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(n, 0);
	/* Unknown opcode. */
	uint8_t unk[12] = {0xEE};
	expect_sense(r, packet(r, unk, b, sizeof(b), &n, 0xFFFE, false), 5, 0x20);
	rig_free(r);
}

static void test_toc_mode_config(void **state)
{
	(void)state;
	struct rig *r = rig_cd();
	drain = rig_drain_fn;
	uint8_t b[4096];
	size_t n;
	uint32_t blocks = (uint32_t)(iso_size / 2048);

	/* TOC format 0, LBA: track 1 at 0, lead-out at the block count. */
	uint8_t toc[12] = {0x43, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
	assert_int_equal(packet(r, toc, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	assert_int_equal(n, 20);
	assert_int_equal(b[0] << 8 | b[1], 18);
	assert_int_equal(b[6], 1);
	assert_int_equal(b[14], 0xAA);
	assert_int_equal((uint32_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19], blocks);
	/* MSF: track 1 at 00:02:00. */
	toc[1] = 2;
	packet(r, toc, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(b[9], 0);
	assert_int_equal(b[10], 2);
	assert_int_equal(b[11], 0);
	assert_int_equal(b[17] * 60 * 75 + b[18] * 75 + b[19], blocks + 150);
	/* Format 1 (sessions) and 2 (full TOC: A0, A1, A2, track 1). */
	toc[1] = 0;
	toc[2] = 1;
	packet(r, toc, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 12);
	toc[2] = 2;
	packet(r, toc, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 48);
	assert_int_equal(b[7], 0xA0);
	assert_int_equal(b[18], 0xA1);
	assert_int_equal(b[29], 0xA2);
	/* Bad format and bad track. */
	toc[2] = 5;
	expect_sense(r, packet(r, toc, b, sizeof(b), &n, 0xFFFE, false), 5, 0x24);
	toc[2] = 0;
	toc[6] = 2;
	expect_sense(r, packet(r, toc, b, sizeof(b), &n, 0xFFFE, false), 5, 0x24);
	/* A tiny allocation length cuts the reply. */
	toc[6] = 0;
	toc[7] = 0;
	toc[8] = 4;
	packet(r, toc, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 4);

	/* MODE SENSE(10): capabilities page, all pages, an unknown page, saved values. */
	uint8_t ms[12] = {0x5A, 0, 0x2A, 0, 0, 0, 0, 0xFF, 0xFF};
	packet(r, ms, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 8 + 22);
	assert_int_equal(b[8], 0x2A);
	ms[2] = 0x3F;
	packet(r, ms, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 8 + 12 + 12 + 22); /* error recovery, control, capabilities */
	ms[2] = 0x05;
	expect_sense(r, packet(r, ms, b, sizeof(b), &n, 0xFFFE, false), 5, 0x24);
	ms[2] = 0xEA; /* saved values of page 0x2A */
	expect_sense(r, packet(r, ms, b, sizeof(b), &n, 0xFFFE, false), 5, 0x39);
	uint8_t ms6[12] = {0x1A, 0, 0x01, 0, 0xFF};
	packet(r, ms6, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 4 + 12);

	/* GET CONFIGURATION: current profile CD-ROM; one feature only with RT=2. */
	uint8_t gc[12] = {0x46, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
	packet(r, gc, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(b[6] << 8 | b[7], 0x0008);
	assert_int_equal((uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3], n - 4);
	gc[1] = 2;
	gc[3] = 3;
	packet(r, gc, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 8 + 8);
	assert_int_equal(b[8] << 8 | b[9], 3);

	/* GET EVENT STATUS NOTIFICATION: polled only. */
	uint8_t ev[12] = {0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8};
	packet(r, ev, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 8);
	assert_int_equal(b[5] & 2, 2); /* media present */
	ev[1] = 0;
	expect_sense(r, packet(r, ev, b, sizeof(b), &n, 0xFFFE, false), 5, 0x24);

	/* READ DISC INFORMATION, MECHANISM STATUS, SET CD SPEED, MODE SELECT (ignored). */
	uint8_t di[12] = {0x51, 0, 0, 0, 0, 0, 0, 0, 34};
	packet(r, di, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 34);
	assert_int_equal(b[2], 0x0E);
	uint8_t mech[12] = {0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8};
	packet(r, mech, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(n, 8);
	uint8_t speed[12] = {0xBB, 0, 0xFF, 0xFF};
	assert_int_equal(packet(r, speed, b, sizeof(b), &n, 0xFFFE, false), 0x50);
	rig_free(r);
}

static void test_tray(void **state)
{
	(void)state;
	struct rig *r = rig_cd();
	drain = rig_drain_fn;
	uint8_t b[4096];
	size_t n;
	uint8_t tur[12] = {0x00}, lock[12] = {0x1E, 0, 0, 0, 1}, unlock[12] = {0x1E};
	uint8_t eject[12] = {0x1B, 0, 0, 0, 2}, load[12] = {0x1B, 0, 0, 0, 3};

	assert_int_equal(packet(r, tur, b, sizeof(b), &n, 0, false), 0x50);
	assert_int_equal(packet(r, lock, b, sizeof(b), &n, 0, false), 0x50);
	expect_sense(r, packet(r, eject, b, sizeof(b), &n, 0, false), 5, 0x53);
	packet(r, unlock, b, sizeof(b), &n, 0, false);
	assert_int_equal(packet(r, eject, b, sizeof(b), &n, 0, false), 0x50);
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 2, 0x3A);
	uint8_t cap[12] = {0x25};
	expect_sense(r, packet(r, cap, b, sizeof(b), &n, 0, false), 2, 0x3A);
	/* The removal shows up once in the media events. */
	uint8_t ev[12] = {0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8};
	packet(r, ev, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(b[4], 3);
	assert_int_equal(b[5], 1); /* tray open, no medium */
	packet(r, ev, b, sizeof(b), &n, 0xFFFE, false);
	assert_int_equal(b[4], 0);
	assert_int_equal(packet(r, load, b, sizeof(b), &n, 0, false), 0x50);
	assert_int_equal(packet(r, tur, b, sizeof(b), &n, 0, false), 0x50);
	rig_free(r);
}

/* ---- Through storage_create: the I/O thread runs the completions. ---- */

static void wait_not_busy(struct rig *r)
{
	/* Bounded by iterations of a state poll, not by a time budget of the test. */
	for (int i = 0; i < 200000; i++) {
		if (!(rig_in(r, S + 0x206, 1) & ATA_STAT_BSY))
			return;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	fail_msg("device stayed busy");
}

/* The VM's glue (vmm/vm_devices.c) in small: verbs go to this test's control server. */
static int add_verb(void *control, const char *verb, const char *usage, device_verb_fn fn,
		    void *opaque)
{
	return control_register_verb(control, verb, usage, fn, opaque);
}

static void test_media_change(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	struct storage *st;
	uint8_t b[4096];
	size_t n;

	assert_non_null(r);
	assert_int_equal(io_bus_init(&r->pio), 0);
	assert_int_equal(io_bus_init(&r->mmio), 0);
	struct pci_bus_ops ops = {.set_irq = rig_set_irq, .opaque = r};
	assert_int_equal(pci_bus_create(&r->pio, &r->mmio, &ops, &r->pci), 0);
	assert_int_equal(guest_memory_create(&r->mem, 16 * 1024 * 1024), 0);
	struct disk_config cfg;
	assert_int_equal(disk_config_parse(iso_path, DISK_MEDIA_CDROM, &cfg), 0);
	assert_int_equal(cfg.bus, DISK_BUS_IDE);
	struct storage_env env = {
	    .pci = r->pci, .pio = &r->pio, .mem = &r->mem, .set_irq = rig_set_irq, .irq_opaque = r};
	assert_int_equal(storage_create(&env, &cfg, 1, &st), 0);
	drain = wait_not_busy;

	uint8_t rd[12] = {0x28, 0, 0, 0, 0, 16, 0, 0, 1};
	assert_int_equal(packet(r, rd, b, sizeof(b), &n, 2048, false), 0x50);
	assert_memory_equal(b + 40, "TESTCD", 6);

	/* The guest locks the tray: a plain eject is refused, a forced one works. */
	uint8_t lock[12] = {0x1E, 0, 0, 0, 1};
	packet(r, lock, b, sizeof(b), &n, 0, false);
	error_clear();
	assert_int_equal(storage_change_medium(st, 0, NULL, false), -EPERM);
	assert_non_null(strstr(error_msg(), "the guest locked the tray"));
	assert_non_null(strstr(error_msg(), "locked"));
	assert_int_equal(storage_change_medium(st, 1, NULL, false), -ENODEV);
	assert_int_equal(storage_change_medium(st, 0, NULL, true), 0);
	/* UNIT ATTENTION first, then NOT READY / MEDIUM NOT PRESENT. */
	uint8_t tur[12] = {0};
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 6, 0x28);
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 2, 0x3A);
	/* A missing ISO leaves the drive as it was. */
	assert_true(storage_change_medium(st, 0, "/nonexistent.iso", false) < 0);
	assert_non_null(strstr(error_msg(), "nonexistent"));
	assert_int_equal(storage_change_medium(st, 0, iso2_path, false), 0);
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 6, 0x28);
	assert_int_equal(packet(r, rd, b, sizeof(b), &n, 2048, false), 0x50);
	assert_memory_equal(b + 40, "OTHER", 5);

	/* The same through the control socket verbs, as `minivmm control NAME cdrom-...` sends. */
	struct control_server *srv;
	char name[64];
	struct json_object *reply;
	snprintf(name, sizeof(name), "ide-test-%d", (int)getpid());
	assert_int_equal(control_server_start(name, &srv), 0);
	struct device_env denv = {.add_verb = add_verb, .control = srv};
	assert_int_equal(storage_register_verbs(st, &denv), 0);
	char *ej_bad[] = {(char *)"7"}, *ej_junk[] = {(char *)"x1"};
	assert_int_equal(control_call(name, "cdrom-eject", 1, ej_bad, 5000, &reply), -EREMOTEIO);
	assert_non_null(strstr(error_msg(), "no CD-ROM drive 7"));
	assert_int_equal(control_call(name, "cdrom-eject", 1, ej_junk, 5000, &reply), -EREMOTEIO);
	assert_non_null(strstr(error_msg(), "bad drive number"));
	assert_int_equal(control_call(name, "cdrom-insert", 0, NULL, 5000, &reply), -EREMOTEIO);
	assert_non_null(strstr(error_msg(), "usage"));
	assert_int_equal(control_call(name, "cdrom-eject", 0, NULL, 5000, &reply), 0);
	json_object_put(reply);
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 6, 0x28);
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 2, 0x3A);
	char *ins[] = {iso_path, (char *)"0"};
	assert_int_equal(control_call(name, "cdrom-insert", 2, ins, 5000, &reply), 0);
	struct json_object *v;
	assert_true(json_object_object_get_ex(reply, "result", &v));
	assert_true(json_object_object_get_ex(v, "medium", &v));
	assert_string_equal(json_object_get_string(v), iso_path);
	json_object_put(reply);
	expect_sense(r, packet(r, tur, b, sizeof(b), &n, 0, false), 6, 0x28);
	assert_int_equal(packet(r, rd, b, sizeof(b), &n, 2048, false), 0x50);
	assert_memory_equal(b + 40, "TESTCD", 6);
	control_server_stop(srv);

	storage_destroy(st);
	disk_config_free(&cfg);
	pci_bus_destroy(r->pci);
	guest_memory_destroy(&r->mem);
	io_bus_destroy(&r->mmio);
	io_bus_destroy(&r->pio);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signature_identify), cmocka_unit_test(test_inquiry_capacity_read),
	    cmocka_unit_test(test_toc_mode_config),    cmocka_unit_test(test_tray),
	    cmocka_unit_test(test_media_change),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
