/* READ LOG EXT (2Fh, ACS-3 7.24): the General Purpose Logging logs a disk answers.
 *
 *  - 00h, the log directory: which logs exist and how many 512-byte pages each has (ACS-3 A.2:
 *    every supported log is listed, so 10h and 13h appear when the transport offers NCQ);
 *  - 10h, NCQ Command Error (ACS-3 A.14), when the transport offers NCQ: the tag, status,
 *    error, LBA and count of the queued command that failed, or NQ (byte 0 bit 7) when there is
 *    none. After an NCQ error Linux reads it to learn which tag failed (libata-sata.c
 *    ata_eh_analyze_ncq_error) instead of resetting the link. Reading it clears the error, and
 *    queued commands are accepted again; a read that fails (bad PRDT) leaves it pending;
 *  - 13h, NCQ Send and Receive (ACS-3 9.20), only when the transport offers NCQ: SEND FPDMA
 *    QUEUED with DATA SET MANAGEMENT / TRIM. Linux reads the directory, then this log, and only
 *    then sends queued TRIM (libata-core ata_dev_config_ncq_send_recv).
 * Any other log, page or a zero page count aborts, as ACS asks for unsupported logs.
 */
#include <string.h>

#include "devices/ata/ata_internal.h"
#include "devices/disk.h"

#define LOG_PAGE 512
#define GPL_VERSION 0x0001
#define NCQ_SR_SEND_DSM (1u << 0) /* byte 0: SEND FPDMA QUEUED with DATA SET MANAGEMENT */
#define NCQ_SR_DSM_TRIM (1u << 0) /* byte 4: ... its TRIM function */
#define NCQ_ERR_NQ 0x80		  /* byte 0: no queued command failed */
#define NCQ_ERR_TAG_MASK 0x1F

/* Pages of log `log` on this device; 0: not supported. */
static unsigned ata_log_pages(const struct ata_device *dev, unsigned log)
{
	switch (log) {
	case ATA_LOG_DIRECTORY:
		return 1;
	case ATA_LOG_NCQ_ERROR:
	case ATA_LOG_NCQ_SEND_RECV:
		return dev->ncq ? 1 : 0;
	}
	return 0;
}

void ata_ncq_error_record(struct ata_device *dev, const struct ata_ncq_error *e)
{
	if (dev->ncq_error.pending)
		return;
	dev->ncq_error = *e;
	dev->ncq_error.tag &= NCQ_ERR_TAG_MASK;
	dev->ncq_error.lba &= (1ULL << 48) - 1;
	dev->ncq_error.pending = true;
}

/* Log 10h (ACS-3 Table A.14): the layout Linux's ata_eh_read_log_10h reads back. */
static void ata_log_ncq_error(const struct ata_device *dev, uint8_t *page)
{
	const struct ata_ncq_error *e = &dev->ncq_error;
	uint8_t sum = 0;
	if (!e->pending) {
		page[0] = NCQ_ERR_NQ;
	} else {
		page[0] = e->tag;
		page[2] = e->status;
		page[3] = e->error;
		for (int i = 0; i < 3; i++) {
			page[4 + i] = (uint8_t)(e->lba >> (8 * i));
			page[8 + i] = (uint8_t)(e->lba >> (24 + 8 * i));
		}
		page[7] = e->device;
		page[12] = (uint8_t)e->count;
		page[13] = (uint8_t)(e->count >> 8);
	}
	for (unsigned i = 0; i < LOG_PAGE - 1; i++)
		sum += page[i];
	page[LOG_PAGE - 1] = (uint8_t)-sum; /* the page's 512 bytes sum to 0 */
}

static void ata_log_fill(const struct ata_device *dev, unsigned log, uint8_t *page)
{
	memset(page, 0, LOG_PAGE);
	if (log == ATA_LOG_DIRECTORY) {
		page[0] = GPL_VERSION & 0xFF;
		page[1] = GPL_VERSION >> 8;
		for (unsigned l = 1; l < LOG_PAGE / 2; l++)
			page[2 * l] = (uint8_t)ata_log_pages(dev, l);
		return;
	}
	if (log == ATA_LOG_NCQ_ERROR) {
		ata_log_ncq_error(dev, page);
		return;
	}
	/* NCQ Send and Receive: TRIM only where the guest may write (as IDENTIFY word 169). */
	if (!dev->disk->read_only) {
		page[0] = NCQ_SR_SEND_DSM;
		page[4] = NCQ_SR_DSM_TRIM;
	}
}

/* The host has the NCQ Command Error page: the error is reported, queued commands run again. */
static void ata_log_ncq_error_read(struct ata_device *dev)
{
	dev->ncq_error.pending = false;
	ata_cmd_ok(dev, dev->use_dma); /* PIO in: the last DRQ block interrupted */
}

void ata_cmd_read_log(struct ata_device *dev)
{
	const struct ata_taskfile *tf = &dev->tf;
	unsigned log = tf->lba_low;
	unsigned page = tf->lba_mid | tf->lba_mid_exp << 8;
	unsigned count = tf->count | tf->count_exp << 8;
	unsigned pages = ata_log_pages(dev, log);
	/* Every answered log is one page, so this also bounds the transfer to dev->buf. */
	if (!count || page >= pages || count > pages - page) {
		ata_cmd_abort(dev);
		return;
	}
	for (unsigned i = 0; i < count; i++)
		ata_log_fill(dev, log, dev->buf + (size_t)i * LOG_PAGE);
	dev->drq_bytes = LOG_PAGE;
	if (log == ATA_LOG_NCQ_ERROR)
		dev->xfer_done = ata_log_ncq_error_read;
	ata_xfer_buf(dev, (size_t)count * LOG_PAGE, true);
}
