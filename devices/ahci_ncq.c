/* Native command queuing: READ/WRITE FPDMA QUEUED (SATA 3.x 13.6), up to 32 per port in flight.
 *
 * The driver sets the tag's PxSACT bit, then its PxCI bit. The HBA accepts the command (CI bit
 * clears: the device released the bus), hands the whole transfer to the block layer as one
 * request, and on completion clears the PxSACT bit and posts a Set Device Bits FIS with the
 * interrupt bit. An error sets PxTFD.ERR and PxIS.TFES and stops the port until the driver
 * restarts it (clearing ST cancels the other tags safely, see ahci_port_quiesce).
 *
 * FUA (device byte bit 7) needs no action: IDENTIFY does not offer WRITE FPDMA FUA, so writes are
 * made durable by FLUSH CACHE, which goes through the ATA layer.
 */
#include <stdlib.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"
#include "memory/guest_memory.h"

#define SECTOR 512

static void ncq_fail(struct ahci_port *p, uint8_t err, uint32_t extra_is)
{
	uint8_t status = ATA_STAT_DRDY | ATA_STAT_ERR;
	/* The failed tag keeps its SACT bit; the driver's error handling stops the port. */
	p->tfd = (uint32_t)err << 8 | status;
	p->error_stop = true;
	ahci_fis_sdb(p, status, err, 0);
	ahci_port_raise(p, PORT_IS_SDBS | PORT_IS_TFES | extra_is);
}

static void ncq_done(struct block_aio_req *req, int ret)
{
	struct ahci_slot *s = req->opaque;
	struct ahci_port *p = s->port;
	pthread_mutex_lock(&p->hba->lock);
	s->busy = false;
	p->inflight--;
	if (!p->inflight)
		pthread_cond_broadcast(&p->drained);
	if (s->cancelled) { /* a reset came first: neither guest memory nor registers are touched */
		s->cancelled = false;
		pthread_mutex_unlock(&p->hba->lock);
		return;
	}
	uint32_t bit = 1u << s->index;
	if (ret < 0) {
		ncq_fail(p, req->op == BLOCK_AIO_READ ? ATA_ERR_UNC : ATA_ERR_ABRT, 0);
	} else {
		uint8_t prdbc[4];
		ahci_put_le32(prdbc, (uint32_t)s->bytes);
		guest_memory_write(p->hba->mem, s->hdr_gpa + 4, prdbc, sizeof(prdbc));
		p->sact &= ~bit;
		p->issued &= ~bit;
		if (!(p->tfd & ATA_STAT_ERR))
			p->tfd = ATA_STAT_DRDY | ATA_STAT_DSC;
		ahci_fis_sdb(p, ATA_STAT_DRDY | ATA_STAT_DSC, 0, bit);
		ahci_port_raise(p, PORT_IS_SDBS);
	}
	ahci_port_run(p);
	pthread_mutex_unlock(&p->hba->lock);
}

void ahci_ncq_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
		    uint64_t ctba)
{
	struct ahci_slot *s = &p->slots[slot];
	struct disk *d = p->disk;
	uint32_t bit = 1u << slot;
	bool write = fis[2] == ATA_CMD_WRITE_FPDMA_QUEUED;
	unsigned tag = fis[12] >> 3;
	uint64_t count = fis[3] | fis[11] << 8;
	uint64_t lba = fis[4] | fis[5] << 8 | fis[6] << 16 | (uint64_t)fis[8] << 24 |
		       (uint64_t)fis[9] << 32 | (uint64_t)fis[10] << 40;
	if (!count)
		count = 65536;

	p->ci &= ~bit; /* accepted: PxSACT tracks it from now on */
	if (d->media != DISK_MEDIA_HDD || !d->aio || !(p->sact & bit) || tag != slot ||
	    (write && d->read_only)) {
		ncq_fail(p, ATA_ERR_ABRT, 0);
		return;
	}
	if (lba > d->sectors || count > d->sectors - lba) {
		ncq_fail(p, ATA_ERR_IDNF, 0);
		return;
	}
	if (!s->iov && !(s->iov = calloc(AHCI_NCQ_IOV_MAX, sizeof(*s->iov)))) {
		ncq_fail(p, ATA_ERR_ABRT, 0);
		return;
	}
	struct ahci_prdt w = {.ctba = ctba, .prdtl = prdtl};
	uint64_t bytes = count * SECTOR, mapped = 0;
	int n = ahci_prdt_next(p->hba->mem, &w, s->iov, AHCI_NCQ_IOV_MAX, bytes, &mapped);
	if (n < 0 || mapped < bytes) { /* outside RAM; or a table too short or too fragmented */
		ncq_fail(p, ATA_ERR_ABRT, n < 0 ? PORT_IS_HBDS : 0);
		return;
	}
	s->req = (struct block_aio_req){
	    .op = write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
	    .offset = lba * SECTOR,
	    .iov = s->iov,
	    .iovcnt = n,
	    .cb = ncq_done,
	    .opaque = s,
	};
	s->bytes = bytes;
	s->busy = true;
	s->cancelled = false;
	p->inflight++;
	if (block_aio_submit(d->aio, &s->req) < 0) {
		s->busy = false;
		p->inflight--;
		ncq_fail(p, ATA_ERR_ABRT, 0);
	}
}
