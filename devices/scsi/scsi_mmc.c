/* The MMC-5 commands of a CD-ROM drive that a disk does not have: GET CONFIGURATION, READ
 * TOC/PMA/ATIP, GET EVENT STATUS NOTIFICATION, READ DISC INFORMATION, MECHANISM STATUS and SET
 * CD SPEED (what Linux sr, cdrom_id and SeaBIOS send), for the SCSI CD-ROM behind LSI and the
 * ATAPI drives of IDE and AHCI alike.  One data track, one session; a medium of more than an
 * 80-minute CD's blocks is reported as a DVD-ROM. */
#include <string.h>

#include "devices/disk.h"
#include "devices/scsi/scsi.h"
#include "devices/scsi/scsi_internal.h"
#include "lib/endian.h"

#define CD_MAX_BLOCKS 360000u

static void invalid_field(struct scsi_req *req)
{
	scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
}

static void msf(uint8_t *p, uint64_t lba)
{
	lba += 150; /* the 2-second pre-gap */
	p[0] = 0;
	p[1] = (uint8_t)(lba / 75 / 60);
	p[2] = (uint8_t)(lba / 75 % 60);
	p[3] = (uint8_t)(lba % 75);
}

static void addr(uint8_t *p, uint64_t lba, bool use_msf)
{
	if (use_msf)
		msf(p, lba);
	else
		put_be32(p, (uint32_t)lba);
}

static void get_configuration(struct scsi_req *req)
{
	const struct scsi_lun *lun = req->lun;
	uint8_t rt = req->cdb[1] & 3;
	uint16_t start = get_be16(req->cdb + 2);
	uint64_t blocks = scsi_lun_blocks(lun);
	bool medium = blocks > 0;
	uint16_t profile = !medium ? 0 : blocks > CD_MAX_BLOCKS ? 0x0010 : 0x0008;
	static const uint16_t features[] = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001E};
	uint8_t b[128] = {0};
	unsigned len = 8;

	if (rt == 3) {
		invalid_field(req);
		return;
	}
	put_be16(b + 6, profile);
	for (unsigned i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		uint16_t code = features[i];
		uint8_t *p = b + len;
		bool current = code <= 3 || medium;
		if ((rt == 2 && code != start) || code < start || (rt == 1 && !current))
			continue;
		put_be16(p, code);
		p[2] = current ? 1 : 0;
		switch (code) {
		case 0x0000: /* profile list: DVD-ROM, CD-ROM */
			p[2] |= 0x02;
			p[3] = 8;
			put_be16(p + 4, 0x0010);
			p[6] = profile == 0x0010;
			put_be16(p + 8, 0x0008);
			p[10] = profile == 0x0008;
			break;
		case 0x0001: /* core: the physical interface (SCSI 1, ATAPI 2) */
			p[2] |= 0x02 | (2 << 2);
			p[3] = 8;
			put_be32(p + 4, lun->atapi ? 2 : 1);
			p[8] = lun->atapi ? 1 : 0; /* device busy event */
			break;
		case 0x0002: /* morphing: polled events */
			p[2] |= 0x02 | (1 << 2);
			p[3] = 4;
			p[4] = 0x02;
			break;
		case 0x0003: /* removable medium: tray, eject, lock */
			p[2] |= 0x02;
			p[3] = 4;
			p[4] = 0x29 | (lun->locked ? 0x04 : 0);
			break;
		case 0x0010: /* random readable */
			p[3] = 8;
			put_be32(p + 4, SCSI_CD_BLOCK);
			put_be16(p + 8, 1);
			break;
		case 0x001E: /* CD read */
			p[2] |= 2 << 2;
			p[3] = 4;
			break;
		}
		len += 4u + p[3];
	}
	put_be32(b, len - 4);
	scsi_req_reply(req, b, len, get_be16(req->cdb + 7));
}

static void read_toc(struct scsi_req *req)
{
	const uint8_t *cdb = req->cdb;
	bool use_msf = cdb[1] & 2;
	uint8_t format = cdb[2] & 0x0F, track = cdb[6];
	uint64_t blocks = scsi_lun_blocks(req->lun);
	uint8_t b[64] = {0};
	unsigned len;

	if (!blocks) {
		scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
		return;
	}
	if (!format)
		format = cdb[9] >> 6; /* the older place of the format field */
	switch (format) {
	case 0: /* TOC: track 1 and the lead-out */
		if (track > 1 && track != 0xAA) {
			invalid_field(req);
			return;
		}
		b[2] = 1;
		b[3] = 1;
		len = 4;
		if (track <= 1) {
			b[len + 1] = 0x14; /* ADR 1, data track */
			b[len + 2] = 1;
			addr(b + len + 4, 0, use_msf);
			len += 8;
		}
		b[len + 1] = 0x14;
		b[len + 2] = 0xAA;
		addr(b + len + 4, blocks, use_msf);
		len += 8;
		break;
	case 1: /* session information: one session starting at track 1 */
		b[2] = 1;
		b[3] = 1;
		b[5] = 0x14;
		b[6] = 1;
		addr(b + 8, 0, use_msf);
		len = 12;
		break;
	case 2: /* full TOC: points A0 (first track), A1 (last track), A2 (lead-out), track 1 */
		b[2] = 1;
		b[3] = 1;
		len = 4;
		for (unsigned i = 0; i < 4; i++) {
			static const uint8_t points[] = {0xA0, 0xA1, 0xA2, 0x01};
			uint8_t *p = b + len;
			p[0] = 1;
			p[1] = 0x14;
			p[3] = points[i];
			if (points[i] == 0xA0 || points[i] == 0xA1)
				p[8] = 1;
			else
				msf(p + 7, points[i] == 0xA2 ? blocks : 0);
			len += 11;
		}
		break;
	default:
		invalid_field(req);
		return;
	}
	put_be16(b, (uint16_t)(len - 2));
	scsi_req_reply(req, b, len, get_be16(cdb + 7));
}

static void event_status(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	uint8_t b[8] = {0};
	unsigned len = 4;
	if (!(req->cdb[1] & 1)) { /* only polled operation */
		invalid_field(req);
		return;
	}
	b[3] = 0x10; /* supported classes: media */
	if (req->cdb[4] & 0x10) {
		b[2] = 0x04; /* media class */
		b[4] = lun->media_event;
		b[5] = (scsi_lun_blocks(lun) ? 0x02 : 0x00) | (lun->tray_open ? 0x01 : 0x00);
		lun->media_event = SCSI_MEDIA_EVENT_NONE; /* reported once */
		len = 8;
	} else {
		b[2] = 0x80; /* no event available */
	}
	put_be16(b, (uint16_t)(len - 2));
	scsi_req_reply(req, b, len, get_be16(req->cdb + 7));
}

static void disc_info(struct scsi_req *req)
{
	uint8_t b[34] = {0};
	if (req->cdb[1] & 7) { /* only standard disc information */
		invalid_field(req);
		return;
	}
	if (!scsi_lun_blocks(req->lun)) {
		scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
		return;
	}
	put_be16(b, 32);
	b[2] = 0x0E; /* complete disc, complete last session */
	b[3] = 1;    /* first track */
	b[4] = 1;    /* sessions */
	b[5] = 1;    /* first track of the last session */
	b[6] = 1;    /* last track of the last session */
	put_be32(b + 16, 0xFFFFFFFF);
	put_be32(b + 20, 0xFFFFFFFF);
	scsi_req_reply(req, b, sizeof(b), get_be16(req->cdb + 7));
}

bool scsi_mmc_command(struct scsi_req *req)
{
	switch (req->cdb[0]) {
	case 0x46:
		get_configuration(req);
		return true;
	case 0x43:
		read_toc(req);
		return true;
	case 0x4A:
		event_status(req);
		return true;
	case 0x51:
		disc_info(req);
		return true;
	case 0xBD: { /* MECHANISM STATUS: no changer; the tray's state */
		uint8_t b[8] = {0};
		b[1] = req->lun->tray_open ? 0x10 : 0x00;
		scsi_req_reply(req, b, sizeof(b), get_be16(req->cdb + 8));
		return true;
	}
	case 0xBB: /* SET CD SPEED: any speed is the speed of the host */
		req->status = SCSI_STATUS_GOOD;
		return true;
	default:
		return false;
	}
}
