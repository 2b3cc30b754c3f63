/* READ LOG EXT (2Fh, ACS-3 7.24): the General Purpose Logging logs a disk answers.
 *
 *  - 00h, the log directory: which logs exist and how many 512-byte pages each has;
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

/* Pages of log `log` on this device; 0: not supported. */
static unsigned ata_log_pages(const struct ata_device *dev, unsigned log)
{
	switch (log) {
	case ATA_LOG_DIRECTORY:
		return 1;
	case ATA_LOG_NCQ_SEND_RECV:
		return dev->ncq ? 1 : 0;
	}
	return 0;
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
	/* NCQ Send and Receive: TRIM only where the guest may write (as IDENTIFY word 169). */
	if (!dev->disk->read_only) {
		page[0] = NCQ_SR_SEND_DSM;
		page[4] = NCQ_SR_DSM_TRIM;
	}
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
	ata_xfer_buf(dev, (size_t)count * LOG_PAGE, true);
}
