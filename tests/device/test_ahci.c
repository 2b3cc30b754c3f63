/* AHCI controller driven through its registers and guest memory, as Linux's ahci driver does:
 * PCI identity, HBA reset, port start and signature, IDENTIFY through a command list, DMA read and
 * write, 32 NCQ commands in flight, FLUSH, TRIM, ATAPI INQUIRY and READ(10), MSI and INTx. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/ahci_fixture.h"

static int setup_disk(void **state)
{
	return fix_state_new(state, 6, NULL, false);
}

static int teardown(void **state)
{
	return fix_state_free(state);
}

static void test_pci_identity(void **state)
{
	struct fix *f = *state;
	assert_int_equal(pci_config_read(f->bus, f->devfn, PCI_VENDOR_ID, 2), 0x8086);
	assert_int_equal(pci_config_read(f->bus, f->devfn, PCI_DEVICE_ID, 2), 0x2922);
	assert_int_equal(pci_config_read(f->bus, f->devfn, PCI_REVISION, 4) >> 8, 0x010601);
	assert_true(f->abar != 0);
	uint32_t cap = fix_r(f, AHCI_CAP);
	assert_true(cap & AHCI_CAP_S64A);
	assert_true(cap & AHCI_CAP_SNCQ);
	assert_true(cap & AHCI_CAP_SCLO);
	assert_int_equal((cap >> 8) & 0x1F, 31); /* 32 slots */
	assert_int_equal(cap & 0x1F, 5);	 /* 6 ports */
	assert_int_equal((cap >> 20) & 0xF, 3);
	assert_false(cap & (1u << 27)); /* no staggered spin-up */
	assert_int_equal(fix_r(f, AHCI_PI), 0x3F);
	assert_int_equal(fix_r(f, AHCI_VS), 0x00010300);
	assert_true(fix_r(f, AHCI_GHC) & AHCI_GHC_AE);
	/* port 0 has a disk, port 1 nothing */
	assert_int_equal(fix_pr(f, 0, PORT_SSTS), 0x133);
	assert_int_equal(fix_pr(f, 0, PORT_SIG), PORT_SIG_ATA);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	assert_int_equal(fix_pr(f, 1, PORT_SSTS), 0);
	/* beyond the last port: reads 0 */
	assert_int_equal(fix_pr(f, 7, PORT_SIG), 0);
}

static void test_hba_reset(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	assert_true(fix_pr(f, 0, PORT_CMD) & PORT_CMD_CR);
	assert_true(fix_pr(f, 0, PORT_CMD) & PORT_CMD_FR);
	fix_w(f, AHCI_GHC, AHCI_GHC_HR);
	assert_int_equal(fix_r(f, AHCI_GHC), AHCI_GHC_AE); /* HR done, IE cleared */
	uint32_t cmd = fix_pr(f, 0, PORT_CMD);
	assert_false(cmd & (PORT_CMD_ST | PORT_CMD_CR | PORT_CMD_FRE | PORT_CMD_FR));
	assert_int_equal(fix_pr(f, 0, PORT_IE), 0);
	/* PxCLB survives, the link is up again with the signature */
	assert_int_equal(fix_pr(f, 0, PORT_CLB), FIX_CLB);
	assert_int_equal(fix_pr(f, 0, PORT_SIG), PORT_SIG_ATA);
	assert_int_equal(fix_pr(f, 0, PORT_SSTS) & 0xF, 3);
}

static void test_comreset_signature_fis(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	uint8_t *rfis = fix_ram(f, FIX_FB + RFIS_RFIS, 20);
	memset(rfis, 0xAA, 20);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE); /* stop first, as Linux does */
	fix_pw(f, 0, PORT_SCTL, 0x301);
	assert_int_equal(fix_pr(f, 0, PORT_SSTS) & 0xF, 0);
	assert_true(fix_pr(f, 0, PORT_TFD) & 0x80);
	fix_pw(f, 0, PORT_SCTL, 0x300);
	assert_int_equal(fix_pr(f, 0, PORT_SSTS) & 0xF, 3);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x80, 0);
	/* the device's signature D2H FIS landed */
	assert_int_equal(rfis[0], FIS_TYPE_REG_D2H);
	assert_int_equal(rfis[12], 1);
	assert_int_equal(rfis[4], 1);
	assert_int_equal(rfis[5], 0);
	assert_int_equal(rfis[6], 0);
	/* DET=4 takes the PHY offline, DET=0 brings the link back */
	fix_pw(f, 0, PORT_SCTL, 0x304);
	assert_int_equal(fix_pr(f, 0, PORT_SSTS) & 0xF, 4);
	fix_pw(f, 0, PORT_SCTL, 0x300);
	assert_int_equal(fix_pr(f, 0, PORT_SSTS) & 0xF, 3);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
}

static void test_identify(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_port_start(f, 0);
	fix_fis(fis, 0xEC, 0, 0, 0);
	fis[7] = 0;
	struct fix_prd prd = {FIX_DATA, 512};
	memset(fix_ram(f, FIX_DATA, 512), 0, 512);
	fix_cmd(f, 0, 3, fis, NULL, false, &prd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 3), 0);
	uint16_t *id = fix_ram(f, FIX_DATA, 512);
	assert_true(id[83] & (1 << 10));     /* LBA48 */
	assert_int_equal(id[75] & 0x1F, 31); /* queue depth 32 */
	assert_true(id[76] & (1 << 8));	     /* NCQ */
	uint64_t sectors = id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32;
	assert_int_equal(sectors, FIX_DISK_SIZE / 512);
	assert_int_equal(fix_prdbc(f, 0, 3), 512);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0xFF, 0x50);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_DHRS);
	assert_true(fix_r(f, AHCI_IS) & 1);
	/* PIO setup FIS with the device-to-host bit and the end status */
	uint8_t *ps = fix_ram(f, FIX_FB + RFIS_PSFIS, 20);
	assert_int_equal(ps[0], FIS_TYPE_PIO_SETUP);
	assert_true(ps[1] & 0x20);
	assert_int_equal(ps[15], 0x50);
	/* no MSI enabled: INTx carries it, and clearing the causes drops the line */
	assert_true(f->intx);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_w(f, AHCI_IS, 0xFFFFFFFF);
	assert_false(f->intx);
	assert_int_equal(fix_r(f, AHCI_IS), 0);
}

static void dma_rw(struct fix *f, uint8_t cmd, uint64_t lba, unsigned count, uint64_t buf,
		   bool write)
{
	uint8_t fis[20];
	/* split the buffer in 4 KiB + rest to exercise several PRD entries */
	struct fix_prd prd[2] = {{buf, 4096}, {buf + 4096, count * 512 - 4096}};
	fix_fis(fis, cmd, lba, count, 0);
	fix_cmd(f, 0, 0, fis, NULL, write, prd, 2);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0);
	assert_int_equal(fix_prdbc(f, 0, 0), count * 512);
}

static void test_dma_read_write(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	/* READ DMA EXT of sectors 100..131: the image pattern */
	uint8_t *in = fix_ram(f, FIX_DATA, 32 * 512);
	memset(in, 0, 32 * 512);
	dma_rw(f, 0x25, 100, 32, FIX_DATA, false);
	for (unsigned i = 0; i < 32 * 512; i++)
		assert_int_equal(in[i], fix_pattern(100 * 512 + i));
	/* WRITE DMA EXT of a new pattern at 2000, read back, and check the image file */
	uint8_t *out = fix_ram(f, FIX_DATA + 0x100000, 16 * 512);
	for (unsigned i = 0; i < 16 * 512; i++)
		out[i] = (uint8_t)(i ^ 0x5A);
	dma_rw(f, 0x35, 2000, 16, FIX_DATA + 0x100000, true);
	memset(in, 0, 16 * 512);
	dma_rw(f, 0x25, 2000, 16, FIX_DATA, false);
	assert_memory_equal(in, out, 16 * 512);
	uint8_t file[512];
	FILE *fp = fopen(fix_path(f, "disk0.img"), "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 2000 * 512 + 512, SEEK_SET), 0);
	assert_int_equal(fread(file, 1, 512, fp), 512);
	fclose(fp);
	assert_memory_equal(file, out + 512, 512);
}

/* Poll port 0's PxIS until DHRS (the bound only stops a hang), as SeaBIOS does, then check the
 * command ended without error and `in` holds `count` sectors from `lba`. */
static void poll_read_done(struct fix *f, const uint8_t *in, uint64_t lba, unsigned count)
{
	uint32_t is = 0;
	for (long polls = 0; !(is & PORT_IS_DHRS) && polls < 100000000L; polls++)
		is = fix_pr(f, 0, PORT_IS);
	assert_true(is & PORT_IS_DHRS);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0);
	for (unsigned i = 0; i < count * 512; i++)
		assert_int_equal(in[i], fix_pattern(lba * 512 + i));
}

/* A BIOS's polled command (SeaBIOS: PxIE 0, one READ DMA, then PxIS read until DHRS): the
 * completion comes through the polling alone, with nobody running the disk's completions (in the
 * VMM, the event loop's turn is not waited for); the bound only stops a hang. */
static void test_polled_without_event_loop(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	fix_pw(f, 0, PORT_IE, 0);
	uint8_t *in = fix_ram(f, FIX_DATA, 64 * 512);
	memset(in, 0, 64 * 512);
	uint8_t fis[20];
	struct fix_prd prd = {FIX_DATA, 64 * 512};
	fix_fis(fis, 0xC8, 300, 64, 0); /* READ DMA, as SeaBIOS sends below 2^28 */
	fix_cmd(f, 0, 0, fis, NULL, false, &prd, 1);
	fix_pw(f, 0, PORT_CI, 1);
	poll_read_done(f, in, 300, 64);
}

/* The same polled commands while a completion thread runs the disk's completions too (the VMM's
 * event loop): both may reap, one at a time (block_aio_complete_polled stands back), and every
 * command ends once, with its data. */
static void test_polled_with_event_loop(void **state)
{
	struct fix *f = *state;
	fix_port_start(f, 0);
	fix_pw(f, 0, PORT_IE, 0);
	fix_completer_start(f);
	uint8_t *in = fix_ram(f, FIX_DATA, 8 * 512);
	for (unsigned n = 0; n < 2000; n++) {
		uint64_t lba = (n * 37) % 1000;
		memset(in, 0, 8 * 512);
		uint8_t fis[20];
		struct fix_prd prd = {FIX_DATA, 8 * 512};
		fix_fis(fis, 0xC8, lba, 8, 0);
		fix_cmd(f, 0, n % 32, fis, NULL, false, &prd, 1);
		fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
		fix_pw(f, 0, PORT_CI, 1u << (n % 32));
		poll_read_done(f, in, lba, 8);
	}
	fix_completer_stop(f);
}

static void test_ncq_32_in_flight(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_port_start(f, 0);
	/* 32 writes of 8 sectors each, different data, all issued before any completes */
	for (unsigned t = 0; t < 32; t++) {
		uint8_t *buf = fix_ram(f, FIX_DATA + t * 4096, 4096);
		for (unsigned i = 0; i < 4096; i++)
			buf[i] = (uint8_t)(t * 3 + i);
		struct fix_prd prd = {FIX_DATA + t * 4096, 4096};
		fix_ncq_fis(fis, true, t, 4096 + t * 8, 8);
		fix_cmd(f, 0, t, fis, NULL, true, &prd, 1);
	}
	struct block_aio_ctx *aio = f->disk[0]->aio;
	bool uring = block_aio_engine(aio) == BLOCK_AIO_ENGINE_URING;
	unsigned enters = block_aio_kernel_submits(aio);
	fix_pw(f, 0, PORT_SACT, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CI, 0xFFFFFFFF);
	assert_int_equal(fix_pr(f, 0, PORT_CI), 0); /* all accepted */
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0xFFFFFFFF);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 32);
	/* Writes of a raw image go to the worker pool, not the ring
	 * (storage/core/block_aio_uring.c). */
	if (uring)
		assert_int_equal(block_aio_kernel_submits(aio), enters);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_SDBS);
	assert_false(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	uint8_t *sdb = fix_ram(f, FIX_FB + RFIS_SDBFIS, 8);
	assert_int_equal(sdb[0], FIS_TYPE_SDB);
	assert_true(sdb[1] & 0x40);
	/* 32 reads back into a second area, again all in flight at once */
	for (unsigned t = 0; t < 32; t++) {
		memset(fix_ram(f, FIX_DATA + 0x200000 + t * 4096, 4096), 0, 4096);
		struct fix_prd prd = {FIX_DATA + 0x200000 + t * 4096, 4096};
		fix_ncq_fis(fis, false, t, 4096 + t * 8, 8);
		fix_cmd(f, 0, t, fis, NULL, false, &prd, 1);
	}
	enters = block_aio_kernel_submits(aio);
	fix_pw(f, 0, PORT_SACT, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CI, 0xFFFFFFFF);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 32);
	/* One PxCI write: its 32 reads reach the kernel in one submission. */
	if (uring)
		assert_int_equal(block_aio_kernel_submits(aio), enters + 1);
	fix_complete(f, 0);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_memory_equal(fix_ram(f, FIX_DATA + 0x200000, 32 * 4096),
			    fix_ram(f, FIX_DATA, 32 * 4096), 32 * 4096);
	assert_int_equal(fix_prdbc(f, 0, 31), 4096);
}

static void test_ncq_errors(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	struct fix_prd prd = {FIX_DATA, 4096};
	fix_port_start(f, 0);
	/* beyond the end of the disk: IDNF, TFES, the port stops */
	fix_ncq_fis(fis, false, 2, FIX_DISK_SIZE / 512 - 4, 8);
	fix_cmd(f, 0, 2, fis, NULL, false, &prd, 1);
	fix_pw(f, 0, PORT_SACT, 1u << 2);
	fix_pw(f, 0, PORT_CI, 1u << 2);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal((fix_pr(f, 0, PORT_TFD) >> 8) & 0xFF, 0x10);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
	/* restart (ST 1->0->1) clears SACT and lets commands run again */
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE);
	assert_int_equal(fix_pr(f, 0, PORT_SACT), 0);
	assert_false(fix_pr(f, 0, PORT_CMD) & PORT_CMD_CR);
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	/* a tag without its SACT bit is refused */
	fix_ncq_fis(fis, false, 4, 0, 8);
	fix_cmd(f, 0, 4, fis, NULL, false, &prd, 1);
	fix_pw(f, 0, PORT_CI, 1u << 4);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_TFES);
	assert_int_equal(block_aio_pending(f->disk[0]->aio), 0);
}

static void test_flush_and_trim(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	fix_port_start(f, 0);
	fix_fis(fis, 0xEA, 0, 0, 0); /* FLUSH CACHE EXT */
	fix_cmd(f, 0, 1, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 1), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0);
	/* DSM TRIM of sectors 64..127: one 512-byte block of ranges */
	uint8_t *ranges = fix_ram(f, FIX_DATA, 512);
	memset(ranges, 0, 512);
	uint64_t entry = 64 | (uint64_t)64 << 48;
	memcpy(ranges, &entry, 8);
	struct fix_prd prd = {FIX_DATA, 512};
	fix_fis(fis, 0x06, 0, 1, 1);
	fix_cmd(f, 0, 1, fis, NULL, true, &prd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 1), 0);
	assert_int_equal(fix_pr(f, 0, PORT_TFD) & 0x01, 0);
	/* the range now reads as zeroes, its neighbours keep the pattern */
	uint8_t *in = fix_ram(f, FIX_DATA + 0x10000, 66 * 512);
	struct fix_prd rd = {FIX_DATA + 0x10000, 66 * 512};
	fix_fis(fis, 0x25, 63, 66, 0);
	fix_cmd(f, 0, 1, fis, NULL, false, &rd, 1);
	assert_int_equal(fix_issue_wait(f, 0, 1), 0);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(in[i], fix_pattern(63 * 512 + i));
	for (unsigned i = 512; i < 65 * 512; i++)
		assert_int_equal(in[i], 0);
	assert_int_equal(in[65 * 512], fix_pattern(128 * 512));
}

static void test_readonly_refuses_writes(void **state)
{
	(void)state;
	struct fix f;
	uint8_t fis[20];
	assert_int_equal(fix_init(&f, 1), 0);
	assert_int_equal(fix_attach(&f, 0, ",readonly", DISK_MEDIA_HDD), 0);
	fix_port_start(&f, 0);
	struct fix_prd prd = {FIX_DATA, 4096};
	memset(fix_ram(&f, FIX_DATA, 4096), 0xEE, 4096);
	fix_fis(fis, 0x35, 10, 8, 0);
	fix_cmd(&f, 0, 0, fis, NULL, true, &prd, 1);
	fix_issue_wait(&f, 0, 0);
	assert_true(fix_pr(&f, 0, PORT_IS) & PORT_IS_TFES);
	assert_true(fix_pr(&f, 0, PORT_TFD) & 0x01);
	/* NCQ write too */
	fix_pw(&f, 0, PORT_CMD, PORT_CMD_FRE);
	fix_pw(&f, 0, PORT_IS, 0xFFFFFFFF);
	fix_pw(&f, 0, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
	fix_ncq_fis(fis, true, 1, 10, 8);
	fix_cmd(&f, 0, 1, fis, NULL, true, &prd, 1);
	fix_pw(&f, 0, PORT_SACT, 2);
	fix_pw(&f, 0, PORT_CI, 2);
	fix_complete(&f, 0);
	assert_true(fix_pr(&f, 0, PORT_IS) & PORT_IS_TFES);
	FILE *fp = fopen(fix_path(&f, "disk0.img"), "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 10 * 512, SEEK_SET), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(fgetc(fp), fix_pattern(10 * 512 + i));
	fclose(fp);
	fix_fini(&f);
}

static void test_atapi(void **state)
{
	(void)state;
	struct fix f;
	uint8_t fis[20], pkt[16];
	assert_int_equal(fix_init(&f, 2), 0);
	assert_int_equal(fix_attach(&f, 1, NULL, DISK_MEDIA_CDROM), 0);
	assert_int_equal(fix_pr(&f, 1, PORT_SIG), PORT_SIG_ATAPI);
	fix_port_start(&f, 1);
	/* INQUIRY by PIO */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x12;
	pkt[4] = 36;
	fix_fis(fis, 0xA0, 36 << 8, 0, 0); /* byte count limit in LBA mid/high */
	fis[7] = 0;
	struct fix_prd prd = {FIX_DATA, 36};
	uint8_t *buf = fix_ram(&f, FIX_DATA, 4096);
	memset(buf, 0, 4096);
	fix_cmd(&f, 1, 0, fis, pkt, false, &prd, 1);
	assert_int_equal(fix_issue_wait(&f, 1, 0), 0);
	assert_int_equal(fix_pr(&f, 1, PORT_TFD) & 0x01, 0);
	assert_int_equal(buf[0] & 0x1F, 5); /* CD/DVD device */
	assert_true(buf[1] & 0x80);	    /* removable */
	/* READ(10) of 2 blocks at LBA 3 by DMA */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x28;
	pkt[5] = 3;
	pkt[8] = 2;
	fix_fis(fis, 0xA0, 0, 0, 1);
	fis[7] = 0;
	struct fix_prd rd = {FIX_DATA, 4096};
	fix_cmd(&f, 1, 0, fis, pkt, false, &rd, 1);
	assert_int_equal(fix_issue_wait(&f, 1, 0), 0);
	assert_int_equal(fix_pr(&f, 1, PORT_TFD) & 0x01, 0);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(buf[i], fix_pattern(3 * 2048 + i));
	assert_int_equal(fix_prdbc(&f, 1, 0), 4096);
	/* NCQ on a CD-ROM is refused */
	fix_ncq_fis(fis, false, 5, 0, 1);
	fix_cmd(&f, 1, 5, fis, NULL, false, &rd, 1);
	fix_pw(&f, 1, PORT_SACT, 1u << 5);
	fix_pw(&f, 1, PORT_CI, 1u << 5);
	assert_true(fix_pr(&f, 1, PORT_IS) & PORT_IS_TFES);
	fix_fini(&f);
}

static void test_msi(void **state)
{
	struct fix *f = *state;
	uint8_t fis[20];
	/* find the MSI capability and enable it with an address and data */
	unsigned cap = pci_config_read(f->bus, f->devfn, PCI_CAP_PTR, 1);
	for (int i = 0; cap && i < 16; i++) {
		if (pci_config_read(f->bus, f->devfn, cap, 1) == PCI_CAP_ID_MSI)
			break;
		cap = pci_config_read(f->bus, f->devfn, cap + 1, 1);
	}
	assert_true(cap != 0);
	pci_config_write(f->bus, f->devfn, cap + 4, 4, 0xFEE00000);
	pci_config_write(f->bus, f->devfn, cap + 8, 4, 0);
	pci_config_write(f->bus, f->devfn, cap + 12, 2, 0x41);
	pci_config_write(f->bus, f->devfn, cap + 2, 2, 1);
	fix_port_start(f, 0);
	int before = f->msi_count;
	fix_fis(fis, 0xE7, 0, 0, 0); /* FLUSH CACHE */
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_int_equal(f->msi_count, before + 1);
	assert_false(f->intx);
	/* with GHC.IE clear nothing is sent */
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_w(f, AHCI_IS, 0xFFFFFFFF);
	fix_w(f, AHCI_GHC, AHCI_GHC_AE);
	before = f->msi_count;
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_int_equal(f->msi_count, before);
	assert_true(fix_r(f, AHCI_IS) & 1); /* the cause is still recorded */
	/* enabling interrupts with a cause pending sends it */
	fix_w(f, AHCI_GHC, AHCI_GHC_AE | AHCI_GHC_IE);
	assert_int_equal(f->msi_count, before + 1);
	/* a cause the port does not enable (PxIE) is recorded in PxIS only */
	fix_pw(f, 0, PORT_IS, 0xFFFFFFFF);
	fix_w(f, AHCI_IS, 0xFFFFFFFF);
	fix_pw(f, 0, PORT_IE, PORT_IS_SDBS);
	before = f->msi_count;
	fix_cmd(f, 0, 0, fis, NULL, false, NULL, 0);
	assert_int_equal(fix_issue_wait(f, 0, 0), 0);
	assert_true(fix_pr(f, 0, PORT_IS) & PORT_IS_DHRS);
	assert_int_equal(fix_r(f, AHCI_IS), 0);
	assert_int_equal(f->msi_count, before);
	/* MSI off again: the same cause, once enabled, raises INTx */
	pci_config_write(f->bus, f->devfn, cap + 2, 2, 0);
	fix_pw(f, 0, PORT_IE, PORT_IS_VALID);
	assert_true(f->intx);
	assert_int_equal(f->msi_count, before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pci_identity, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_hba_reset, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_comreset_signature_fis, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_identify, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_dma_read_write, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_ncq_32_in_flight, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_ncq_errors, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_and_trim, setup_disk, teardown),
	    cmocka_unit_test(test_readonly_refuses_writes),
	    cmocka_unit_test(test_atapi),
	    cmocka_unit_test_setup_teardown(test_polled_without_event_loop, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_polled_with_event_loop, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(test_msi, setup_disk, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
