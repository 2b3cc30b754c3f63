/* One logical unit: the command dispatch and the commands that need neither the disk nor a file
 * of their own (TEST UNIT READY, REQUEST SENSE, READ CAPACITY, START STOP UNIT, REPORT LUNS). */
#include <string.h>

#include "devices/disk.h"
#include "devices/scsi/scsi.h"
#include "devices/scsi/scsi_internal.h"
#include "lib/endian.h"

void scsi_lun_init(struct scsi_lun *lun, struct disk *d, bool cdrom)
{
	memset(lun, 0, sizeof(*lun));
	lun->disk = d;
	lun->cdrom = cdrom;
	scsi_lun_reset(lun);
}

void scsi_lun_reset(struct scsi_lun *lun)
{
	lun->write_cache = lun->disk->cache != DISK_CACHE_DIRECTSYNC;
	lun->desc_sense = false;
	lun->stopped = false;
	lun->locked = false;
	lun->last_sense_len = 0;
}

void scsi_lun_medium_changed(struct scsi_lun *lun)
{
	lun->media_changed = true;
	lun->locked = false;
	lun->tray_open = false;
	lun->media_event = lun->disk->bs ? SCSI_MEDIA_EVENT_NEW : SCSI_MEDIA_EVENT_REMOVAL;
}

static void request_sense(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	uint8_t b[SCSI_SENSE_MAX];
	unsigned len;
	bool desc = req->cdb[1] & 0x01;
	if (lun->last_sense_len && (lun->last_sense[0] == 0x72) == desc) {
		memcpy(b, lun->last_sense, sizeof(b));
		len = lun->last_sense_len;
	} else if (lun->last_sense_len) { /* same condition, the other format */
		uint8_t key = lun->last_sense[lun->last_sense[0] == 0x72 ? 1 : 2] & 0x0F;
		const uint8_t *a = lun->last_sense + (lun->last_sense[0] == 0x72 ? 2 : 12);
		len = scsi_sense_build(b, desc, key, (uint16_t)(a[0] << 8 | a[1]));
	} else {
		len = scsi_sense_build(b, desc, SCSI_SENSE_NO_SENSE, SCSI_ASC_NONE);
	}
	lun->last_sense_len = 0;
	scsi_req_reply(req, b, len, req->cdb[4]);
}

static void read_capacity(struct scsi_req *req, bool sixteen)
{
	struct scsi_lun *lun = req->lun;
	uint64_t blocks = scsi_lun_blocks(lun);
	uint8_t b[32] = {0};
	if (!blocks) {
		scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
		return;
	}
	uint32_t bs = lun->cdrom ? SCSI_CD_BLOCK : SCSI_DISK_BLOCK;
	if (!sixteen) {
		put_be32(b, blocks - 1 > 0xFFFFFFFF ? 0xFFFFFFFF : (uint32_t)(blocks - 1));
		put_be32(b + 4, bs);
		scsi_req_reply(req, b, 8, 8);
		return;
	}
	put_be64(b, blocks - 1);
	put_be32(b + 8, bs);
	if (!lun->disk->read_only && !lun->cdrom)
		b[14] = 0x80; /* LBPME: thin provisioned, UNMAP works */
	scsi_req_reply(req, b, 32, get_be32(req->cdb + 10));
}

static void report_luns(struct scsi_req *req)
{
	uint8_t b[16] = {0};
	uint32_t alloc = get_be32(req->cdb + 6);
	if (req->cdb[2] > 2 || alloc < 16) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return;
	}
	put_be32(b, 8); /* one LUN: 0 */
	scsi_req_reply(req, b, 16, alloc);
}

static void start_stop(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	bool start = req->cdb[4] & 0x01, loej = req->cdb[4] & 0x02;
	if (req->cdb[4] & 0xF0) { /* power conditions: not modelled */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return;
	}
	if (!lun->cdrom) {
		lun->stopped = !start;
	} else if (loej && !start) { /* eject: the tray opens, the medium is out of reach */
		if (lun->locked) {
			scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST,
				       0x5302); /* medium removal prevented */
			return;
		}
		if (!lun->tray_open && lun->disk->bs)
			lun->media_event = SCSI_MEDIA_EVENT_REMOVAL;
		lun->tray_open = true;
	} else if (loej) { /* load: the tray closes on the medium it held */
		if (lun->tray_open && lun->disk->bs)
			lun->media_event = SCSI_MEDIA_EVENT_NEW;
		lun->tray_open = false;
	}
	req->status = SCSI_STATUS_GOOD;
}

/* Commands that need the medium ready (a started disk, a CD with a medium). */
static bool needs_ready(uint8_t op)
{
	switch (op) {
	case 0x00: /* TEST UNIT READY */
	case 0x08:
	case 0x0A:
	case 0x28:
	case 0x2A:
	case 0xA8:
	case 0xAA:
	case 0x88:
	case 0x8A:
	case 0x2F: /* VERIFY(10) */
	case 0x8F: /* VERIFY(16) */
	case 0x35:
	case 0x91:
	case 0x42:
	case 0x41:
	case 0x93:
		return true;
	default:
		return false;
	}
}

/* Commands a pending UNIT ATTENTION does not stop (SPC-4 5.14; GET EVENT STATUS: MMC-5). */
static bool ignores_unit_attention(uint8_t op)
{
	return op == 0x03 || op == 0x12 || op == 0x4A || op == 0xA0;
}

bool scsi_req_start(struct scsi_lun *lun, struct scsi_req *req)
{
	uint8_t op = req->cdb[0];
	req->lun = lun;
	req->host = SCSI_HOST_OK;
	req->status = SCSI_STATUS_GOOD;
	req->sense_len = 0;
	req->xfer = 0;
	req->medium_read = false;
	if (req->cdb_len < scsi_cdb_length(op) || !scsi_cdb_length(op)) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return true;
	}
	if (op != 0x03) /* REQUEST SENSE reports the last error; anything else forgets it */
		lun->last_sense_len = 0;
	/* After a medium change, the first command that is not a status query learns of it. */
	if (lun->media_changed && !ignores_unit_attention(op)) {
		lun->media_changed = false;
		scsi_req_check(req, SCSI_SENSE_UNIT_ATTENTION, SCSI_ASC_MEDIUM_CHANGED);
		return true;
	}
	if (needs_ready(op)) {
		if (lun->cdrom && !scsi_lun_blocks(lun)) {
			scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
			return true;
		}
		if (lun->stopped) {
			scsi_req_check(req, SCSI_SENSE_NOT_READY, SCSI_ASC_LU_NOT_READY_STOPPED);
			return true;
		}
	}
	switch (op) {
	case 0x00: /* TEST UNIT READY */
		return true;
	case 0x03:
		request_sense(req);
		return true;
	case 0x12:
		scsi_inquiry(req);
		return true;
	case 0x1A:
	case 0x5A:
		scsi_mode_sense(req);
		return true;
	case 0x15:
	case 0x55:
		scsi_mode_select(req);
		return true;
	case 0x1B:
		start_stop(req);
		return true;
	case 0x1E: /* PREVENT ALLOW MEDIUM REMOVAL */
		if (lun->cdrom)
			lun->locked = req->cdb[4] & 0x01;
		return true;
	case 0x25:
		read_capacity(req, false);
		return true;
	case 0x9E:
		if ((req->cdb[1] & 0x1F) != 0x10) /* READ CAPACITY(16) is the only action */
			break;
		read_capacity(req, true);
		return true;
	case 0xA0:
		report_luns(req);
		return true;
	case 0x08:
	case 0x28:
	case 0xA8:
	case 0x88:
		return scsi_rw(req, false);
	case 0x0A:
	case 0x2A:
	case 0xAA:
	case 0x8A:
		if (lun->cdrom)
			break;
		return scsi_rw(req, true);
	case 0x2F: /* VERIFY(10) and (16) without BYTCHK: the medium is always readable */
	case 0x8F:
		if (req->cdb[1] & 0x06)
			break;
		return true;
	case 0x35:
	case 0x91:
		if (lun->cdrom) /* nothing is cached for a read-only medium */
			return true;
		return scsi_sync_cache(req);
	case 0x42:
		if (lun->cdrom)
			break;
		return scsi_unmap(req);
	case 0x41:
	case 0x93:
		if (lun->cdrom)
			break;
		return scsi_write_same(req);
	default:
		if (lun->cdrom && scsi_mmc_command(req))
			return true;
		break;
	}
	scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	return true;
}

void scsi_req_no_lun(struct scsi_req *req)
{
	req->lun = NULL;
	req->host = SCSI_HOST_OK;
	req->sense_len = 0;
	req->xfer = 0;
	if (req->cdb[0] == 0x12 && !(req->cdb[1] & 1)) { /* standard INQUIRY: "not present" */
		uint8_t b[36] = {0x7F, 0, 0x05, 0x12, 31};
		scsi_req_reply(req, b, sizeof(b), get_be16(req->cdb + 3));
		return;
	}
	if (req->cdb[0] == 0x03) { /* REQUEST SENSE */
		uint8_t b[SCSI_SENSE_MAX];
		unsigned len = scsi_sense_build(b, false, SCSI_SENSE_ILLEGAL_REQUEST, 0x2500);
		scsi_req_reply(req, b, len, req->cdb[4]);
		return;
	}
	scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, 0x2500); /* LU not supported */
}
