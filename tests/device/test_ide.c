/* Device tests of the PIIX IDE controller through its ports, PCI config space and guest memory (no
 * CPU): identify, PIO 28/48-bit, bus-master DMA, interrupts and nIEN, soft reset (signatures, reset
 * during DMA), absent devices, and hostile PRD tables (beyond RAM, zero-length entries, no end,
 * shorter than the transfer: nothing written). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/ide_rig.h"
#include "lib/error.h"

#define P 0x1F0 /* primary command block */
#define PCTL 0x3F6
#define S 0x170
#define DISK_SIZE (8 * 1024 * 1024)

static char disk_arg[600], ro_arg[600];

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("test-ata") < 0 ||
	    fake_make_raw(test_path("d.raw"), DISK_SIZE, true) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return test_tmpdir_teardown(NULL);
}

static struct rig *rig_disk(const char *opts)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", test_path("d.raw"), test_path("t.raw"));
	assert_int_equal(system(cmd), 0);
	snprintf(disk_arg, sizeof(disk_arg), "%s%s", test_path("t.raw"), opts);
	const char *args[4] = {disk_arg, NULL, NULL, NULL};
	const bool cd[4] = {false};
	struct rig *r = rig_new(args, cd);
	assert_non_null(r);
	return r;
}

static void test_pci_identity(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");
	unsigned devfn = r->ide->pci.slot << 3;
	assert_int_equal(pci_config_read(r->pci, devfn, 0, 4), 0x71118086);
	assert_int_equal(pci_config_read(r->pci, devfn, 0x08, 4) >> 8, 0x010180);
	/* ata_piix only probes a channel whose IDETIM decode-enable bit is set. */
	assert_int_equal(pci_config_read(r->pci, devfn, 0x40, 4), 0x80008000);
	pci_config_write(r->pci, devfn, 0x48, 1, 0x05); /* UDMA control: the guest's to set */
	assert_int_equal(pci_config_read(r->pci, devfn, 0x48, 1), 0x05);
	assert_true(r->bm_base >= 0x1000);
	assert_int_equal(pci_config_read(r->pci, devfn, 0x20, 4) & 1, 1); /* I/O BAR */
	rig_free(r);
}

static void read_words(struct rig *r, uint16_t base, uint16_t *w, int n, bool dword)
{
	for (int i = 0; i < n; i += dword ? 2 : 1) {
		uint32_t v = rig_in(r, base, dword ? 4 : 2);
		w[i] = (uint16_t)v;
		if (dword)
			w[i + 1] = (uint16_t)(v >> 16);
	}
}

static void test_identify_ports(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");
	uint16_t id[256];

	rig_out(r, P + 6, 0xA0, 1);
	rig_out(r, P + 7, 0xEC, 1);
	assert_true(r->irq[14]);
	assert_int_equal(rig_in(r, PCTL, 1), 0x58); /* alternate status: DRDY DSC DRQ */
	assert_true(r->irq[14]);		    /* ... which does not acknowledge */
	assert_int_equal(rig_in(r, P + 7, 1), 0x58);
	assert_false(r->irq[14]); /* reading STATUS does */
	read_words(r, P, id, 256, false);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	assert_int_equal(id[60] | id[61] << 16, DISK_SIZE / 512);
	assert_int_equal(id[0], 0x0040);
	/* The same with 32-bit data port reads. */
	uint16_t id2[256];
	rig_out(r, P + 7, 0xEC, 1);
	read_words(r, P, id2, 256, true);
	assert_memory_equal(id, id2, sizeof(id));
	/* No data phase: the data port floats. */
	assert_int_equal(rig_in(r, P, 2), 0xFFFF);

	/* The absent slave reads 0 (ata_piix: no device); commands to it do nothing. */
	rig_out(r, P + 6, 0xB0, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0);
	assert_int_equal(rig_in(r, P + 2, 1), 0);
	rig_out(r, P + 7, 0xEC, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0);
	/* The secondary channel has no drive at all: the bus floats high. */
	assert_int_equal(rig_in(r, S + 7, 1), 0xFF);
	assert_int_equal(rig_in(r, 0x376, 1), 0xFF);
	/* ata_devchk: count/LBA low written and read back on the master. */
	rig_out(r, P + 6, 0xA0, 1);
	rig_out(r, P + 2, 0x55, 1);
	rig_out(r, P + 3, 0xAA, 1);
	assert_int_equal(rig_in(r, P + 2, 1), 0x55);
	assert_int_equal(rig_in(r, P + 3, 1), 0xAA);
	rig_free(r);
}

static void test_pio_ports(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");
	uint8_t data[2048], buf[2048];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 3 + 7);

	/* WRITE SECTORS EXT (48-bit), 4 sectors at 1000, 16-bit port writes. */
	rig_tf(r, P, 0, 1000, 4, true);
	rig_out(r, P + 7, 0x34, 1);
	for (int s = 0; s < 4; s++) {
		rig_drain(r);
		assert_int_equal(rig_in(r, P + 7, 1) & 0x89, 0x08); /* DRQ, not BSY/ERR */
		for (int i = 0; i < 512; i += 2)
			rig_out(r, P, data[s * 512 + i] | data[s * 512 + i + 1] << 8, 2);
	}
	rig_drain(r);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	assert_int_equal(block_pread(r->disks[0]->bs, 1000 * 512, buf, 2048), 0);
	assert_memory_equal(buf, data, 2048);

	/* READ SECTORS (28-bit) with 32-bit port reads. */
	rig_tf(r, P, 0, 1000, 4, false);
	rig_out(r, P + 7, 0x20, 1);
	for (int s = 0; s < 4; s++) {
		rig_drain(r);
		assert_int_equal(rig_in(r, P + 7, 1), 0x58);
		for (int i = 0; i < 512; i += 4) {
			uint32_t v = rig_in(r, P, 4);
			memcpy(buf + s * 512 + i, &v, 4);
		}
	}
	assert_memory_equal(buf, data, 2048);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);

	/* Past the end: ERR with IDNF. */
	rig_tf(r, P, 0, DISK_SIZE / 512, 1, false);
	rig_out(r, P + 7, 0x20, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	assert_true(rig_in(r, P + 1, 1) & ATA_ERR_IDNF);
	/* PACKET to a disk: ABRT (CVE-2015-6855). */
	rig_out(r, P + 7, 0xA0, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	assert_int_equal(rig_in(r, P + 1, 1), ATA_ERR_ABRT);
	rig_free(r);
}

/* READ or WRITE DMA through BAR4 as Linux does it: table, direction, command, then start. */
static uint8_t dma_cmd(struct rig *r, uint8_t cmd, uint64_t lba, uint32_t count, bool lba48,
		       uint32_t table, bool to_memory)
{
	rig_out(r, r->bm_base + 4, table, 4);
	rig_out(r, r->bm_base + 2, BM_STATUS_ERROR | BM_STATUS_INTR, 1); /* clear */
	rig_out(r, r->bm_base, to_memory ? BM_CMD_TO_MEMORY : 0, 1);
	rig_tf(r, P, 0, lba, count, lba48);
	rig_out(r, P + 7, cmd, 1);
	rig_out(r, r->bm_base, (to_memory ? BM_CMD_TO_MEMORY : 0) | BM_CMD_START, 1);
	rig_drain(r);
	uint8_t bm = (uint8_t)rig_in(r, r->bm_base + 2, 1);
	rig_out(r, r->bm_base, 0, 1); /* stop */
	return bm;
}

static void test_bmdma(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");
	uint8_t buf[8192];

	/* READ DMA of 16 sectors into three segments, one ending the table. */
	rig_prd(r, 0x1000, 0, 0x10000, 1024, false);
	rig_prd(r, 0x1000, 1, 0x20000, 4096, false);
	rig_prd(r, 0x1000, 2, 0x30000, 3072, true);
	int edges = r->irq_edges[14];
	uint8_t bm = dma_cmd(r, 0xC8, 64, 16, false, 0x1000, true);
	assert_true(bm & BM_STATUS_INTR);
	assert_false(bm & (BM_STATUS_ERROR | BM_STATUS_ACTIVE));
	assert_int_equal(r->irq_edges[14], edges + 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	guest_memory_read(&r->mem, 0x10000, buf, 1024);
	guest_memory_read(&r->mem, 0x20000, buf + 1024, 4096);
	guest_memory_read(&r->mem, 0x30000, buf + 5120, 3072);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(buf[i], fake_pattern(64 * 512 + i));

	/* WRITE DMA EXT from one segment, checked through the block layer. */
	for (int i = 0; i < 4096; i++)
		buf[i] = (uint8_t)(i ^ 0x3C);
	guest_memory_write(&r->mem, 0x40000, buf, 4096);
	rig_prd(r, 0x1000, 0, 0x40000, 4096, true);
	bm = dma_cmd(r, 0x35, 5000, 8, true, 0x1000, false);
	assert_true(bm & BM_STATUS_INTR);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	uint8_t back[4096];
	assert_int_equal(block_pread(r->disks[0]->bs, 5000 * 512, back, 4096), 0);
	assert_memory_equal(back, buf, 4096);

	/* A zero byte count means 64 KiB: one entry carries a 128-sector read. */
	rig_prd(r, 0x1000, 0, 0x100000, 0, true);
	bm = dma_cmd(r, 0xC8, 0, 128, false, 0x1000, true);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	uint8_t last;
	guest_memory_read(&r->mem, 0x100000 + 65535, &last, 1);
	assert_int_equal(last, fake_pattern(65535));

	/* FLUSH CACHE EXT through the ports. */
	rig_out(r, P + 7, 0xEA, 1);
	rig_drain(r);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	rig_free(r);
}

static void test_bad_prd(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");

	/* The table itself beyond RAM (16 MiB here): the command fails, BM error set. */
	uint8_t bm = dma_cmd(r, 0xC8, 0, 8, false, 0xFFFFFFF0, true);
	assert_true(bm & BM_STATUS_ERROR);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	/* A segment straddling the end of RAM. */
	rig_prd(r, 0x1000, 0, 16 * 1024 * 1024 - 512, 4096, true);
	bm = dma_cmd(r, 0xC8, 0, 8, false, 0x1000, true);
	assert_true(bm & BM_STATUS_ERROR);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	/* A table shorter than the transfer: ABRT, no hang. */
	rig_prd(r, 0x1000, 0, 0x10000, 512, true);
	bm = dma_cmd(r, 0xC8, 0, 8, false, 0x1000, true);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	assert_int_equal(rig_in(r, P + 1, 1), ATA_ERR_ABRT);
	/* No end-of-table bit anywhere: 64 KiB of 2-byte entries then more memory; the walk stops
	 * at IDE_PRD_MAX_ENTRIES instead of looping (CVE-2014-9718). 65535 sectors would need
	 * 16M entries. */
	for (int i = 0; i < IDE_PRD_MAX_ENTRIES + 16; i++)
		rig_prd(r, 0x200000, i, 0x10000, 2, false);
	rig_tf(r, P, 0, 0, 0, true);
	bm = dma_cmd(r, 0x25, 0, 1000, true, 0x200000, true);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	assert_true(bm & BM_STATUS_ERROR);
	/* The controller still works afterwards. */
	rig_prd(r, 0x1000, 0, 0x10000, 512, true);
	bm = dma_cmd(r, 0xC8, 3, 1, false, 0x1000, true);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	rig_free(r);
}

/* A WRITE DMA whose PRD table maps fewer bytes than its sectors (2 KiB for 8 sectors; 4 bytes
 * for 1, all a header's magic needs): ABRT before anything is written, the sectors unchanged. A
 * short READ DMA leaves guest memory alone. */
static void test_short_prd_write(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");
	const struct {
		uint64_t lba;
		uint32_t count, bytes;
	} c[] = {{10, 8, 2048}, {0, 1, 4}, {20, 8, 4094}};
	uint8_t buf[4096], back[4096];
	memset(buf, 0x5A, sizeof(buf));
	guest_memory_write(&r->mem, 0x40000, buf, sizeof(buf));
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		rig_prd(r, 0x1000, 0, 0x40000, c[i].bytes, true);
		dma_cmd(r, 0xCA, c[i].lba, c[i].count, false, 0x1000, false);
		assert_int_equal(rig_in(r, P + 7, 1), 0x41);
		assert_int_equal(rig_in(r, P + 1, 1), ATA_ERR_ABRT);
		size_t n = c[i].count * 512;
		assert_int_equal(block_pread(r->disks[0]->bs, c[i].lba * 512, back, n), 0);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(back[k], fake_pattern(c[i].lba * 512 + k));
	}
	/* READ DMA of 8 sectors into a 2 KiB table: ABRT, nothing copied. */
	memset(buf, 0xEE, sizeof(buf));
	guest_memory_write(&r->mem, 0x50000, buf, sizeof(buf));
	rig_prd(r, 0x1000, 0, 0x50000, 2048, true);
	dma_cmd(r, 0xC8, 10, 8, false, 0x1000, true);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	guest_memory_read(&r->mem, 0x50000, back, sizeof(back));
	for (size_t k = 0; k < sizeof(back); k++)
		assert_int_equal(back[k], 0xEE);
	/* The same write with a whole table goes through. */
	rig_prd(r, 0x1000, 0, 0x40000, 4096, true);
	dma_cmd(r, 0xCA, 10, 8, false, 0x1000, false);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	rig_free(r);
}

static void test_reset_and_nien(void **state)
{
	(void)state;
	struct rig *r = rig_disk("");

	/* nIEN masks the line; the interrupt is still recorded in the BM status. */
	rig_out(r, PCTL, ATA_CTL_NIEN, 1);
	rig_out(r, P + 6, 0xA0, 1);
	rig_out(r, P + 7, 0xE5, 1); /* CHECK POWER MODE */
	assert_false(r->irq[14]);
	assert_int_equal(rig_in(r, P + 2, 1), 0xFF);
	assert_true(rig_in(r, r->bm_base + 2, 1) & BM_STATUS_INTR);
	/* Unmasking with INTRQ still pending raises the line. */
	rig_out(r, PCTL, 0, 1);
	assert_true(r->irq[14]);
	rig_in(r, P + 7, 1);
	assert_false(r->irq[14]);

	/* SRST while a DMA write is in flight: BSY during reset, signature after, and the stale
	 * completion changes nothing. */
	rig_prd(r, 0x1000, 0, 0x10000, 0, true);
	rig_out(r, r->bm_base + 4, 0x1000, 4);
	rig_tf(r, P, 0, 0, 128, false);
	rig_out(r, P + 7, 0xCA, 1);
	rig_out(r, r->bm_base, BM_CMD_START, 1);
	assert_int_equal(r->ide->ch[0].dev[0].phase, ATA_PHASE_DMA);
	rig_out(r, PCTL, ATA_CTL_SRST, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x80);
	assert_int_equal(rig_in(r, r->bm_base, 1), 0); /* engine stopped */
	rig_out(r, PCTL, 0, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	assert_int_equal(rig_in(r, P + 2, 1), 1);
	assert_int_equal(rig_in(r, P + 3, 1), 1);
	assert_int_equal(rig_in(r, P + 4, 1), 0);
	assert_int_equal(rig_in(r, P + 5, 1), 0);
	assert_int_equal(rig_in(r, P + 1, 1), 1); /* diagnostic code: passed */
	int edges = r->irq_edges[14];
	rig_drain(r);
	assert_int_equal(r->irq_edges[14], edges);
	assert_int_equal(rig_in(r, P + 7, 1), 0x50);
	rig_out(r, P + 7, 0xEC, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x58);
	rig_free(r);
}

static void test_readonly_ports(void **state)
{
	(void)state;
	struct rig *r = rig_disk(",readonly");
	rig_tf(r, P, 0, 0, 1, false);
	rig_out(r, P + 7, 0x30, 1);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	assert_int_equal(rig_in(r, P + 1, 1), ATA_ERR_ABRT);
	rig_prd(r, 0x1000, 0, 0x10000, 512, true);
	dma_cmd(r, 0xCA, 0, 1, false, 0x1000, false);
	assert_int_equal(rig_in(r, P + 7, 1), 0x41);
	uint8_t b[512];
	assert_int_equal(block_pread(r->disks[0]->bs, 0, b, 512), 0);
	assert_int_equal(b[5], fake_pattern(5)); /* unchanged */
	rig_free(r);
}

static void test_positions(void **state)
{
	(void)state;
	struct disk_config c[6];
	int pos[4];
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 6; i++) {
		c[i].bus = DISK_BUS_IDE;
		c[i].path = (char *)"x";
	}
	/* disk, cdrom, disk, disk: PM, SM(cd), PS, SS. */
	c[1].media = DISK_MEDIA_CDROM;
	assert_int_equal(ide_assign_positions(c, 4, pos), 0);
	assert_int_equal(pos[0], 0);
	assert_int_equal(pos[1], 2);
	assert_int_equal(pos[2], 1);
	assert_int_equal(pos[3], 3);
	/* A fifth IDE drive has nowhere to go. */
	assert_int_equal(ide_assign_positions(c, 5, pos), -ENOSPC);
	assert_non_null(strstr(error_msg(), "no free IDE position"));
	/* Other buses are not IDE's business. */
	c[4].bus = DISK_BUS_SATA;
	assert_int_equal(ide_assign_positions(c, 5, pos), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pci_identity),   cmocka_unit_test(test_identify_ports),
	    cmocka_unit_test(test_pio_ports),	   cmocka_unit_test(test_bmdma),
	    cmocka_unit_test(test_bad_prd),	   cmocka_unit_test(test_short_prd_write),
	    cmocka_unit_test(test_reset_and_nien), cmocka_unit_test(test_readonly_ports),
	    cmocka_unit_test(test_positions),
	};
	(void)ro_arg;
	return cmocka_run_group_tests(tests, setup, teardown);
}
