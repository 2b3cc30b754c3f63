/* Native command queuing: READ/WRITE FPDMA QUEUED (SATA 3.x 13.6), up to 32 per port in flight.
 *
 * The driver sets the tag's PxSACT bit, then its PxCI bit. The HBA accepts the command (CI bit
 * clears: the device released the bus), hands the whole transfer to the block layer as one
 * request, and on completion clears the PxSACT bit and posts a Set Device Bits FIS with the
 * interrupt bit. An error sets PxTFD.ERR and PxIS.TFES and stops the port until the driver
 * restarts it (clearing ST cancels the other tags safely, see ahci_port_quiesce). The failed
 * command is recorded for the NCQ Command Error log (devices/ata/ata_log.c); until the driver reads
 * that log (or resets the device) queued commands abort.
 *
 * FUA (device byte bit 7), or a write while the write cache is off (SET FEATURES 82h): the write
 * completes only after a FLUSH submitted once its data request completed (block_aio FLUSH covers
 * the writes completed before it), unless the disk ignores flushes (cache=unsafe).
 */
#include <stdlib.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define SECTOR 512
#define FIS_DEVICE_FUA 0x80

void ahci_ncq_clear(struct ahci_slot *s)
{
	free(s->dsm);
	s->dsm = NULL;
	s->dsm_count = s->dsm_index = 0;
	s->next = NULL;
}

void ahci_ncq_fail(struct ahci_slot *s, uint8_t err, uint32_t extra_is)
{
	struct ahci_port *p = s->port;
	uint8_t status = ATA_STAT_DRDY | ATA_STAT_ERR;
	struct ata_ncq_error e = s->cmd;
	e.status = status;
	e.error = err;
	ata_ncq_error_record(&p->ata, &e);
	/* The failed tag keeps its SACT bit; the driver's error handling stops the port. */
	p->tfd = (uint32_t)err << 8 | status;
	p->error_stop = true;
	ahci_fis_sdb(p, status, err, 0);
	ahci_port_raise(p, PORT_IS_SDBS | PORT_IS_TFES | extra_is);
}

void ahci_ncq_complete(struct ahci_slot *s)
{
	struct ahci_port *p = s->port;
	uint32_t bit = 1u << s->index;
	uint8_t prdbc[4];
	ahci_ncq_clear(s);
	put_le32(prdbc, (uint32_t)s->bytes);
	guest_memory_write(p->hba->mem, s->hdr_gpa + 4, prdbc, sizeof(prdbc));
	p->sact &= ~bit;
	p->issued &= ~bit;
	if (!(p->tfd & ATA_STAT_ERR))
		p->tfd = ATA_STAT_DRDY | ATA_STAT_DSC;
	ahci_fis_sdb(p, ATA_STAT_DRDY | ATA_STAT_DSC, 0, bit);
	ahci_port_raise(p, PORT_IS_SDBS);
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
		ahci_ncq_clear(s);
		pthread_mutex_unlock(&p->hba->lock);
		return;
	}
	if (req->op == BLOCK_AIO_DISCARD && ata_dsm_discard_ok(ret))
		ret = 0;
	if (ret < 0) {
		ahci_ncq_clear(s);
		ahci_ncq_fail(s, req->op == BLOCK_AIO_READ ? ATA_ERR_UNC : ATA_ERR_ABRT, 0);
	} else if (s->next) {
		s->next(s);
	} else {
		ahci_ncq_complete(s);
	}
	ahci_port_run(p);
	pthread_mutex_unlock(&p->hba->lock);
}

int ahci_ncq_submit(struct ahci_slot *s)
{
	struct ahci_port *p = s->port;
	s->req.cb = ncq_done;
	s->req.opaque = s;
	s->busy = true;
	s->cancelled = false;
	p->inflight++;
	int r = block_aio_submit(p->disk->aio, &s->req);
	if (r < 0) {
		s->busy = false;
		p->inflight--;
	}
	return r;
}

/* The write's data is on the medium: make it durable before the command ends. */
static void ncq_flush(struct ahci_slot *s)
{
	s->next = NULL;
	s->req = (struct block_aio_req){.op = BLOCK_AIO_FLUSH};
	if (ahci_ncq_submit(s) < 0) {
		ahci_ncq_clear(s);
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
	}
}

bool ahci_ncq_accept(struct ahci_port *p, unsigned slot, const uint8_t *fis)
{
	struct disk *d = p->disk;
	struct ahci_slot *s = &p->slots[slot];
	uint32_t bit = 1u << slot;
	unsigned tag = fis[12] >> 3;
	p->ci &= ~bit; /* accepted: PxSACT tracks it from now on */
	ahci_ncq_clear(s);
	s->cmd = (struct ata_ncq_error){
	    .tag = (uint8_t)tag,
	    .device = fis[7],
	    .lba = fis[4] | fis[5] << 8 | fis[6] << 16 | (uint64_t)fis[8] << 24 |
		   (uint64_t)fis[9] << 32 | (uint64_t)fis[10] << 40,
	    .count = (uint16_t)(fis[3] | fis[11] << 8),
	};
	/* A pending NCQ error: the device takes no queued command until log 10h is read. */
	if (d->media != DISK_MEDIA_HDD || !d->aio || !(p->sact & bit) || tag != slot ||
	    p->ata.ncq_error.pending) {
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
		return false;
	}
	return true;
}

void ahci_ncq_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
		    uint64_t ctba)
{
	struct ahci_slot *s = &p->slots[slot];
	struct disk *d = p->disk;
	bool write = fis[2] == ATA_CMD_WRITE_FPDMA_QUEUED;
	uint64_t count = fis[3] | fis[11] << 8;
	uint64_t lba = fis[4] | fis[5] << 8 | fis[6] << 16 | (uint64_t)fis[8] << 24 |
		       (uint64_t)fis[9] << 32 | (uint64_t)fis[10] << 40;
	if (!count)
		count = 65536;

	if (!ahci_ncq_accept(p, slot, fis))
		return;
	if (write && d->read_only) {
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
		return;
	}
	if (lba > d->sectors || count > d->sectors - lba) {
		ahci_ncq_fail(s, ATA_ERR_IDNF, 0);
		return;
	}
	if (!s->iov && !(s->iov = calloc(AHCI_NCQ_IOV_MAX, sizeof(*s->iov)))) {
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
		return;
	}
	struct ahci_prdt w = {.ctba = ctba, .prdtl = prdtl};
	uint64_t bytes = count * SECTOR, mapped = 0;
	int n = ahci_prdt_next(p->hba->mem, &w, s->iov, AHCI_NCQ_IOV_MAX, bytes, &mapped);
	if (n < 0 || mapped < bytes) { /* outside RAM; or a table too short or too fragmented */
		ahci_ncq_fail(s, ATA_ERR_ABRT, n < 0 ? PORT_IS_HBDS : 0);
		return;
	}
	s->req = (struct block_aio_req){
	    .op = write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
	    .offset = lba * SECTOR,
	    .iov = s->iov,
	    .iovcnt = n,
	};
	s->bytes = bytes;
	if (write && ((fis[7] & FIS_DEVICE_FUA) || !p->ata.write_cache) && !d->flush_ignored)
		s->next = ncq_flush;
	if (ahci_ncq_submit(s) < 0) {
		ahci_ncq_clear(s);
		ahci_ncq_fail(s, ATA_ERR_ABRT, 0);
	}
}
