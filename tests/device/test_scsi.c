/* The SCSI target layer without a transport: CDBs run against real disk images (raw files), data
 * buffers in a guest RAM buffer through the scatter-gather walker, block completions run by the
 * test thread.  Covers INQUIRY and its VPD pages, READ CAPACITY, reads and writes of every size,
 * FUA, MODE SENSE/SELECT (caching page, D_SENSE), UNMAP, WRITE SAME, REPORT LUNS, REQUEST SENSE,
 * START STOP UNIT, a read-only unit, a CD-ROM's MMC commands, and hostile CDBs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "devices/scsi/scsi.h"
#include "memory/guest_memory.h"
#include "storage/core/block_aio.h"
#include "lib/endian.h"
#include "tests/lib/testdisk.h"

#define RAM (4 << 20)
#define BUF 0x10000ull
#define DISK_SIZE (4 << 20)

struct rig {
	char dir[64], path[128];
	struct guest_memory mem;
	struct disk *disk;
	struct scsi_lun lun;
	struct iovec sg_iov[64], io_iov[64];
	struct sg_list sg;
	struct scsi_req req;
	int resumed;
	uint8_t *ram;
};

static void io_callback(struct scsi_req *req, int ret)
{
	struct rig *r = req->opaque;
	if (scsi_req_resume(req, ret))
		r->resumed++;
}

static struct rig *rig_new(const char *opts, enum disk_media media)
{
	struct rig *r = calloc(1, sizeof(*r));
	char arg[256];
	snprintf(r->dir, sizeof(r->dir), "/var/tmp/minivmm-test-scsi-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/disk.img", r->dir);
	FILE *fp = fopen(r->path, "w");
	for (unsigned i = 0; i < DISK_SIZE; i++)
		fputc((int)(i * 7 + i / 512) & 0xFF, fp);
	fclose(fp);
	assert_int_equal(guest_memory_create(&r->mem, RAM), 0);
	r->ram = guest_memory_ptr(&r->mem, 0, RAM);
	snprintf(arg, sizeof(arg), "%s%s", r->path, opts ? opts : "");
	r->disk = test_disk_open(arg, media);
	assert_non_null(r->disk);
	scsi_lun_init(&r->lun, r->disk, media == DISK_MEDIA_CDROM);
	return r;
}

static void rig_free(struct rig *r)
{
	disk_close(r->disk);
	guest_memory_destroy(&r->mem);
	unlink(r->path);
	rmdir(r->dir);
	free(r);
}

/* Run cdb with a data buffer of `len` bytes at BUF (dir given); waits for the block layer. */
static struct scsi_req *run(struct rig *r, const uint8_t *cdb, unsigned cdb_len, enum scsi_dir dir,
			    uint64_t len)
{
	struct scsi_req *q = &r->req;
	memset(q, 0, sizeof(*q));
	memcpy(q->cdb, cdb, cdb_len);
	q->cdb_len = cdb_len;
	sg_list_init(&r->sg, &r->mem, r->sg_iov, 64, 1 << 20);
	if (len)
		assert_int_equal(sg_list_add(&r->sg, BUF, len), 0);
	q->data = &r->sg;
	q->dir = dir;
	q->io_callback = io_callback;
	q->opaque = r;
	q->iov = r->io_iov;
	q->iov_max = 64;
	r->resumed = 0;
	if (!scsi_req_start(&r->lun, q)) {
		for (int i = 0; i < 1000 && !r->resumed; i++)
			block_aio_poll(r->disk->aio, 1000);
		assert_int_equal(r->resumed, 1);
	}
	return q;
}

static void check_sense(struct scsi_req *q, uint8_t key, uint16_t asc)
{
	assert_int_equal(q->status, SCSI_STATUS_CHECK_CONDITION);
	if (q->sense[0] == 0x72) {
		assert_int_equal(q->sense[1], key);
		assert_int_equal(q->sense[2] << 8 | q->sense[3], asc);
	} else {
		assert_int_equal(q->sense[0], 0x70);
		assert_int_equal(q->sense[2], key);
		assert_int_equal(q->sense[12] << 8 | q->sense[13], asc);
	}
}

static void test_inquiry(void **state)
{
	(void)state;
	struct rig *r = rig_new(",format=raw", DISK_MEDIA_HDD);
	uint8_t std[6] = {0x12, 0, 0, 0, 96, 0};
	struct scsi_req *q = run(r, std, 6, SCSI_DIR_FROM_DEVICE, 96);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	assert_int_equal(q->xfer, 36);
	assert_int_equal(r->ram[BUF], 0x00);
	assert_memory_equal(r->ram + BUF + 8, "MINIVMM ", 8);
	/* Allocation length shorter than the data: cut. */
	uint8_t small[6] = {0x12, 0, 0, 0, 5, 0};
	q = run(r, small, 6, SCSI_DIR_FROM_DEVICE, 96);
	assert_int_equal(q->xfer, 5);
	/* VPD 00 lists the pages; each of them answers. */
	uint8_t vpd[6] = {0x12, 1, 0, 0, 255, 0};
	q = run(r, vpd, 6, SCSI_DIR_FROM_DEVICE, 255);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	uint8_t pages[16];
	unsigned n = r->ram[BUF + 3];
	assert_int_equal(n, 6);
	memcpy(pages, r->ram + BUF + 4, n);
	for (unsigned i = 0; i < n; i++) {
		vpd[2] = pages[i];
		q = run(r, vpd, 6, SCSI_DIR_FROM_DEVICE, 255);
		assert_int_equal(q->status, SCSI_STATUS_GOOD);
		assert_int_equal(r->ram[BUF + 1], pages[i]);
	}
	vpd[2] = 0xB0; /* block limits: UNMAP allowed, one descriptor */
	run(r, vpd, 6, SCSI_DIR_FROM_DEVICE, 255);
	assert_true(get_be32(r->ram + BUF + 20) > 0);
	assert_int_equal(get_be32(r->ram + BUF + 24), 1);
	vpd[2] = 0xB2;
	run(r, vpd, 6, SCSI_DIR_FROM_DEVICE, 255);
	assert_int_equal(r->ram[BUF + 5] & 0x80, 0x80); /* LBPU */
	vpd[2] = 0x83;
	run(r, vpd, 6, SCSI_DIR_FROM_DEVICE, 255);
	assert_true(get_be16(r->ram + BUF + 2) >= 20);
	/* A page that does not exist, EVPD clear with a page code, reserved bits. */
	vpd[2] = 0x99;
	check_sense(run(r, vpd, 6, SCSI_DIR_FROM_DEVICE, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	uint8_t bad[6] = {0x12, 0, 0x80, 0, 255, 0};
	check_sense(run(r, bad, 6, SCSI_DIR_FROM_DEVICE, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	bad[1] = 0x02;
	bad[2] = 0;
	check_sense(run(r, bad, 6, SCSI_DIR_FROM_DEVICE, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	rig_free(r);
}

static void test_capacity_and_io(void **state)
{
	(void)state;
	struct rig *r = rig_new(",format=raw", DISK_MEDIA_HDD);
	uint8_t rc10[10] = {0x25};
	struct scsi_req *q = run(r, rc10, 10, SCSI_DIR_FROM_DEVICE, 8);
	assert_int_equal(get_be32(r->ram + BUF), DISK_SIZE / 512 - 1);
	assert_int_equal(get_be32(r->ram + BUF + 4), 512);
	uint8_t rc16[16] = {0x9E, 0x10};
	put_be32(rc16 + 10, 32);
	q = run(r, rc16, 16, SCSI_DIR_FROM_DEVICE, 32);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	assert_int_equal(get_be64(r->ram + BUF), DISK_SIZE / 512 - 1);
	assert_int_equal(r->ram[BUF + 14] & 0x80, 0x80); /* LBPME */

	/* WRITE(10) with FUA: the data lands and a flush followed. */
	for (unsigned i = 0; i < 4096; i++)
		r->ram[BUF + i] = (uint8_t)(i ^ 0x5A);
	unsigned flushes = block_aio_flush_count(r->disk->aio);
	uint8_t w10[10] = {0x2A, 0x08, 0, 0, 0, 16, 0, 0, 8, 0};
	q = run(r, w10, 10, SCSI_DIR_TO_DEVICE, 4096);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	assert_int_equal(q->xfer, 4096);
	assert_true(block_aio_flush_count(r->disk->aio) > flushes);
	memset(r->ram + BUF, 0, 4096);
	uint8_t r16[16] = {0x88};
	put_be64(r16 + 2, 16);
	put_be32(r16 + 10, 8);
	q = run(r, r16, 16, SCSI_DIR_FROM_DEVICE, 4096);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(r->ram[BUF + i], (uint8_t)(i ^ 0x5A));
	/* READ(6) with length 0 means 256 blocks; READ(12) of the last block. */
	uint8_t r6[6] = {0x08, 0, 0, 0, 0, 0};
	q = run(r, r6, 6, SCSI_DIR_FROM_DEVICE, 256 * 512);
	assert_int_equal(q->xfer, 256 * 512);
	assert_int_equal(r->ram[BUF + 1], (1 * 7) & 0xFF);
	uint8_t r12[12] = {0xA8};
	put_be32(r12 + 2, DISK_SIZE / 512 - 1);
	put_be32(r12 + 6, 1);
	assert_int_equal(run(r, r12, 12, SCSI_DIR_FROM_DEVICE, 512)->status, SCSI_STATUS_GOOD);
	/* One block past the end, and an LBA that wraps with the length. */
	put_be32(r12 + 6, 2);
	check_sense(run(r, r12, 12, SCSI_DIR_FROM_DEVICE, 1024), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_LBA_OUT_OF_RANGE);
	put_be64(r16 + 2, UINT64_MAX - 1);
	put_be32(r16 + 10, 4);
	check_sense(run(r, r16, 16, SCSI_DIR_FROM_DEVICE, 2048), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_LBA_OUT_OF_RANGE);
	/* A transfer longer than the buffer, or in the wrong direction: overrun, nothing moved. */
	put_be64(r16 + 2, 0);
	put_be32(r16 + 10, 8);
	q = run(r, r16, 16, SCSI_DIR_FROM_DEVICE, 512);
	assert_int_equal(q->host, SCSI_HOST_OVERRUN);
	q = run(r, w10, 10, SCSI_DIR_FROM_DEVICE, 4096);
	assert_int_equal(q->host, SCSI_HOST_OVERRUN);
	/* SYNCHRONIZE CACHE flushes; REPORT LUNS lists LUN 0. */
	flushes = block_aio_flush_count(r->disk->aio);
	uint8_t sync10[10] = {0x35};
	assert_int_equal(run(r, sync10, 10, SCSI_DIR_NONE, 0)->status, SCSI_STATUS_GOOD);
	assert_int_equal(block_aio_flush_count(r->disk->aio), flushes + 1);
	uint8_t luns[12] = {0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	q = run(r, luns, 12, SCSI_DIR_FROM_DEVICE, 256);
	assert_int_equal(q->xfer, 16);
	assert_int_equal(get_be32(r->ram + BUF), 8);
	luns[9] = 8; /* allocation length under 16: refused */
	luns[8] = 0;
	check_sense(run(r, luns, 12, SCSI_DIR_FROM_DEVICE, 256), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	rig_free(r);
}

static void test_unmap_write_same(void **state)
{
	(void)state;
	struct rig *r = rig_new(",format=raw", DISK_MEDIA_HDD);
	/* UNMAP of 8 blocks at 64. */
	uint8_t *p = r->ram + BUF;
	memset(p, 0, 24);
	put_be16(p, 22);
	put_be16(p + 2, 16);
	put_be64(p + 8, 64);
	put_be32(p + 16, 8);
	uint8_t unmap[10] = {0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0};
	assert_int_equal(run(r, unmap, 10, SCSI_DIR_TO_DEVICE, 24)->status, SCSI_STATUS_GOOD);
	/* A descriptor past the end; a descriptor length that is not whole; a short list. */
	put_be64(p + 8, DISK_SIZE / 512);
	check_sense(run(r, unmap, 10, SCSI_DIR_TO_DEVICE, 24), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_LBA_OUT_OF_RANGE);
	put_be16(p + 2, 15);
	check_sense(run(r, unmap, 10, SCSI_DIR_TO_DEVICE, 24), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_PARAM_LIST_LENGTH);
	put_be16(p + 2, 0xFFF0);
	check_sense(run(r, unmap, 10, SCSI_DIR_TO_DEVICE, 24), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_PARAM);
	unmap[8] = 200; /* more than the buffer holds */
	check_sense(run(r, unmap, 10, SCSI_DIR_TO_DEVICE, 24), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_PARAM_LIST_LENGTH);

	/* WRITE SAME(16) with UNMAP and a zero block: the range reads back as zeroes. */
	memset(p, 0, 512);
	uint8_t ws[16] = {0x93, 0x08};
	put_be64(ws + 2, 128);
	put_be32(ws + 10, 16);
	assert_int_equal(run(r, ws, 16, SCSI_DIR_TO_DEVICE, 512)->status, SCSI_STATUS_GOOD);
	memset(p, 0xEE, 8192);
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 128, 0, 0, 16, 0};
	run(r, r10, 10, SCSI_DIR_FROM_DEVICE, 8192);
	for (unsigned i = 0; i < 8192; i++)
		assert_int_equal(p[i], 0);
	/* A block that is not zero: refused (Linux never sends one). */
	p[100] = 1;
	check_sense(run(r, ws, 16, SCSI_DIR_TO_DEVICE, 512), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	/* WRITE SAME(10) likewise. */
	memset(p, 0, 512);
	uint8_t ws10[10] = {0x41, 0};
	put_be32(ws10 + 2, 200);
	put_be16(ws10 + 7, 8);
	assert_int_equal(run(r, ws10, 10, SCSI_DIR_TO_DEVICE, 512)->status, SCSI_STATUS_GOOD);
	ws10[1] = 0x01; /* NDOB: not in the 10-byte form */
	check_sense(run(r, ws10, 10, SCSI_DIR_TO_DEVICE, 512), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	put_be32(ws + 10, 0); /* "to the end": refused */
	check_sense(run(r, ws, 16, SCSI_DIR_NONE, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	rig_free(r);
}

static void test_mode_pages(void **state)
{
	(void)state;
	struct rig *r = rig_new(",format=raw,cache=directsync", DISK_MEDIA_HDD);
	uint8_t *p = r->ram + BUF;
	/* Caching page: WCE off for cache=directsync. */
	uint8_t ms6[6] = {0x1A, 0, 0x08, 0, 255, 0};
	struct scsi_req *q = run(r, ms6, 6, SCSI_DIR_FROM_DEVICE, 255);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	assert_int_equal(p[3], 8); /* one block descriptor */
	assert_int_equal(p[4 + 8] & 0x3F, 0x08);
	assert_int_equal(p[4 + 8 + 2] & 0x04, 0);
	/* All pages, MODE SENSE(10), no block descriptors. */
	uint8_t ms10[10] = {0x5A, 0x08, 0x3F, 0, 0, 0, 0, 1, 0, 0};
	q = run(r, ms10, 10, SCSI_DIR_FROM_DEVICE, 256);
	assert_int_equal(get_be16(p + 6), 0);
	assert_int_equal(get_be16(p) + 2, q->xfer);
	/* Saved values: not supported; a page that does not exist. */
	ms6[2] = 0xC8;
	check_sense(run(r, ms6, 6, SCSI_DIR_FROM_DEVICE, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_SAVING_NOT_SUPPORTED);
	ms6[2] = 0x1C;
	check_sense(run(r, ms6, 6, SCSI_DIR_FROM_DEVICE, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);

	/* MODE SELECT: D_SENSE on, then errors come in descriptor format. */
	memset(p, 0, 16);
	p[4] = 0x0A;
	p[5] = 0x0A;
	p[6] = 0x04;
	uint8_t sel[6] = {0x15, 0x10, 0, 0, 16, 0};
	assert_int_equal(run(r, sel, 6, SCSI_DIR_TO_DEVICE, 16)->status, SCSI_STATUS_GOOD);
	uint8_t bad[6] = {0xFF};
	q = run(r, bad, 6, SCSI_DIR_NONE, 0);
	check_sense(q, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	assert_int_equal(q->sense[0], 0x72);
	/* REQUEST SENSE returns it (fixed format asked for), then no sense. */
	uint8_t rs[6] = {0x03, 0, 0, 0, 32, 0};
	q = run(r, rs, 6, SCSI_DIR_FROM_DEVICE, 32);
	assert_int_equal(p[0], 0x70);
	assert_int_equal(p[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(p[12], 0x20);
	run(r, rs, 6, SCSI_DIR_FROM_DEVICE, 32);
	assert_int_equal(p[2], SCSI_SENSE_NO_SENSE);
	/* WCE may be turned on (changeable), a non-changeable bit may not change. */
	memset(p, 0, 24);
	p[4] = 0x08;
	p[5] = 0x12;
	p[6] = 0x04;
	sel[4] = 24;
	assert_int_equal(run(r, sel, 6, SCSI_DIR_TO_DEVICE, 24)->status, SCSI_STATUS_GOOD);
	assert_true(r->lun.write_cache);
	p[7] = 0xFF;
	q = run(r, sel, 6, SCSI_DIR_TO_DEVICE, 24);
	check_sense(q, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_PARAM);
	/* A page length that runs past the list, save bit set. */
	p[7] = 0;
	p[5] = 0x40;
	q = run(r, sel, 6, SCSI_DIR_TO_DEVICE, 24);
	check_sense(q, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_PARAM);
	sel[1] = 0x11;
	check_sense(run(r, sel, 6, SCSI_DIR_TO_DEVICE, 24), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	rig_free(r);
}

static void test_read_only_and_stop(void **state)
{
	(void)state;
	struct rig *r = rig_new(",format=raw,readonly", DISK_MEDIA_HDD);
	uint8_t w10[10] = {0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	check_sense(run(r, w10, 10, SCSI_DIR_TO_DEVICE, 512), SCSI_SENSE_DATA_PROTECT,
		    SCSI_ASC_WRITE_PROTECTED);
	uint8_t ms6[6] = {0x1A, 0, 0x3F, 0, 255, 0};
	run(r, ms6, 6, SCSI_DIR_FROM_DEVICE, 255);
	assert_int_equal(r->ram[BUF + 2] & 0x80, 0x80); /* WP */
	uint8_t unmap[10] = {0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0};
	check_sense(run(r, unmap, 10, SCSI_DIR_TO_DEVICE, 24), SCSI_SENSE_DATA_PROTECT,
		    SCSI_ASC_WRITE_PROTECTED);
	/* START STOP UNIT: stopped, media access is not ready until started again. */
	uint8_t stop[6] = {0x1B, 0, 0, 0, 0, 0};
	assert_int_equal(run(r, stop, 6, SCSI_DIR_NONE, 0)->status, SCSI_STATUS_GOOD);
	uint8_t tur[6] = {0};
	check_sense(run(r, tur, 6, SCSI_DIR_NONE, 0), SCSI_SENSE_NOT_READY,
		    SCSI_ASC_LU_NOT_READY_STOPPED);
	stop[4] = 1;
	run(r, stop, 6, SCSI_DIR_NONE, 0);
	assert_int_equal(run(r, tur, 6, SCSI_DIR_NONE, 0)->status, SCSI_STATUS_GOOD);
	/* A 16-byte opcode in a 6-byte CDB; an unknown group. */
	uint8_t r16[16] = {0x88};
	check_sense(run(r, r16, 6, SCSI_DIR_NONE, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_OPCODE);
	uint8_t vendor[16] = {0xC0};
	check_sense(run(r, vendor, 16, SCSI_DIR_NONE, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_OPCODE);
	rig_free(r);
}

static void test_cdrom(void **state)
{
	(void)state;
	struct rig *r = rig_new(NULL, DISK_MEDIA_CDROM);
	uint8_t std[6] = {0x12, 0, 0, 0, 36, 0};
	run(r, std, 6, SCSI_DIR_FROM_DEVICE, 36);
	assert_int_equal(r->ram[BUF], 0x05);
	assert_int_equal(r->ram[BUF + 1], 0x80);
	uint8_t rc10[10] = {0x25};
	run(r, rc10, 10, SCSI_DIR_FROM_DEVICE, 8);
	assert_int_equal(get_be32(r->ram + BUF), DISK_SIZE / 2048 - 1);
	assert_int_equal(get_be32(r->ram + BUF + 4), 2048);
	/* READ(10) of 2048-byte block 1. */
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0};
	assert_int_equal(run(r, r10, 10, SCSI_DIR_FROM_DEVICE, 2048)->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->ram[BUF], (uint8_t)((2048 * 7 + 4) & 0xFF));
	/* Writes are not CD-ROM commands. */
	uint8_t w10[10] = {0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	check_sense(run(r, w10, 10, SCSI_DIR_TO_DEVICE, 2048), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_OPCODE);
	/* TOC: track 1 and the lead-out at the last block. */
	uint8_t toc[10] = {0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0};
	struct scsi_req *q = run(r, toc, 10, SCSI_DIR_FROM_DEVICE, 100);
	assert_int_equal(q->xfer, 20);
	assert_int_equal(r->ram[BUF + 14], 0xAA);
	assert_int_equal(get_be32(r->ram + BUF + 16), DISK_SIZE / 2048);
	toc[6] = 5; /* a track that does not exist */
	check_sense(run(r, toc, 10, SCSI_DIR_FROM_DEVICE, 100), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	uint8_t gc[10] = {0x46, 0, 0, 0, 0, 0, 0, 0, 128, 0};
	q = run(r, gc, 10, SCSI_DIR_FROM_DEVICE, 128);
	assert_int_equal(get_be16(r->ram + BUF + 6), 0x0008); /* CD-ROM profile */
	uint8_t ev[10] = {0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0};
	q = run(r, ev, 10, SCSI_DIR_FROM_DEVICE, 8);
	assert_int_equal(r->ram[BUF + 5], 0x02); /* medium present */
	ev[1] = 0;				 /* asynchronous notification: not offered */
	check_sense(run(r, ev, 10, SCSI_DIR_FROM_DEVICE, 8), SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_CDB);
	/* A medium change is reported once, then reads work again. */
	scsi_lun_medium_changed(&r->lun);
	check_sense(run(r, r10, 10, SCSI_DIR_FROM_DEVICE, 2048), SCSI_SENSE_UNIT_ATTENTION,
		    SCSI_ASC_MEDIUM_CHANGED);
	assert_int_equal(run(r, r10, 10, SCSI_DIR_FROM_DEVICE, 2048)->status, SCSI_STATUS_GOOD);
	/* The tray lock refuses an eject. */
	uint8_t lock[6] = {0x1E, 0, 0, 0, 1, 0};
	run(r, lock, 6, SCSI_DIR_NONE, 0);
	uint8_t eject[6] = {0x1B, 0, 0, 0, 0x02, 0};
	assert_int_equal(run(r, eject, 6, SCSI_DIR_NONE, 0)->status, SCSI_STATUS_CHECK_CONDITION);
	rig_free(r);
}

static void test_no_lun(void **state)
{
	(void)state;
	struct rig *r = rig_new(",format=raw", DISK_MEDIA_HDD);
	struct scsi_req *q = &r->req;
	memset(q, 0, sizeof(*q));
	uint8_t std[6] = {0x12, 0, 0, 0, 36, 0};
	memcpy(q->cdb, std, 6);
	q->cdb_len = 6;
	sg_list_init(&r->sg, &r->mem, r->sg_iov, 64, 1 << 20);
	sg_list_add(&r->sg, BUF, 36);
	q->data = &r->sg;
	scsi_req_no_lun(q);
	assert_int_equal(q->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->ram[BUF], 0x7F);
	q->cdb[0] = 0x00;
	scsi_req_no_lun(q);
	assert_int_equal(q->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(q->sense[12], 0x25);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inquiry),
	    cmocka_unit_test(test_capacity_and_io),
	    cmocka_unit_test(test_unmap_write_same),
	    cmocka_unit_test(test_mode_pages),
	    cmocka_unit_test(test_read_only_and_stop),
	    cmocka_unit_test(test_cdrom),
	    cmocka_unit_test(test_no_lun),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
