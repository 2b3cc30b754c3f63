/* INQUIRY (SPC-4 6.6): the standard data and the vital product data pages Linux sd reads: 00h
 * (supported pages), 80h (unit serial number), 83h (device identification), and for disks B0h
 * (block limits), B1h (block device characteristics) and B2h (logical block provisioning), which
 * together tell the guest it may UNMAP and how much at once. */
#include <string.h>

#include "devices/disk.h"
#include "devices/scsi/scsi.h"
#include "devices/scsi/scsi_internal.h"
#include "lib/endian.h"

#define VENDOR "MINIVMM"
/* Largest single transfer and unmap we advertise (blocks of 512 bytes): 4 MiB and 1 GiB. */
#define MAX_TRANSFER_BLOCKS 8192u
#define MAX_UNMAP_BLOCKS (1u << 21)

static unsigned inquiry_standard(const struct scsi_lun *lun, uint8_t *b)
{
	const struct disk *d = lun->disk;
	const char *product = lun->cdrom ? "DVD-ROM" : "HARDDISK";
	b[0] = lun->cdrom ? 0x05 : 0x00; /* peripheral device type */
	b[1] = lun->cdrom ? 0x80 : 0x00; /* RMB */
	b[2] = 0x05;			 /* SPC-3 */
	b[3] = 0x02 | 0x10;		 /* response data format 2, HiSup */
	b[4] = 36 - 5;
	b[7] = lun->cdrom ? 0x00 : 0x02; /* CmdQue; no Sync/WBus16: no domain validation needed */
	disk_pad_string((char *)b + 8, 8, VENDOR);
	disk_pad_string((char *)b + 16, 16, product);
	disk_pad_string((char *)b + 32, 4, d->firmware);
	return 36;
}

static unsigned vpd_designators(const struct scsi_lun *lun, uint8_t *b)
{
	const struct disk *d = lun->disk;
	unsigned n = 4;
	/* T10 vendor ID designator: vendor, then the serial number (ASCII). */
	size_t slen = strnlen(d->serial, sizeof(d->serial));
	b[n + 0] = 0x02; /* code set ASCII */
	b[n + 1] = 0x01; /* association LU, type T10 vendor ID */
	b[n + 3] = (uint8_t)(8 + slen);
	disk_pad_string((char *)b + n + 4, 8, VENDOR);
	memcpy(b + n + 12, d->serial, slen);
	n += 4 + 8 + (unsigned)slen;
	/* NAA IEEE Registered Extended (6h), from the disk's UUID: unique per image. */
	b[n + 0] = 0x01; /* binary */
	b[n + 1] = 0x03; /* association LU, type NAA */
	b[n + 3] = 16;
	memcpy(b + n + 4, d->uuid, 16);
	b[n + 4] = (uint8_t)(0x60 | (d->uuid[0] & 0x0F));
	n += 4 + 16;
	put_be16(b + 2, (uint16_t)(n - 4));
	return n;
}

static unsigned vpd_block_limits(const struct scsi_lun *lun, uint8_t *b)
{
	bool unmap = !lun->disk->read_only;
	put_be16(b + 2, 0x3C);
	put_be16(b + 6, 8);				/* optimal transfer granularity: 4 KiB */
	put_be32(b + 8, MAX_TRANSFER_BLOCKS);		/* maximum transfer length */
	put_be32(b + 12, MAX_TRANSFER_BLOCKS);		/* optimal transfer length */
	put_be32(b + 20, unmap ? MAX_UNMAP_BLOCKS : 0); /* maximum unmap LBA count */
	put_be32(b + 24, unmap ? 1 : 0);		/* maximum unmap block descriptor count */
	put_be32(b + 28, 8);				/* optimal unmap granularity: 4 KiB */
	put_be64(b + 36, unmap ? MAX_UNMAP_BLOCKS : 0); /* maximum WRITE SAME length */
	return 4 + 0x3C;
}

static unsigned vpd_characteristics(uint8_t *b)
{
	put_be16(b + 2, 0x3C);
	put_be16(b + 4, 1); /* medium rotation rate: non-rotating */
	return 4 + 0x3C;
}

static unsigned vpd_provisioning(const struct scsi_lun *lun, uint8_t *b)
{
	put_be16(b + 2, 4);
	if (!lun->disk->read_only) {
		b[5] = 0x80 | 0x40 | 0x20; /* LBPU, LBPWS, LBPWS10: UNMAP, WRITE SAME with UNMAP */
		b[6] = 0x02;		   /* provisioning type: thin */
	}
	return 8;
}

void scsi_inquiry(struct scsi_req *req)
{
	const struct scsi_lun *lun = req->lun;
	const uint8_t *cdb = req->cdb;
	uint8_t b[256] = {0};
	unsigned len;
	uint16_t alloc = get_be16(cdb + 3);

	if (cdb[1] & 0xFE) { /* CmdDt (obsolete) and reserved bits */
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return;
	}
	if (!(cdb[1] & 1)) {
		if (cdb[2]) {
			scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
			return;
		}
		len = inquiry_standard(lun, b);
		scsi_req_reply(req, b, len, alloc);
		return;
	}
	b[0] = lun->cdrom ? 0x05 : 0x00;
	b[1] = cdb[2];
	switch (cdb[2]) {
	case 0x00: {
		static const uint8_t disk_pages[] = {0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2};
		unsigned n = lun->cdrom ? 3 : sizeof(disk_pages);
		memcpy(b + 4, disk_pages, n);
		put_be16(b + 2, (uint16_t)n);
		len = 4 + n;
		break;
	}
	case 0x80: {
		size_t slen = strnlen(lun->disk->serial, sizeof(lun->disk->serial));
		memcpy(b + 4, lun->disk->serial, slen);
		put_be16(b + 2, (uint16_t)slen);
		len = 4 + (unsigned)slen;
		break;
	}
	case 0x83:
		len = vpd_designators(lun, b);
		break;
	case 0xB0:
	case 0xB1:
	case 0xB2:
		if (!lun->cdrom) {
			len = cdb[2] == 0xB0   ? vpd_block_limits(lun, b)
			      : cdb[2] == 0xB1 ? vpd_characteristics(b)
					       : vpd_provisioning(lun, b);
			break;
		}
		/* fallthrough */
	default:
		scsi_req_check(req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_CDB);
		return;
	}
	scsi_req_reply(req, b, len, alloc);
}
