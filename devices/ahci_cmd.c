/* Non-queued commands: the AHCI transport of the shared ATA/ATAPI layer (devices/ata/ata.h).
 *
 * The H2D FIS fills the device's task file and ata_command() runs it. The layer reports through
 * its ops; here they only record the event and ask ahci_port_run for a pass, which then moves PIO
 * blocks between dev->buf and the PRDT, starts DMA (the HBA's engine is always ready) and, at the
 * command's end, writes PRDBC, posts the FISes and clears the CI bit. So a command that completes
 * inside ata_command() does not re-enter the port, and a block completion on the I/O thread drives
 * the same loop.
 */
#include <errno.h>
#include <string.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define PIO_IOV 16

static void op_irq(void *opaque, struct ata_device *dev)
{
	/* INTRQ has no wire on SATA: the interrupt comes with the FIS that ends the command. */
	(void)opaque;
	(void)dev;
}

static void op_pio_ready(void *opaque, struct ata_device *dev, bool to_host, size_t len)
{
	struct ahci_port *p = opaque;
	(void)dev;
	p->x.pio_pending = true;
	p->x.pio_to_host = to_host;
	p->x.pio_len = len;
	ahci_port_run(p);
}

static void op_dma_ready(void *opaque, struct ata_device *dev, bool to_host)
{
	struct ahci_port *p = opaque;
	(void)dev;
	(void)to_host;
	p->x.dma_pending = true;
	ahci_port_run(p);
}

static int op_dma_map(void *opaque, struct ata_device *dev, struct iovec *iov, int iov_max,
		      size_t len, size_t *mapped)
{
	struct ahci_port *p = opaque;
	uint64_t got = 0;
	(void)dev;
	int n = ahci_prdt_next(p->hba->mem, &p->x.prdt, iov, iov_max, len, &got);
	*mapped = got;
	return n;
}

static int op_dma_check(void *opaque, struct ata_device *dev, uint64_t len)
{
	struct ahci_port *p = opaque;
	(void)dev;
	return ahci_prdt_covers(p->hba->mem, &p->x.prdt, len);
}

static void op_dma_end(void *opaque, struct ata_device *dev, int ret)
{
	struct ahci_port *p = opaque;
	(void)dev;
	if (ret == -EFAULT)
		p->x.extra_is |= PORT_IS_HBDS;
}

static void op_done(void *opaque, struct ata_device *dev)
{
	struct ahci_port *p = opaque;
	(void)dev;
	p->x.done_pending = true;
	ahci_port_run(p);
}

static void op_idle(void *opaque, struct ata_device *dev)
{
	struct ahci_port *p = opaque;
	(void)dev;
	pthread_cond_broadcast(&p->drained);
}

static const struct ata_ops ahci_ata_ops = {
    .irq = op_irq,
    .pio_ready = op_pio_ready,
    .dma_ready = op_dma_ready,
    .dma_map = op_dma_map,
    .dma_check = op_dma_check,
    .dma_end = op_dma_end,
    .done = op_done,
    .idle = op_idle,
};

int ahci_cmd_attach(struct ahci_port *p, struct disk *disk)
{
	memset(&p->ata, 0, sizeof(p->ata));
	p->ata.ops = &ahci_ata_ops;
	p->ata.opaque = p;
	p->ata.lock = &p->hba->lock;
	p->ata.sata = true;
	p->ata.ncq = disk->media == DISK_MEDIA_HDD;
	int r = ata_device_init(&p->ata, disk);
	if (r < 0)
		return r;
	p->disk = disk;
	return 0;
}

void ahci_cmd_device_reset(struct ahci_port *p)
{
	if (p->disk)
		ata_device_reset(&p->ata);
	memset(&p->x, 0, sizeof(p->x));
}

static struct ahci_tf tf_of(const struct ata_taskfile *t)
{
	return (struct ahci_tf){
	    .lba = t->lba_low | t->lba_mid << 8 | t->lba_high << 16 |
		   (uint64_t)t->lba_low_exp << 24 | (uint64_t)t->lba_mid_exp << 32 |
		   (uint64_t)t->lba_high_exp << 40,
	    .count = t->count | t->count_exp << 8,
	    .device = t->device,
	};
}

/* The transfer cannot go on (PRDT outside RAM or too short): the device drops the command and
 * the slot ends with ABRT. */
static void cmd_abort(struct ahci_port *p, uint32_t extra_is)
{
	unsigned slot = p->x.slot;
	extra_is |= p->x.extra_is;
	ahci_cmd_device_reset(p);
	ahci_port_finish(p, slot, ATA_STAT_DRDY | ATA_STAT_ERR, ATA_ERR_ABRT, NULL, extra_is);
}

static void cmd_packet(struct ahci_port *p)
{
	uint8_t acmd[16];
	size_t len = p->x.pio_len;
	if (len > sizeof(acmd) ||
	    guest_memory_read(p->hba->mem, p->x.prdt.ctba + CMDT_ACMD, acmd, sizeof(acmd)) < 0) {
		cmd_abort(p, len > sizeof(acmd) ? 0 : PORT_IS_HBFS);
		return;
	}
	ata_pio_write(&p->ata, acmd, len);
}

/* One PIO DRQ block between dev->buf and the PRDT. Data-in beyond the PRDT is dropped (the
 * device must still see it read); data-out beyond it cannot be invented: abort. */
static void cmd_pio(struct ahci_port *p)
{
	struct ata_device *dev = &p->ata;
	bool in = p->x.pio_to_host;
	uint64_t left = p->x.pio_len;
	while (left) {
		struct iovec iov[PIO_IOV];
		uint64_t got = 0;
		int n = ahci_prdt_next(p->hba->mem, &p->x.prdt, iov, PIO_IOV, left, &got);
		if (n < 0) {
			cmd_abort(p, PORT_IS_HBDS);
			return;
		}
		if (!got)
			break;
		left -= got;
		for (int i = 0; i < n; i++) {
			if (in)
				ata_pio_read(dev, iov[i].iov_base, iov[i].iov_len);
			else
				ata_pio_write(dev, iov[i].iov_base, iov[i].iov_len);
		}
	}
	if (left && !in) {
		cmd_abort(p, 0);
		return;
	}
	uint8_t scratch[512];
	while (left) {
		size_t k = left < sizeof(scratch) ? left : sizeof(scratch);
		if (!ata_pio_read(dev, scratch, k))
			break;
		left -= k;
	}
	if (in) { /* status after the block: the command's end status on its last block */
		struct ahci_tf tf = tf_of(&dev->tf);
		ahci_fis_pio_setup(p, dev->tf.status, dev->tf.error, &tf, p->x.pio_len, true);
	}
}

static void cmd_finish(struct ahci_port *p)
{
	struct ata_device *dev = &p->ata;
	unsigned slot = p->x.slot;
	uint32_t extra_is = p->x.extra_is;
	uint8_t prdbc[4];
	put_le32(prdbc, (uint32_t)p->x.prdt.done);
	guest_memory_write(p->hba->mem, p->x.hdr_gpa + 4, prdbc, sizeof(prdbc));
	struct ahci_tf tf = tf_of(&dev->tf);
	memset(&p->x, 0, sizeof(p->x));
	ahci_port_finish(p, slot, dev->tf.status, dev->tf.error, &tf, extra_is);
}

bool ahci_cmd_step(struct ahci_port *p)
{
	struct ahci_xfer *x = &p->x;
	if (!x->active)
		return false;
	if (x->pio_pending) {
		x->pio_pending = false;
		if (p->ata.phase == ATA_PHASE_PACKET)
			cmd_packet(p);
		else
			cmd_pio(p);
		return true;
	}
	if (x->dma_pending) {
		x->dma_pending = false;
		ata_dma_go(&p->ata);
		return true;
	}
	if (x->done_pending) {
		cmd_finish(p);
		return true;
	}
	return false;
}

void ahci_cmd_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
		    uint64_t ctba)
{
	struct ata_device *dev = &p->ata;
	struct ata_taskfile *tf = &dev->tf;
	if (dev->tf.status &
	    (ATA_STAT_BSY | ATA_STAT_DRQ)) { /* left hanging by an aborted command */
		ahci_cmd_device_reset(p);
		ahci_port_finish(p, slot, ATA_STAT_DRDY | ATA_STAT_ERR, ATA_ERR_ABRT, NULL, 0);
		return;
	}
	p->x = (struct ahci_xfer){
	    .active = true,
	    .slot = slot,
	    .hdr_gpa = p->slots[slot].hdr_gpa,
	    .prdt = {.ctba = ctba, .prdtl = prdtl},
	};
	tf->feature = fis[3];
	tf->feature_exp = fis[11];
	tf->lba_low = fis[4];
	tf->lba_mid = fis[5];
	tf->lba_high = fis[6];
	tf->device = fis[7];
	tf->lba_low_exp = fis[8];
	tf->lba_mid_exp = fis[9];
	tf->lba_high_exp = fis[10];
	tf->count = fis[12];
	tf->count_exp = fis[13];
	tf->control = fis[15];
	p->tfd = (p->tfd & 0xFF00) | ATA_STAT_BSY;
	ata_command(dev, fis[2]);
}
