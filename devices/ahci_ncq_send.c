/* SEND FPDMA QUEUED (64h, ACS-3 7.40): queued TRIM, which Linux sends instead of DATA SET
 * MANAGEMENT once IDENTIFY word 77 bit 6 and the NCQ Send and Receive log (devices/ata/ata_log.c)
 * offer it.
 *
 * FIS fields: FEATURE 15:0 the payload's 512-byte blocks (0: 65536), COUNT 7:3 the tag, COUNT
 * 12:8 the subcommand (0: DATA SET MANAGEMENT), AUXILIARY bit 0 TRIM. The payload is the same
 * range list as DSM's (ata_dsm_*); it is copied out of guest memory once, checked as a whole
 * (nothing is discarded when one range is bad), then each range is one discard request.
 * Anything else (another subcommand or DSM function, a read-only disk, too many blocks, a PRDT
 * shorter than the payload or outside RAM, a range beyond the disk) fails the command with the
 * ATA error status through the NCQ error path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"

#define SECTOR 512
#define SEND_SUBCMD_DSM 0x00
#define SEND_AUX_TRIM 0x01
#define COPY_IOV 16

static void send_dsm_next(struct ahci_slot *s)
{
	while (s->dsm_index < s->dsm_count) {
		uint64_t lba, n;
		ata_dsm_entry(s->dsm, s->dsm_index++, &lba, &n);
		if (!n)
			continue;
		s->next = send_dsm_next;
		s->req = (struct block_aio_req){
		    .op = BLOCK_AIO_DISCARD,
		    .offset = lba * SECTOR,
		    .len = n * SECTOR,
		};
		if (ahci_ncq_submit(s) < 0) {
			ahci_ncq_clear(s);
			ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
		}
		return;
	}
	ahci_ncq_complete(s);
}

/* Copy `len` bytes described by the PRDT into buf: 0, -EFAULT (outside RAM) or -ENOSPC (the table
 * ended first). */
static int send_copy_payload(struct ahci_port *p, uint64_t ctba, unsigned prdtl, uint8_t *buf,
			     uint64_t len)
{
	struct ahci_prdt w = {.ctba = ctba, .prdtl = prdtl};
	uint64_t pos = 0;
	while (pos < len) {
		struct iovec iov[COPY_IOV];
		uint64_t got = 0;
		int n = ahci_prdt_next(p->hba->mem, &w, iov, COPY_IOV, len - pos, &got);
		if (n < 0)
			return n;
		if (!got)
			return -ENOSPC;
		for (int i = 0; i < n; i++) {
			memcpy(buf + pos, iov[i].iov_base, iov[i].iov_len);
			pos += iov[i].iov_len;
		}
	}
	return 0;
}

void ahci_ncq_send_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
			 uint64_t ctba)
{
	struct ahci_slot *s = &p->slots[slot];
	unsigned subcmd = fis[13] & 0x1F;
	uint32_t blocks = fis[3] | fis[11] << 8;
	if (!blocks)
		blocks = 65536;

	if (!ahci_ncq_accept(p, slot, fis))
		return;
	if (subcmd != SEND_SUBCMD_DSM || !(fis[16] & SEND_AUX_TRIM) || p->disk->read_only ||
	    blocks > ATA_DSM_MAX_BLOCKS) {
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
		return;
	}
	uint64_t bytes = (uint64_t)blocks * SECTOR;
	s->dsm = malloc(bytes);
	if (!s->dsm) {
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
		return;
	}
	int r = send_copy_payload(p, ctba, prdtl, s->dsm, bytes);
	if (r < 0) {
		ahci_ncq_clear(s);
		ahci_ncq_fail(s, ATA_ERR_ABRT, r == -EFAULT ? PORT_IS_HBDS : 0);
		return;
	}
	s->dsm_count = bytes / 8;
	s->dsm_index = 0;
	if (ata_dsm_check(s->dsm, s->dsm_count, p->disk->sectors) < 0) {
		ahci_ncq_clear(s);
		ahci_ncq_fail(s, ATA_ERR_IDNF | ATA_ERR_ABRT, 0);
		return;
	}
	s->bytes = bytes;
	send_dsm_next(s);
}
