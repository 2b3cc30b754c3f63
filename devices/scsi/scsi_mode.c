/* MODE SENSE and MODE SELECT, 6- and 10-byte forms (SPC-4 6.11-6.14).  Pages: read-write error
 * recovery (01h), caching (08h: WCE starts from the disk's cache mode and the guest may turn it
 * off, as ATA's SET FEATURES does), control (0Ah: D_SENSE chooses descriptor sense) and for a
 * CD-ROM the MM capabilities page (2Ah).  Saved values are not supported. */
#include <string.h>

#include "devices/disk.h"
#include "devices/scsi/scsi.h"
#include "devices/scsi/scsi_internal.h"
#include "lib/endian.h"

enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

/* Append page `page` for control `pc` at b; returns its length, 0 when the unit has no such
 * page. */
static unsigned mode_page(const struct scsi_lun *lun, uint8_t page, int pc, uint8_t *b)
{
	bool default_wce = lun->disk->cache != DISK_CACHE_DIRECTSYNC;
	switch (page) {
	case 0x01: /* read-write error recovery: nothing changeable */
		b[0] = 0x01;
		b[1] = 0x0A;
		return 12;
	case 0x08:
		if (lun->cdrom)
			return 0;
		b[0] = 0x08;
		b[1] = 0x12;
		if (pc == PC_CHANGEABLE)
			b[2] = 0x04;
		else if ((pc == PC_CURRENT ? lun->write_cache : default_wce))
			b[2] = 0x04; /* WCE */
		return 20;
	case 0x0A:
		b[0] = 0x0A;
		b[1] = 0x0A;
		if (pc == PC_CHANGEABLE || (pc == PC_CURRENT && lun->desc_sense))
			b[2] = 0x04; /* D_SENSE */
		return 12;
	case 0x2A: /* MM capabilities and mechanical status (MMC-5 7.3) */
		if (!lun->cdrom)
			return 0;
		b[0] = 0x2A;
		b[1] = 0x14;
		if (pc == PC_CHANGEABLE)
			return 22;
		b[2] = 0x3B; /* reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R, DVD-RAM */
		b[4] = 0x71; /* audio play, multi-session, mode 2 forms */
		b[5] = 0x00;
		b[6] = 0x29 | (lun->locked ? 0x02 : 0); /* tray, eject, lock (state) */
		put_be16(b + 8, 706);			/* max read speed (kB/s, obsolete) */
		put_be16(b + 12, 2048);			/* buffer size */
		return 22;
	default:
		return 0;
	}
}

void scsi_mode_sense(struct scsi_req *req)
{
	const struct scsi_lun *lun = req->lun;
	const uint8_t *cdb = req->cdb;
	bool ten = cdb[0] == 0x5A;
	bool dbd = cdb[1] & 0x08;
	int pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3F, subpage = cdb[3];
	uint32_t alloc = ten ? get_be16(cdb + 7) : cdb[4];
	uint8_t b[512] = {0};
	unsigned hdr = ten ? 8 : 4, n = hdr;

	if (pc == PC_SAVED) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if (subpage != 0 && subpage != 0xFF) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return;
	}
	uint8_t devspec = lun->disk->read_only ? 0x80 : 0x00; /* WP */
	if (!lun->cdrom)
		devspec |= 0x10;   /* DPOFUA: FUA writes are honoured */
	if (!dbd && !lun->cdrom) { /* one short block descriptor */
		uint64_t blocks = lun->disk->sectors;
		put_be32(b + n, blocks > 0xFFFFFFFF ? 0xFFFFFFFF : (uint32_t)blocks);
		put_be32(b + n + 4, SCSI_DISK_BLOCK);
		if (!ten)
			put_be32(b + n, blocks > 0xFFFFFF ? 0xFFFFFF : (uint32_t)blocks);
		n += 8;
	}
	unsigned bd_len = n - hdr;
	if (page == 0x3F) {
		static const uint8_t all[] = {0x01, 0x08, 0x0A, 0x2A};
		for (unsigned i = 0; i < sizeof(all); i++)
			n += mode_page(lun, all[i], pc, b + n);
	} else {
		unsigned len = mode_page(lun, page, pc, b + n);
		if (!len) {
			scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
			return;
		}
		n += len;
	}
	if (ten) {
		put_be16(b, (uint16_t)(n - 2));
		b[3] = devspec;
		put_be16(b + 6, (uint16_t)bd_len);
	} else {
		b[0] = (uint8_t)(n - 1);
		b[2] = devspec;
		b[3] = (uint8_t)bd_len;
	}
	scsi_req_reply(req, b, n, alloc);
}

/* One page of a MODE SELECT parameter list: only the changeable bits may differ from the current
 * values. */
static bool select_page(struct scsi_lun *lun, const uint8_t *p, unsigned len)
{
	uint8_t cur[32] = {0}, mask[32] = {0};
	unsigned plen = mode_page(lun, p[0] & 0x3F, PC_CURRENT, cur);
	if (!plen || (p[0] & 0x40) || len != plen || p[1] != plen - 2)
		return false;
	mode_page(lun, p[0] & 0x3F, PC_CHANGEABLE, mask);
	for (unsigned i = 2; i < plen; i++)
		if ((p[i] ^ cur[i]) & ~mask[i])
			return false;
	if ((p[0] & 0x3F) == 0x08)
		lun->write_cache = p[2] & 0x04;
	if ((p[0] & 0x3F) == 0x0A)
		lun->desc_sense = p[2] & 0x04;
	return true;
}

void scsi_mode_select(struct scsi_req *req)
{
	struct scsi_lun *lun = req->lun;
	const uint8_t *cdb = req->cdb;
	bool ten = cdb[0] == 0x55;
	uint32_t len = ten ? get_be16(cdb + 7) : cdb[4];
	uint8_t b[256];
	unsigned hdr = ten ? 8 : 4;

	if (!(cdb[1] & 0x10) || (cdb[1] & 0x01)) { /* PF must be set; SP (save) unsupported */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return;
	}
	if (len == 0) {
		req->status = SCSI_STATUS_GOOD;
		return;
	}
	if (len > sizeof(b) || len < hdr || req->data->bytes < len) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH);
		return;
	}
	req->xfer = sg_list_to_buf(req->data, 0, b, len);
	unsigned bd = ten ? get_be16(b + 6) : b[3];
	unsigned pos = hdr + bd;
	if (pos > len) {
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH);
		return;
	}
	/* Check every page before changing anything: all or nothing. */
	struct scsi_lun trial = *lun;
	while (pos < len) {
		if (len - pos < 2 || len - pos < 2u + b[pos + 1] ||
		    !select_page(&trial, b + pos, 2u + b[pos + 1])) {
			scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST,
				       SCSI_ASC_INVALID_FIELD_PARAM);
			return;
		}
		pos += 2u + b[pos + 1];
	}
	lun->write_cache = trial.write_cache;
	lun->desc_sense = trial.desc_sense;
	req->status = SCSI_STATUS_GOOD;
}
