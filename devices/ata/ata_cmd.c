/* The ATA command set of a disk: decoding, range checks and the start of each command's data
 * phase (the transfer itself is ata_core.c's). ATAPI devices take only the few ATA commands the
 * PACKET feature set allows; everything else aborts (CVE-2015-6855: disk commands on a CD). */
#include <errno.h>
#include <string.h>

#include "devices/ata/ata_internal.h"
#include "devices/disk.h"
#include "storage/core/block_aio.h"

enum {
	CMD_NOP = 0x00,
	CMD_DSM = 0x06,
	CMD_DEVICE_RESET = 0x08,
	CMD_READ_SECTORS = 0x20,
	CMD_READ_SECTORS_NR = 0x21,
	CMD_READ_SECTORS_EXT = 0x24,
	CMD_READ_DMA_EXT = 0x25,
	CMD_READ_NATIVE_MAX_EXT = 0x27,
	CMD_READ_MULTIPLE_EXT = 0x29,
	CMD_READ_LOG_EXT = 0x2F,
	CMD_WRITE_SECTORS = 0x30,
	CMD_WRITE_SECTORS_NR = 0x31,
	CMD_WRITE_SECTORS_EXT = 0x34,
	CMD_WRITE_DMA_EXT = 0x35,
	CMD_WRITE_MULTIPLE_EXT = 0x39,
	CMD_WRITE_DMA_FUA_EXT = 0x3D,
	CMD_READ_VERIFY = 0x40,
	CMD_READ_VERIFY_NR = 0x41,
	CMD_READ_VERIFY_EXT = 0x42,
	CMD_EXEC_DIAGNOSTIC = 0x90,
	CMD_INIT_PARAMS = 0x91,
	CMD_STANDBY_IMM_OLD = 0x94,
	CMD_IDLE_IMM_OLD = 0x95,
	CMD_STANDBY_OLD = 0x96,
	CMD_IDLE_OLD = 0x97,
	CMD_CHECK_POWER_OLD = 0x98,
	CMD_PACKET = 0xA0,
	CMD_IDENTIFY_PACKET = 0xA1,
	CMD_READ_MULTIPLE = 0xC4,
	CMD_WRITE_MULTIPLE = 0xC5,
	CMD_SET_MULTIPLE = 0xC6,
	CMD_READ_DMA = 0xC8,
	CMD_READ_DMA_NR = 0xC9,
	CMD_WRITE_DMA = 0xCA,
	CMD_WRITE_DMA_NR = 0xCB,
	CMD_WRITE_MULTIPLE_FUA_EXT = 0xCE,
	CMD_STANDBY_IMM = 0xE0,
	CMD_IDLE_IMM = 0xE1,
	CMD_STANDBY = 0xE2,
	CMD_IDLE = 0xE3,
	CMD_CHECK_POWER = 0xE5,
	CMD_FLUSH = 0xE7,
	CMD_FLUSH_EXT = 0xEA,
	CMD_IDENTIFY = 0xEC,
	CMD_SET_FEATURES = 0xEF,
	CMD_READ_NATIVE_MAX = 0xF8,
};

/* How a read/write command moves its data. */
enum rw_kind { RW_PIO, RW_MULTIPLE, RW_DMA };

/* Starting sector of the command: LBA28/48, or CHS for the old BIOS-style addressing. */
static bool ata_cmd_lba(const struct ata_device *dev, bool lba48, uint64_t *lba)
{
	const struct ata_taskfile *tf = &dev->tf;
	if (lba48) {
		*lba = (uint64_t)tf->lba_high_exp << 40 | (uint64_t)tf->lba_mid_exp << 32 |
		       (uint64_t)tf->lba_low_exp << 24 | (uint64_t)tf->lba_high << 16 |
		       (uint64_t)tf->lba_mid << 8 | tf->lba_low;
		return true;
	}
	if (tf->device & 0x40) {
		*lba = (uint64_t)(tf->device & 0x0F) << 24 | (uint64_t)tf->lba_high << 16 |
		       (uint64_t)tf->lba_mid << 8 | tf->lba_low;
		return true;
	}
	const struct disk *d = dev->disk;
	unsigned cyl = tf->lba_high << 8 | tf->lba_mid;
	unsigned head = tf->device & 0x0F;
	unsigned sect = tf->lba_low;
	if (sect == 0 || sect > d->sectors_per_track || head >= d->heads)
		return false;
	*lba = ((uint64_t)cyl * d->heads + head) * d->sectors_per_track + sect - 1;
	return true;
}

static uint32_t ata_cmd_count(const struct ata_device *dev, bool lba48)
{
	if (lba48) {
		uint32_t n = (uint32_t)dev->tf.count_exp << 8 | dev->tf.count;
		return n ? n : 65536;
	}
	return dev->tf.count ? dev->tf.count : 256;
}

/* Report the sector the command failed at, as ATA asks for IDNF. */
static void ata_cmd_set_lba(struct ata_device *dev, uint64_t lba, bool lba48)
{
	struct ata_taskfile *tf = &dev->tf;
	tf->lba_low = (uint8_t)lba;
	tf->lba_mid = (uint8_t)(lba >> 8);
	tf->lba_high = (uint8_t)(lba >> 16);
	if (lba48) {
		tf->lba_low_exp = (uint8_t)(lba >> 24);
		tf->lba_mid_exp = (uint8_t)(lba >> 32);
		tf->lba_high_exp = (uint8_t)(lba >> 40);
	} else {
		tf->device = (tf->device & 0xF0) | ((lba >> 24) & 0x0F);
	}
}

/* Range check shared by reads, writes and verify: the whole range must lie on the disk. */
static bool ata_cmd_range(struct ata_device *dev, bool lba48, uint64_t *lba, uint32_t *count)
{
	*count = ata_cmd_count(dev, lba48);
	if (!ata_cmd_lba(dev, lba48, lba) || *lba >= dev->disk->sectors ||
	    *count > dev->disk->sectors - *lba) {
		ata_cmd_error(dev, ATA_ERR_IDNF | ATA_ERR_ABRT);
		return false;
	}
	return true;
}

/* fua: WRITE DMA/MULTIPLE FUA EXT, the data is on stable storage when the command ends. */
static void ata_cmd_rw_fua(struct ata_device *dev, bool lba48, bool write, enum rw_kind kind,
			   bool fua)
{
	uint64_t lba;
	uint32_t count;

	if (kind == RW_MULTIPLE && !dev->multiple) {
		ata_cmd_abort(dev); /* READ/WRITE MULTIPLE before SET MULTIPLE MODE */
		return;
	}
	if (write && dev->disk->read_only) {
		ata_cmd_abort(dev); /* ATA has no write-protect bit: writes abort */
		return;
	}
	if (!ata_cmd_range(dev, lba48, &lba, &count))
		return;
	dev->use_dma = kind == RW_DMA;
	dev->fua = fua;
	dev->drq_bytes = (kind == RW_MULTIPLE ? dev->multiple : 1) * 512;
	ata_xfer_medium(dev, lba * 512, (uint64_t)count * 512, !write);
}

static void ata_cmd_rw(struct ata_device *dev, bool lba48, bool write, enum rw_kind kind)
{
	ata_cmd_rw_fua(dev, lba48, write, kind, false);
}

static void ata_cmd_verify(struct ata_device *dev, bool lba48)
{
	uint64_t lba;
	uint32_t count;
	/* The data is where the block layer says it is: checking the range is the verification. */
	if (ata_cmd_range(dev, lba48, &lba, &count))
		ata_cmd_ok(dev, true);
}

static void ata_cmd_identify(struct ata_device *dev)
{
	uint16_t id[256];
	if (dev->atapi) {
		/* An ATAPI device aborts IDENTIFY DEVICE and shows its signature: that is how hosts
		 * tell it from a disk. */
		ata_set_signature(dev);
		ata_cmd_abort(dev);
		return;
	}
	ata_identify_fill(dev, id);
	for (int i = 0; i < 256; i++) {
		dev->buf[2 * i] = (uint8_t)id[i];
		dev->buf[2 * i + 1] = (uint8_t)(id[i] >> 8);
	}
	dev->drq_bytes = 512;
	ata_xfer_buf(dev, 512, true);
}

static void ata_cmd_identify_packet(struct ata_device *dev)
{
	uint16_t id[256];
	if (!dev->atapi) {
		ata_cmd_abort(dev);
		return;
	}
	ata_identify_packet_fill(dev, id);
	for (int i = 0; i < 256; i++) {
		dev->buf[2 * i] = (uint8_t)id[i];
		dev->buf[2 * i + 1] = (uint8_t)(id[i] >> 8);
	}
	dev->drq_bytes = 512;
	ata_xfer_buf(dev, 512, true);
}

static bool ata_xfer_mode_valid(uint8_t mode)
{
	switch (mode & 0xF8) {
	case 0x00:
		return mode <= 1; /* PIO default (with or without IORDY) */
	case 0x08:
		return (mode & 7) <= 4; /* PIO 0-4 */
	case 0x20:
		return (mode & 7) <= 2; /* multiword DMA 0-2 */
	case 0x40:
		return (mode & 7) <= 5; /* UDMA 0-5 */
	}
	return false;
}

static void ata_cmd_set_features(struct ata_device *dev)
{
	switch (dev->tf.feature) {
	case 0x03: /* set transfer mode */
		if (!ata_xfer_mode_valid(dev->tf.count))
			break;
		dev->xfer_mode = dev->tf.count;
		ata_cmd_ok(dev, true);
		return;
	case 0x02: /* enable write cache */
	case 0x82: /* disable write cache */
		if (dev->atapi)
			break;
		dev->write_cache = dev->tf.feature == 0x02;
		ata_cmd_ok(dev, true);
		return;
	case 0x10: /* enable/disable a SATA feature */
	case 0x90:
	case 0x55: /* read look-ahead off/on */
	case 0xAA:
	case 0x66: /* keep/revert to power-on defaults */
	case 0xCC:
		ata_cmd_ok(dev, true);
		return;
	}
	ata_cmd_abort(dev);
}

static void ata_cmd_set_multiple(struct ata_device *dev)
{
	unsigned n = dev->tf.count;
	/* 0 turns multiple mode off; otherwise a power of two up to what IDENTIFY word 47 says. */
	if (n > ATA_MULTIPLE_MAX || (n & (n - 1))) {
		ata_cmd_abort(dev);
		return;
	}
	dev->multiple = n;
	ata_cmd_ok(dev, true);
}

static void ata_flush_done(struct ata_device *dev, int ret)
{
	if (ret < 0)
		ata_cmd_error(dev, ATA_ERR_ABRT);
	else
		ata_cmd_ok(dev, true);
}

static void ata_cmd_flush(struct ata_device *dev)
{
	/* Nothing to make durable on a read-only disk (and the image is not open for writing). */
	if (dev->disk->read_only ||
	    ata_submit_simple(dev, BLOCK_AIO_FLUSH, 0, 0, ata_flush_done) < 0)
		ata_flush_done(dev, dev->disk->read_only ? 0 : -EIO);
}

/* ---- DATA SET MANAGEMENT (TRIM): the host sends 512-byte blocks of 8-byte ranges (48-bit LBA,
 * 16-bit sector count; count 0 means an unused entry), each range goes to the block layer as a
 * discard, one after the other. ---- */

void ata_dsm_entry(const uint8_t *list, unsigned i, uint64_t *lba, uint64_t *count)
{
	uint64_t e = 0;
	for (int b = 7; b >= 0; b--)
		e = e << 8 | list[8 * i + b];
	*lba = e & 0xFFFFFFFFFFFFULL;
	*count = e >> 48;
}

int ata_dsm_check(const uint8_t *list, unsigned n, uint64_t sectors)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t lba, count;
		ata_dsm_entry(list, i, &lba, &count);
		if (count && (lba >= sectors || count > sectors - lba))
			return -ERANGE;
	}
	return 0;
}

static void ata_dsm_next(struct ata_device *dev);

static void ata_dsm_done(struct ata_device *dev, int ret)
{
	if (!ata_dsm_discard_ok(ret)) {
		ata_cmd_abort(dev);
		return;
	}
	ata_dsm_next(dev);
}

static void ata_dsm_next(struct ata_device *dev)
{
	while (dev->dsm_index < dev->dsm_count) {
		uint64_t lba, n;
		ata_dsm_entry(dev->buf, dev->dsm_index++, &lba, &n);
		if (!n)
			continue;
		if (ata_submit_simple(dev, BLOCK_AIO_DISCARD, lba * 512, n * 512, ata_dsm_done) < 0)
			ata_cmd_abort(dev);
		return;
	}
	ata_cmd_ok(dev, true);
}

static void ata_dsm_received(struct ata_device *dev)
{
	/* Check every range before discarding any, so a bad list changes nothing. */
	if (ata_dsm_check(dev->buf, dev->dsm_count, dev->disk->sectors) < 0) {
		ata_cmd_error(dev, ATA_ERR_IDNF | ATA_ERR_ABRT);
		return;
	}
	dev->dsm_index = 0;
	ata_dsm_next(dev);
}

static void ata_cmd_dsm(struct ata_device *dev)
{
	uint32_t blocks = ata_cmd_count(dev, true);
	if (!(dev->tf.feature & 1) || dev->disk->read_only || blocks > ATA_DSM_MAX_BLOCKS) {
		ata_cmd_abort(dev);
		return;
	}
	dev->dsm_count = blocks * 512 / 8;
	dev->use_dma = true; /* DSM is a DMA-protocol command */
	dev->xfer_done = ata_dsm_received;
	ata_xfer_buf(dev, blocks * 512, false);
}

static void ata_cmd_native_max(struct ata_device *dev, bool lba48)
{
	uint64_t max = dev->disk->sectors ? dev->disk->sectors - 1 : 0;
	if (!lba48 && max > 0x0FFFFFFF)
		max = 0x0FFFFFFF;
	ata_cmd_set_lba(dev, max, lba48);
	ata_cmd_ok(dev, true);
}

static void ata_cmd_diagnostic(struct ata_device *dev)
{
	ata_set_signature(dev);
	/* Error register 01h: no error detected. */
	ata_cmd_end(dev, dev->atapi ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC, 0x01, true);
}

/* The commands an ATAPI device accepts outside PACKET. */
static void atapi_cmd_execute(struct ata_device *dev, uint8_t command)
{
	switch (command) {
	case CMD_PACKET:
		atapi_packet_start(dev);
		return;
	case CMD_IDENTIFY_PACKET:
		ata_cmd_identify_packet(dev);
		return;
	case CMD_IDENTIFY:
		ata_cmd_identify(dev);
		return;
	case CMD_DEVICE_RESET:
		/* Ends whatever was running; no interrupt (ACS: DEVICE RESET has none). */
		ata_device_reset(dev);
		return;
	case CMD_EXEC_DIAGNOSTIC:
		ata_cmd_diagnostic(dev);
		return;
	case CMD_SET_FEATURES:
		ata_cmd_set_features(dev);
		return;
	case CMD_CHECK_POWER:
	case CMD_CHECK_POWER_OLD:
		dev->tf.count = 0xFF;
		ata_cmd_ok(dev, true);
		return;
	case CMD_IDLE_IMM:
	case CMD_STANDBY_IMM:
	case CMD_NOP:
		ata_cmd_ok(dev, true);
		return;
	}
	/* Anything else: abort with the signature so the host sees a packet device. */
	ata_set_signature(dev);
	ata_cmd_abort(dev);
}

void ata_cmd_execute(struct ata_device *dev, uint8_t command)
{
	if (dev->atapi) {
		atapi_cmd_execute(dev, command);
		return;
	}
	switch (command) {
	case CMD_IDENTIFY:
		ata_cmd_identify(dev);
		return;
	case CMD_READ_SECTORS:
	case CMD_READ_SECTORS_NR:
		ata_cmd_rw(dev, false, false, RW_PIO);
		return;
	case CMD_READ_SECTORS_EXT:
		ata_cmd_rw(dev, true, false, RW_PIO);
		return;
	case CMD_WRITE_SECTORS:
	case CMD_WRITE_SECTORS_NR:
		ata_cmd_rw(dev, false, true, RW_PIO);
		return;
	case CMD_WRITE_SECTORS_EXT:
		ata_cmd_rw(dev, true, true, RW_PIO);
		return;
	case CMD_READ_MULTIPLE:
		ata_cmd_rw(dev, false, false, RW_MULTIPLE);
		return;
	case CMD_READ_MULTIPLE_EXT:
		ata_cmd_rw(dev, true, false, RW_MULTIPLE);
		return;
	case CMD_WRITE_MULTIPLE:
		ata_cmd_rw(dev, false, true, RW_MULTIPLE);
		return;
	case CMD_WRITE_MULTIPLE_EXT:
		ata_cmd_rw(dev, true, true, RW_MULTIPLE);
		return;
	case CMD_READ_DMA:
	case CMD_READ_DMA_NR:
		ata_cmd_rw(dev, false, false, RW_DMA);
		return;
	case CMD_READ_DMA_EXT:
		ata_cmd_rw(dev, true, false, RW_DMA);
		return;
	case CMD_WRITE_DMA:
	case CMD_WRITE_DMA_NR:
		ata_cmd_rw(dev, false, true, RW_DMA);
		return;
	case CMD_WRITE_DMA_EXT:
		ata_cmd_rw(dev, true, true, RW_DMA);
		return;
	case CMD_WRITE_DMA_FUA_EXT:
		ata_cmd_rw_fua(dev, true, true, RW_DMA, true);
		return;
	case CMD_WRITE_MULTIPLE_FUA_EXT:
		ata_cmd_rw_fua(dev, true, true, RW_MULTIPLE, true);
		return;
	case CMD_READ_VERIFY:
	case CMD_READ_VERIFY_NR:
		ata_cmd_verify(dev, false);
		return;
	case CMD_READ_VERIFY_EXT:
		ata_cmd_verify(dev, true);
		return;
	case CMD_SET_MULTIPLE:
		ata_cmd_set_multiple(dev);
		return;
	case CMD_SET_FEATURES:
		ata_cmd_set_features(dev);
		return;
	case CMD_FLUSH:
	case CMD_FLUSH_EXT:
		ata_cmd_flush(dev);
		return;
	case CMD_DSM:
		ata_cmd_dsm(dev);
		return;
	case CMD_READ_NATIVE_MAX:
		ata_cmd_native_max(dev, false);
		return;
	case CMD_READ_NATIVE_MAX_EXT:
		ata_cmd_native_max(dev, true);
		return;
	case CMD_CHECK_POWER:
	case CMD_CHECK_POWER_OLD:
		dev->tf.count = 0xFF; /* active or idle */
		ata_cmd_ok(dev, true);
		return;
	case CMD_IDLE:
	case CMD_IDLE_IMM:
	case CMD_STANDBY:
	case CMD_STANDBY_IMM:
	case CMD_IDLE_OLD:
	case CMD_IDLE_IMM_OLD:
	case CMD_STANDBY_OLD:
	case CMD_STANDBY_IMM_OLD:
	case CMD_INIT_PARAMS:
		/* Power states and CHS translation mean nothing to an image: accepted. */
		ata_cmd_ok(dev, true);
		return;
	case CMD_EXEC_DIAGNOSTIC:
		ata_cmd_diagnostic(dev);
		return;
	case CMD_READ_LOG_EXT:
		ata_cmd_read_log(dev);
		return;
	case CMD_DEVICE_RESET: /* PACKET feature set only */
	case CMD_PACKET:
	case CMD_IDENTIFY_PACKET:
	default:
		ata_cmd_abort(dev);
		return;
	}
}
