/* Sense data (SPC-4 4.5): fixed format (70h) unless the guest set D_SENSE in the control mode
 * page, then descriptor format (72h, no descriptors: the key and ASC say it all). */
#include <string.h>

#include "devices/scsi/scsi.h"
#include "devices/scsi/scsi_internal.h"

unsigned scsi_sense_build(uint8_t *buf, bool descriptor, uint8_t key, uint16_t asc)
{
	memset(buf, 0, SCSI_SENSE_MAX);
	if (descriptor) {
		buf[0] = 0x72;
		buf[1] = key & 0x0F;
		buf[2] = (uint8_t)(asc >> 8);
		buf[3] = (uint8_t)asc;
		buf[7] = 0; /* additional sense length: no descriptors */
		return 8;
	}
	buf[0] = 0x70;
	buf[2] = key & 0x0F;
	buf[7] = 10; /* additional sense length: bytes 8..17 */
	buf[12] = (uint8_t)(asc >> 8);
	buf[13] = (uint8_t)asc;
	return 18;
}

void scsi_lun_set_sense(struct scsi_lun *lun, uint8_t key, uint16_t asc)
{
	lun->last_sense_len = scsi_sense_build(lun->last_sense, lun->desc_sense, key, asc);
}

uint8_t scsi_sense_key(const uint8_t *sense)
{
	return sense[(sense[0] & 0x7F) >= 0x72 ? 1 : 2] & 0x0F;
}

void scsi_req_check(struct scsi_req *req, uint8_t key, uint16_t asc)
{
	bool desc = req->lun && req->lun->desc_sense;
	req->status = SCSI_STATUS_CHECK_CONDITION;
	req->sense_len = scsi_sense_build(req->sense, desc, key, asc);
	if (req->lun) /* REQUEST SENSE after a CHECK CONDITION returns it again */
		scsi_lun_set_sense(req->lun, key, asc);
}

unsigned scsi_cdb_length(uint8_t op)
{
	switch (op >> 5) { /* the group code (SPC-4 4.2.5.1) */
	case 0:
		return 6;
	case 1:
	case 2:
		return 10;
	case 4:
		return 16;
	case 5:
		return 12;
	default:
		return 0;
	}
}

void scsi_req_reply(struct scsi_req *req, const void *buf, uint64_t len, uint64_t alloc)
{
	if (len > alloc)
		len = alloc;
	req->xfer = sg_list_from_buf(req->data, 0, buf, (size_t)len);
	req->status = SCSI_STATUS_GOOD;
}
