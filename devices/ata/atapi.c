/* ATAPI: the PACKET command as a transport of the SCSI layer's CD-ROM unit (devices/scsi/).  The
 * 12-byte packet goes to scsi_req_start as it is; what the unit answers comes back here:
 *  - a reply (INQUIRY, READ TOC, REQUEST SENSE, ...) is built in dev->buf, cut by the unit to the
 *    CDB's allocation length and to the buffer, and moved by PIO or DMA like any ATA buffer;
 *  - a READ is checked by the unit (medium, range) and moved from the medium here, in the ATA
 *    engine's PIO and DMA chunks (scsi_req.transport_reads);
 *  - MODE SELECT's parameter list is taken from the host into dev->buf first;
 *  - CHECK CONDITION ends the command with ERR and the sense key in the error register; the sense
 *    waits in the unit for REQUEST SENSE.
 * Every CD-ROM request finishes inside scsi_req_start: nothing here waits for the block layer but
 * the medium transfer, which the ATA engine owns. */
#include <string.h>

#include "devices/ata/ata_internal.h"
#include "devices/scsi/scsi.h"
#include "lib/endian.h"

/* Run dev->packet on the unit.  `out_len`: bytes of dev->buf the host wrote (MODE SELECT). */
static void atapi_run(struct ata_device *dev, size_t out_len)
{
	struct scsi_req req;
	struct iovec iov;
	struct sg_list data;
	bool to_device = out_len > 0;

	memset(&req, 0, sizeof(req));
	memcpy(req.cdb, dev->packet, sizeof(dev->packet));
	req.cdb_len = sizeof(dev->packet);
	sg_list_init_host(&data, &iov, dev->buf, to_device ? out_len : ATA_BUF_SIZE);
	req.data = &data;
	req.dir = to_device ? SCSI_DIR_TO_DEVICE : SCSI_DIR_FROM_DEVICE;
	req.transport_reads = true;
	/* A CD-ROM unit with transport_reads never leaves a request in flight (see scsi.h). */
	(void)scsi_req_start(&dev->lun, &req);

	if (req.host != SCSI_HOST_OK || req.status != SCSI_STATUS_GOOD) {
		uint8_t key = req.status == SCSI_STATUS_CHECK_CONDITION
				  ? scsi_sense_key(req.sense)
				  : SCSI_SENSE_ABORTED_COMMAND;
		if (req.status != SCSI_STATUS_CHECK_CONDITION)
			scsi_lun_set_sense(&dev->lun, key, SCSI_ASC_NONE);
		ata_cmd_error(dev, (uint8_t)(key << 4) | ATA_ERR_ABRT);
		return;
	}
	dev->xfer_done = NULL; /* the data phase ends the command (ATAPI: with INTRQ) */
	if (req.medium_read && req.read_len)
		ata_xfer_medium(dev, req.read_offset, req.read_len, true);
	else if (!to_device && req.xfer)
		ata_xfer_buf(dev, (size_t)req.xfer, true);
	else
		ata_cmd_ok(dev, true);
}

/* MODE SELECT's parameter list has arrived in dev->buf. */
static void atapi_param_list_done(struct ata_device *dev)
{
	atapi_run(dev, dev->buf_len);
}

void atapi_packet_start(struct ata_device *dev)
{
	uint16_t limit = (uint16_t)(dev->tf.lba_high << 8 | dev->tf.lba_mid);
	/* Byte count limit for PIO data blocks: even, and 0 means as much as possible. */
	limit &= ~1u;
	dev->drq_bytes = limit ? limit : 0xFFFE;
	dev->use_dma = dev->tf.feature & 1;
	dev->buf_pos = 0;
	dev->drq_end = sizeof(dev->packet);
	dev->phase = ATA_PHASE_PACKET;
	dev->tf.count = ATAPI_IREASON_COD;
	dev->tf.status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_DRQ;
	if (dev->ops->pio_ready)
		dev->ops->pio_ready(dev->opaque, dev, false, sizeof(dev->packet));
}

void atapi_execute(struct ata_device *dev)
{
	const uint8_t *p = dev->packet;
	/* MODE SELECT(6)/(10): the host sends the parameter list before the unit can look at it.
	 * A list longer than the buffer is not taken; the unit then refuses the command. */
	if (p[0] == 0x15 || p[0] == 0x55) {
		uint32_t len = p[0] == 0x15 ? p[4] : get_be16(p + 7);
		if (len && len <= ATA_BUF_SIZE) {
			dev->xfer_done = atapi_param_list_done;
			ata_xfer_buf(dev, len, false);
			return;
		}
	}
	atapi_run(dev, 0);
}
