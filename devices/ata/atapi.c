/* ATAPI: the PACKET command and the MMC commands a guest needs to find and read a CD/DVD image
 * (2048-byte blocks, one data track).
 *
 * Every reply is built in dev->buf (far larger than any reply) and cut to the smaller of its own
 * length and the CDB's allocation length, so no guest value sizes a copy (CVE-2015-5154,
 * CVE-2020-29443). Medium reads go to ata_xfer_medium after a range check. */
#include <string.h>

#include "devices/ata/ata_internal.h"
#include "devices/disk.h"
#include "lib/endian.h"

enum {
	SENSE_NONE = 0x00,
	SENSE_NOT_READY = 0x02,
	SENSE_ILLEGAL_REQUEST = 0x05,
	SENSE_UNIT_ATTENTION = 0x06,
};
enum {
	ASC_INVALID_OPCODE = 0x20,
	ASC_LBA_OUT_OF_RANGE = 0x21,
	ASC_INVALID_FIELD = 0x24,
	ASC_MEDIUM_CHANGED = 0x28,
	ASC_SAVING_NOT_SUPPORTED = 0x39,
	ASC_MEDIUM_NOT_PRESENT = 0x3A,
	ASC_REMOVAL_PREVENTED = 0x53,
};
enum { MEDIA_EVENT_NONE = 0, MEDIA_EVENT_NEW = 2, MEDIA_EVENT_REMOVAL = 3 };

#define CD_BLOCK 2048
#define CD_MAX_BLOCKS 360000 /* an 80-minute CD; larger images are DVDs */

static bool atapi_has_medium(const struct ata_device *dev)
{
	return dev->disk->bs && !dev->tray_open;
}

static uint32_t atapi_blocks(const struct ata_device *dev)
{
	uint64_t n = dev->disk->size / CD_BLOCK;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static void atapi_error(struct ata_device *dev, uint8_t key, uint8_t asc, uint8_t ascq)
{
	dev->sense = (struct atapi_sense){key, asc, ascq};
	ata_cmd_error(dev, (uint8_t)(key << 4) | ATA_ERR_ABRT);
}

static void atapi_invalid_field(struct ata_device *dev)
{
	atapi_error(dev, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
}

static void atapi_ok_done(struct ata_device *dev)
{
	dev->sense = (struct atapi_sense){0, 0, 0};
	ata_cmd_ok(dev, true);
}

/* Send `len` bytes of dev->buf, cut to the CDB's allocation length. */
static void atapi_reply(struct ata_device *dev, size_t len, uint32_t alloc)
{
	if (len > alloc)
		len = alloc;
	dev->xfer_done = atapi_ok_done;
	ata_xfer_buf(dev, len, true);
}

/* The LBA as minutes/seconds/frames (75 frames a second, 2-second pregap). */
static void atapi_msf(uint8_t *p, uint32_t lba)
{
	uint32_t x = lba + 150;
	p[0] = 0;
	p[1] = (uint8_t)(x / (75 * 60));
	p[2] = (uint8_t)(x / 75 % 60);
	p[3] = (uint8_t)(x % 75);
}

static void atapi_addr(uint8_t *p, uint32_t lba, bool msf)
{
	if (msf)
		atapi_msf(p, lba);
	else
		put_be32(p, lba);
}

static void atapi_request_sense(struct ata_device *dev)
{
	uint8_t *b = dev->buf;
	memset(b, 0, 18);
	b[0] = 0x70; /* current error, fixed format */
	b[2] = dev->sense.key;
	b[7] = 10;
	b[12] = dev->sense.asc;
	b[13] = dev->sense.ascq;
	dev->sense = (struct atapi_sense){0, 0, 0};
	dev->xfer_done = NULL; /* keep the sense cleared: no atapi_ok_done needed */
	uint32_t alloc = dev->packet[4];
	ata_xfer_buf(dev, alloc < 18 ? alloc : 18, true);
}

static void atapi_inquiry(struct ata_device *dev)
{
	uint8_t *b = dev->buf;
	if (dev->packet[1] & 1) { /* vital product data pages: none */
		atapi_invalid_field(dev);
		return;
	}
	memset(b, 0, 36);
	b[0] = 0x05; /* CD/DVD device */
	b[1] = 0x80; /* removable */
	b[2] = 0x05; /* SPC-3 */
	b[3] = 0x32; /* ATAPI, response data format 2 */
	b[4] = 36 - 5;
	disk_pad_string((char *)b + 8, 8, "MINIVMM");
	disk_pad_string((char *)b + 16, 16, dev->disk->model);
	disk_pad_string((char *)b + 32, 4, dev->disk->firmware);
	atapi_reply(dev, 36, get_be16(dev->packet + 3));
}

static void atapi_read_capacity(struct ata_device *dev)
{
	uint32_t blocks = atapi_blocks(dev);
	put_be32(dev->buf, blocks ? blocks - 1 : 0);
	put_be32(dev->buf + 4, CD_BLOCK);
	atapi_reply(dev, 8, 8);
}

static void atapi_read(struct ata_device *dev, uint32_t lba, uint32_t count)
{
	uint32_t blocks = atapi_blocks(dev);
	if (lba > blocks || count > blocks - lba) {
		atapi_error(dev, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
		return;
	}
	dev->xfer_done = atapi_ok_done;
	ata_xfer_medium(dev, (uint64_t)lba * CD_BLOCK, (uint64_t)count * CD_BLOCK, true);
}

static size_t atapi_mode_page_fill(struct ata_device *dev, uint8_t page, uint8_t *p)
{
	switch (page) {
	case 0x01: /* read error recovery */
		memset(p, 0, 8);
		p[0] = 0x01;
		p[1] = 6;
		return 8;
	case 0x2A: /* CD/DVD capabilities and mechanical status */
		memset(p, 0, 22);
		p[0] = 0x2A;
		p[1] = 20;
		p[2] = 0x3B; /* reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R */
		p[4] = 0x71; /* audio play, composite, digital ports, multi-session */
		p[5] = 0x73; /* CD-DA, accurate stream, R-W, C2 pointers */
		/* Tray loading, eject, lock supported, current lock state. */
		p[6] = (uint8_t)(0x29 | (dev->locked ? 0x02 : 0));
		put_be16(p + 8, 706);  /* max speed (KB/s, 4x) */
		put_be16(p + 10, 2);   /* volume levels */
		put_be16(p + 12, 512); /* buffer (KB) */
		put_be16(p + 14, 706); /* current speed */
		return 22;
	}
	return 0;
}

/* A page's current values, or (changeable) its mask: nothing here can be changed. */
static size_t atapi_mode_page(struct ata_device *dev, uint8_t page, uint8_t *p, bool changeable)
{
	size_t n = atapi_mode_page_fill(dev, page, p);
	if (n && changeable)
		memset(p + 2, 0, n - 2);
	return n;
}

static void atapi_mode_sense(struct ata_device *dev, bool ten)
{
	uint8_t pc = dev->packet[2] >> 6, page = dev->packet[2] & 0x3F;
	size_t hdr = ten ? 8 : 4, len = hdr;
	uint8_t *b = dev->buf;

	if (pc == 3) {
		atapi_error(dev, SENSE_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
		return;
	}
	memset(b, 0, hdr);
	if (page == 0x3F) {
		len += atapi_mode_page(dev, 0x01, b + len, pc == 1);
		len += atapi_mode_page(dev, 0x2A, b + len, pc == 1);
	} else {
		size_t n = atapi_mode_page(dev, page, b + len, pc == 1);
		if (!n) {
			atapi_invalid_field(dev);
			return;
		}
		len += n;
	}
	if (ten) {
		put_be16(b, (uint16_t)(len - 2));
		atapi_reply(dev, len, get_be16(dev->packet + 7));
	} else {
		b[0] = (uint8_t)(len - 1);
		atapi_reply(dev, len, dev->packet[4]);
	}
}

static void atapi_mode_select(struct ata_device *dev, bool ten)
{
	uint32_t len = ten ? get_be16(dev->packet + 7) : dev->packet[4];
	/* The parameters are taken and ignored: nothing here is changeable. */
	if (len > ATA_BUF_SIZE) {
		atapi_invalid_field(dev);
		return;
	}
	dev->xfer_done = atapi_ok_done;
	ata_xfer_buf(dev, len, false);
}

static void atapi_start_stop(struct ata_device *dev)
{
	bool loej = dev->packet[4] & 2, start = dev->packet[4] & 1;
	if (loej && !start) {
		if (dev->locked) {
			atapi_error(dev, SENSE_ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED, 2);
			return;
		}
		if (!dev->tray_open && dev->disk->bs)
			dev->media_event = MEDIA_EVENT_REMOVAL;
		dev->tray_open = true;
	} else if (loej && start) {
		if (dev->tray_open && dev->disk->bs)
			dev->media_event = MEDIA_EVENT_NEW;
		dev->tray_open = false;
	}
	atapi_ok_done(dev);
}

/* GET CONFIGURATION: profile list, core, morphing, removable medium, random readable, CD read. */
static void atapi_get_configuration(struct ata_device *dev)
{
	uint8_t rt = dev->packet[1] & 3;
	uint16_t start = get_be16(dev->packet + 2);
	uint8_t *b = dev->buf;
	bool medium = atapi_has_medium(dev);
	bool dvd = medium && atapi_blocks(dev) > CD_MAX_BLOCKS;
	uint16_t profile = !medium ? 0 : dvd ? 0x0010 : 0x0008;
	size_t len = 8;

	if (rt == 3) {
		atapi_invalid_field(dev);
		return;
	}
	memset(b, 0, 128);
	put_be16(b + 6, profile);
	static const uint16_t features[] = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001E};
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		uint16_t code = features[i];
		uint8_t *p = b + len;
		bool current = code <= 3 || medium;
		if ((rt == 2 && code != start) || code < start || (rt == 1 && !current))
			continue;
		put_be16(p, code);
		p[2] = (uint8_t)(current ? 1 : 0);
		switch (code) {
		case 0x0000: /* profile list: DVD-ROM, CD-ROM */
			p[2] |= 0x02;
			p[3] = 8;
			put_be16(p + 4, 0x0010);
			p[6] = profile == 0x0010;
			put_be16(p + 8, 0x0008);
			p[10] = profile == 0x0008;
			break;
		case 0x0001: /* core: ATAPI */
			p[2] |= 0x02 | (2 << 2);
			p[3] = 8;
			put_be32(p + 4, 2);
			p[8] = 1; /* device busy event */
			break;
		case 0x0002: /* morphing: polled events */
			p[2] |= 0x02 | (1 << 2);
			p[3] = 4;
			p[4] = 0x02;
			break;
		case 0x0003: /* removable medium: tray, eject, lock */
			p[2] |= 0x02;
			p[3] = 4;
			p[4] = 0x29 | (dev->locked ? 0x04 : 0);
			break;
		case 0x0010: /* random readable */
			p[3] = 8;
			put_be32(p + 4, CD_BLOCK);
			put_be16(p + 8, 1);
			break;
		case 0x001E: /* CD read */
			p[2] |= 2 << 2;
			p[3] = 4;
			break;
		}
		len += 4 + p[3];
	}
	put_be32(b, (uint32_t)(len - 4));
	atapi_reply(dev, len, get_be16(dev->packet + 7));
}

static void atapi_read_toc(struct ata_device *dev)
{
	bool msf = dev->packet[1] & 2;
	uint8_t format = dev->packet[2] & 0x0F, track = dev->packet[6];
	uint32_t blocks = atapi_blocks(dev);
	uint8_t *b = dev->buf;
	size_t len;

	if (!format)
		format = dev->packet[9] >> 6; /* the older place of the format field */
	memset(b, 0, 64);
	switch (format) {
	case 0: /* TOC: track 1 and the lead-out */
		if (track > 1 && track != 0xAA) {
			atapi_invalid_field(dev);
			return;
		}
		b[2] = 1;
		b[3] = 1;
		len = 4;
		if (track <= 1) {
			b[len + 1] = 0x14; /* ADR 1, data track */
			b[len + 2] = 1;
			atapi_addr(b + len + 4, 0, msf);
			len += 8;
		}
		b[len + 1] = 0x14;
		b[len + 2] = 0xAA;
		atapi_addr(b + len + 4, blocks, msf);
		len += 8;
		break;
	case 1: /* session information: one session starting at track 1 */
		b[2] = 1;
		b[3] = 1;
		b[5] = 0x14;
		b[6] = 1;
		atapi_addr(b + 8, 0, msf);
		len = 12;
		break;
	case 2: /* full TOC: points A0 (first track), A1 (last track), A2 (lead-out), track 1 */
		b[2] = 1;
		b[3] = 1;
		len = 4;
		for (int point = 0; point < 4; point++) {
			uint8_t *p = b + len;
			static const uint8_t points[] = {0xA0, 0xA1, 0xA2, 0x01};
			p[0] = 1;
			p[1] = 0x14;
			p[3] = points[point];
			if (points[point] == 0xA0 || points[point] == 0xA1)
				p[8] = 1;
			else
				atapi_msf(p + 7, points[point] == 0xA2 ? blocks : 0);
			len += 11;
		}
		break;
	default:
		atapi_invalid_field(dev);
		return;
	}
	put_be16(b, (uint16_t)(len - 2));
	atapi_reply(dev, len, get_be16(dev->packet + 7));
}

static void atapi_event_status(struct ata_device *dev)
{
	uint8_t *b = dev->buf;
	size_t len = 4;
	if (!(dev->packet[1] & 1)) { /* only polled operation */
		atapi_invalid_field(dev);
		return;
	}
	memset(b, 0, 8);
	b[3] = 0x10; /* supported classes: media */
	if (dev->packet[4] & 0x10) {
		b[2] = 0x04; /* media class */
		b[4] = dev->media_event;
		b[5] = (uint8_t)((atapi_has_medium(dev) ? 0x02 : 0) | (dev->tray_open ? 0x01 : 0));
		dev->media_event = MEDIA_EVENT_NONE;
		len = 8;
	} else {
		b[2] = 0x80; /* no event available */
	}
	put_be16(b, (uint16_t)(len - 2));
	atapi_reply(dev, len, get_be16(dev->packet + 7));
}

static void atapi_disc_info(struct ata_device *dev)
{
	uint8_t *b = dev->buf;
	if (dev->packet[1] & 7) { /* only standard disc information */
		atapi_invalid_field(dev);
		return;
	}
	memset(b, 0, 34);
	put_be16(b, 32);
	b[2] = 0x0E;		   /* complete disc, complete last session */
	b[3] = 1;		   /* first track */
	b[4] = 1;		   /* sessions */
	b[5] = 1;		   /* first track of the last session */
	b[6] = 1;		   /* last track of the last session */
	b[8] = 0x00;		   /* CD-DA or CD-ROM */
	put_be32(b + 16, 0xFFFFFFFF); /* no lead-in time for the last session */
	put_be32(b + 20, 0xFFFFFFFF);
	atapi_reply(dev, 34, get_be16(dev->packet + 7));
}

static void atapi_mechanism_status(struct ata_device *dev)
{
	uint8_t *b = dev->buf;
	memset(b, 0, 8);
	b[1] = dev->tray_open ? 0x10 : 0;
	atapi_reply(dev, 8, get_be16(dev->packet + 8));
}

/* Commands that need a medium, and whether a pending unit attention must be reported first. */
static bool atapi_needs_medium(uint8_t op)
{
	switch (op) {
	case 0x00: /* TEST UNIT READY */
	case 0x25: /* READ CAPACITY */
	case 0x28: /* READ(10) */
	case 0xA8: /* READ(12) */
	case 0x43: /* READ TOC */
	case 0x51: /* READ DISC INFORMATION */
		return true;
	}
	return false;
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

void atapi_medium_changed(struct ata_device *dev)
{
	dev->tray_open = false;
	dev->unit_attention = true;
	dev->media_event = dev->disk->bs ? MEDIA_EVENT_NEW : MEDIA_EVENT_REMOVAL;
}

void atapi_execute(struct ata_device *dev)
{
	const uint8_t *p = dev->packet;
	uint8_t op = p[0];

	/* After a medium change, the first command that is not a status query learns of it. */
	if (dev->unit_attention && op != 0x03 && op != 0x12 && op != 0x4A) {
		dev->unit_attention = false;
		atapi_error(dev, SENSE_UNIT_ATTENTION, ASC_MEDIUM_CHANGED, 0);
		return;
	}
	if (atapi_needs_medium(op) && !atapi_has_medium(dev)) {
		atapi_error(dev, SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT, 0);
		return;
	}
	switch (op) {
	case 0x00: /* TEST UNIT READY */
	case 0xBB: /* SET CD SPEED */
	case 0x35: /* SYNCHRONIZE CACHE: nothing is cached for a read-only medium */
		atapi_ok_done(dev);
		return;
	case 0x03:
		atapi_request_sense(dev);
		return;
	case 0x12:
		atapi_inquiry(dev);
		return;
	case 0x25:
		atapi_read_capacity(dev);
		return;
	case 0x28:
		atapi_read(dev, get_be32(p + 2), get_be16(p + 7));
		return;
	case 0xA8:
		atapi_read(dev, get_be32(p + 2), get_be32(p + 6));
		return;
	case 0x1A:
		atapi_mode_sense(dev, false);
		return;
	case 0x5A:
		atapi_mode_sense(dev, true);
		return;
	case 0x15:
		atapi_mode_select(dev, false);
		return;
	case 0x55:
		atapi_mode_select(dev, true);
		return;
	case 0x1B:
		atapi_start_stop(dev);
		return;
	case 0x1E: /* PREVENT ALLOW MEDIUM REMOVAL */
		dev->locked = p[4] & 1;
		atapi_ok_done(dev);
		return;
	case 0x46:
		atapi_get_configuration(dev);
		return;
	case 0x43:
		atapi_read_toc(dev);
		return;
	case 0x4A:
		atapi_event_status(dev);
		return;
	case 0x51:
		atapi_disc_info(dev);
		return;
	case 0xBD:
		atapi_mechanism_status(dev);
		return;
	}
	atapi_error(dev, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
}
